"""Semantic lint of a loaded rule book: mistakes that type-check but cannot be what the author meant.

Runs after load (which already reports syntax, unknown paths and signals, type errors, unknown keys
and duplicate ids). Findings are Problems with stable codes, so `verdict rules check` prints them in
the compiler format editors and CI parse.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from . import expr
from .errors import FactError, Location, Problem, RuleError
from .load import LoadedRule, RuleBook
from .model import Catalog


def lint(book: RuleBook) -> list[Problem]:
    out: list[Problem] = []
    out += _never_holds(book.rules)
    out += _unused_signals(book.rules)
    out += _conflicting_overrides(book)
    return sorted(out, key=lambda p: (p.loc.file, p.loc.line, p.loc.col, p.code))


# ------------------------------------------------------------------------------ contradictions


class _Range:
    """What one conjunction says about one fact: an interval plus required / excluded values."""

    def __init__(self) -> None:
        self.lo, self.lo_open, self.hi, self.hi_open = -math.inf, False, math.inf, False
        self.equal: set[object] = set()
        self.not_equal: set[object] = set()

    def add(self, op: str, v: object) -> None:
        if op == "==":
            self.equal.add(v)
        elif op == "!=":
            self.not_equal.add(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            x = float(v)
            if op in (">", ">=") and (x > self.lo or (x == self.lo and op == ">")):
                self.lo, self.lo_open = x, op == ">"
            if op in ("<", "<=") and (x < self.hi or (x == self.hi and op == "<")):
                self.hi, self.hi_open = x, op == "<"

    def empty(self) -> bool:
        if len(self.equal) > 1 or self.equal & self.not_equal:
            return True
        if self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open)):
            return True
        for v in self.equal:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                x = float(v)
                if x < self.lo or x > self.hi or (x == self.lo and self.lo_open) or (x == self.hi and self.hi_open):
                    return True
        return False


def _constant(node: expr.Node) -> tuple[bool, object]:
    """The value of a literal-only subtree (folded as the compiler folds it), else (False, None)."""
    from .compile import _const

    try:
        return _const(node)
    except expr.ExprError:  # division by zero: the compiler reports it
        return False, None


def _contradictory(conjunction: list[expr.Lit]) -> list[str]:
    ranges: dict[str, _Range] = defaultdict(_Range)
    texts: dict[str, list[str]] = defaultdict(list)
    present: set[str] = set()
    absent: set[str] = set()
    for lit in conjunction:
        node = lit.node
        if isinstance(node, expr.Truth) and isinstance(node.item, expr.SignalRef):
            (absent if lit.negated else present).add(node.item.name)
            continue
        if not isinstance(node, expr.Cmp):
            continue
        left, op, right = node.left, node.op, node.right
        ok, value = _constant(right)
        if not ok:
            ok, value = _constant(left)
            left, op = right, expr.FLIP[op]
        if ok and isinstance(left, (expr.FactRef, expr.SignalRef)):
            key = expr.unparse(left)
            ranges[key].add(op, value)
            texts[key].append(expr.unparse(node))
    bad = [" and ".join(texts[k]) for k, r in ranges.items() if r.empty()]
    bad += [f"signal.{s} and not signal.{s}" for s in sorted(present & absent)]
    return bad


def _never_holds(rules: list[LoadedRule]) -> list[Problem]:
    out = []
    for r in rules:
        try:
            dnf = expr.to_dnf(r.cond)
        except expr.ExprError:
            continue  # compile reports it
        reasons = [_contradictory(c) for c in dnf]
        if dnf and all(reasons):
            why = "; ".join(dict.fromkeys(x for rs in reasons for x in rs))
            out.append(Problem(r.when_at, "never-holds", f"this condition can never hold: {why}.",
                               "Check the comparison directions and thresholds.", rule=r.id))
    return out


# ------------------------------------------------------------------------------ signals


def _unused_signals(rules: list[LoadedRule]) -> list[Problem]:
    read = {name for r in rules for name, _ in expr.signal_refs(r.cond)}
    out = []
    for r in rules:
        for s in r.rule.then.signals():
            if s.name not in read and s.score == 0:
                out.append(Problem(r.then_at, "signal-unused",
                                   f"signal '{s.name}' has score 0 and no rule reads it, so it changes nothing.",
                                   "Give it a score, use it in a `when`, or remove it.", severity="warning",
                                   rule=r.id))
    return out


# ------------------------------------------------------------------------------ overrides


def _conflicting_overrides(book: RuleBook) -> list[Problem]:
    names = book.policy.scale.names()
    by_salience: dict[int, list[LoadedRule]] = defaultdict(list)
    for r in book.rules:
        if r.rule.then.rating is not None:
            by_salience[r.rule.salience].append(r)
    out = []
    for salience, group in sorted(by_salience.items()):
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                ra, rb = a.rule.then.rating, b.rule.then.rating
                assert ra is not None and rb is not None
                if ra.value not in names or rb.value not in names:
                    continue
                ia, ib = names.index(ra.value), names.index(rb.value)
                clash = (ra.mode == rb.mode == "set" and ia != ib) or \
                    (ra.mode == "cap" and rb.mode == "floor" and ia > ib) or \
                    (ra.mode == "floor" and rb.mode == "cap" and ib > ia)
                if clash:
                    out.append(Problem(b.then_at, "override-conflict",
                                       f"rating override '{rb.mode} {rb.value}' contradicts '{ra.mode} {ra.value}' "
                                       f"of {a.id} ({a.file}:{a.line}) at the same salience {salience}.",
                                       "Give one of them a higher salience so the outcome does not depend on "
                                       "firing order.", rule=b.id))
    return out


def _unused_technicals(book: RuleBook, catalog: Catalog, rules_dir: Path) -> list[Problem]:
    from .formulas import unused_technicals
    from .load import POLICY_FILE, display_path

    unused = unused_technicals(book.policy.technicals, catalog)
    if not unused:
        return []
    path = rules_dir / POLICY_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    line = next((i for i, text in enumerate(lines, start=1) if text.startswith("technicals:")), 0)
    return [Problem(Location(display_path(path, rules_dir), line, 1), "technicals-unused",
                    f"technicals: {', '.join(unused)} is not used: every built-in technical fact of the catalog "
                    "has a formula, and the formula's parameters apply.",
                    "Change the parameters in the formulas of facts/catalog.yaml (e.g. macd_dif: "
                    '"macd_dif(12, 26, 9)"), and keep only min_bars here.', severity="warning")]


@dataclass
class CheckReport:
    problems: list[Problem]
    rules: int = 0
    rulesets: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")


def check(rules_dir: Path, facts_dir: Path) -> CheckReport:
    """Everything `verdict rules check` reports: load, type, compile and lint problems, all at once."""
    from .compile import compile_rules
    from .load import load_facts, load_rules_partial

    def ordered(ps: list[Problem]) -> list[Problem]:
        return sorted(ps, key=lambda p: (p.loc.file, p.loc.line, p.loc.col, p.code))

    try:
        base = load_facts(facts_dir, partial=True)  # a bad stock file hides no rule problem
    except FactError as exc:
        return CheckReport(exc.problems)
    book, problems = load_rules_partial(rules_dir, base.catalog)
    problems = list(base.skipped) + problems
    if book is None:
        return CheckReport(ordered(problems))
    problems += lint(book)
    problems += _unused_technicals(book, base.catalog, rules_dir)
    from .casetest import check_cases

    problems += check_cases(rules_dir, book, base)  # a test naming a rule that does not exist passes for ever
    try:
        compiled = compile_rules(book, base.catalog)
    except RuleError as exc:
        return CheckReport(ordered(problems + exc.problems), len(book.rules))
    return CheckReport(ordered(problems), len(book.rules), len(compiled.shards))
