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
from .load import FactBase, LoadedRule, RuleBook
from .model import Catalog


def lint(book: RuleBook, base: FactBase | None = None) -> list[Problem]:
    out: list[Problem] = []
    out += _never_holds(book.rules)
    out += _unused_signals(book.rules)
    out += _conflicting_overrides(book)
    out += _unexplained_numbers(book)
    out += _evidence_families(book, base)
    out += _sector_only_buy(book)
    if base is not None:
        out += _prices_and_sector_buy(book, base.catalog)
        out += _target_moves_with_price(book, base)
        out += _unread_facts(book, base)
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
    from .compile import fold_constant

    try:
        return fold_constant(node)
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


# ------------------------------------------------------------------------------ parameters


def _numbers(node: expr.Node) -> list[float]:
    return [float(n.value) for n in expr.walk(node) if isinstance(n, expr.Const)
            and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)]


def _explained(why: dict[float, str], numbers: list[float]) -> tuple[list[float], list[float]]:
    """(numbers written without a reason, reasons for numbers not written): 0 needs none."""
    keys = list(why)
    missing = [x for x in dict.fromkeys(numbers) if x != 0 and not any(math.isclose(x, k) for k in keys)]
    unused = [k for k in keys if not any(math.isclose(x, k) for x in numbers)]
    return missing, unused


def _fmt(xs: list[float]) -> str:
    return ", ".join(expr.fmt_num(x) for x in xs)


def _unexplained_numbers(book: RuleBook) -> list[Problem]:
    """Every threshold and multiplier a pack or the policy writes carries its reason (`why:`)."""
    out = []
    for r in book.rules:
        numbers = _numbers(r.cond) + [x for node in r.values.values() for x in _numbers(node)]
        missing, unused = _explained(r.rule.why, numbers)
        if missing:
            out.append(Problem(r.when_at, "threshold-unexplained",
                               f"the number{'s' if len(missing) > 1 else ''} {_fmt(missing)} in this rule "
                               f"{'have' if len(missing) > 1 else 'has'} no reason.",
                               f"Add `why: {{{expr.fmt_num(missing[0])}: \"...\"}}` to the rule: one line on why this "
                               "value, and its source where it comes from a report or a convention.", "warning", r.id))
        if unused:
            out.append(Problem(r.at, "why-unused", f"`why` explains {_fmt(unused)}, which the rule does not use.",
                               "Remove it or fix the number.", "warning", r.id))
    for v in book.valuations:
        m = v.spec
        numbers = [float(s.weight) for s in m.scenarios if not isinstance(s.weight, str)]
        numbers += [float(x) for x in (m.pe_low, m.pe_high) if x is not None and not isinstance(x, str)]
        numbers += [m.weight_uncertainty_pp] if m.weight_uncertainty_pp else []
        missing, unused = _explained(m.why, numbers)
        if missing:
            out.append(Problem(v.at, "threshold-unexplained",
                               f"the number{'s' if len(missing) > 1 else ''} {_fmt(missing)} of this valuation "
                               f"{'have' if len(missing) > 1 else 'has'} no reason.",
                               "Add them to its `why:`.", "warning", v.id))
        if unused:
            out.append(Problem(v.at, "why-unused", f"`why` explains {_fmt(unused)}, which the valuation does not use.",
                               "Remove it or fix the number.", "warning", v.id))
    policy_file = str(Path(book.root.name) / "policy.yaml")
    for b in book.policy.scale.ratings:
        numbers = [x for x in (b.min_score, b.min_upside_pct, b.max_upside_pct) if x is not None]
        missing, _ = _explained(b.why, numbers)
        if missing:
            out.append(Problem(Location(policy_file, 1, 1), "threshold-unexplained",
                               f"rating {b.name}: the number{'s' if len(missing) > 1 else ''} {_fmt(missing)} "
                               f"{'have' if len(missing) > 1 else 'has'} no reason.",
                               "Add `why:` to the band in the policy.", "warning"))
    return out


# ------------------------------------------------------------------------------ evidence


def _scopes(lr: LoadedRule) -> set[str]:
    return {p.partition(".")[0] for p in lr.paths}


def _evidence_families(book: RuleBook, base: FactBase | None) -> list[Problem]:
    """Rules say which family of evidence they are, and a stock family reads the stock's own facts."""
    families = book.policy.evidence
    if not families:
        return []
    out = []
    for r in book.rules:
        if r.evidence is None:
            out.append(Problem(r.at, "evidence-undeclared",
                               "this rule does not say which family of evidence it is, so coverage and the "
                               "policy's requirements cannot count it.",
                               f"Add `evidence:` to its pack or to the rule ({', '.join(families)}).", "warning",
                               r.id))
            continue
        spec = families.get(r.evidence)
        if spec is None or not r.paths:
            continue
        namespaces = _scopes(r)
        if spec.scope == "stock" and "stock" not in namespaces:
            out.append(Problem(r.at, "evidence-scope",
                               f"family '{r.evidence}' is evidence about the stock, but the rule reads only "
                               f"{', '.join(sorted(namespaces))} facts.",
                               "Declare a sector-scope family for it (`evidence:` on the rule).", "warning", r.id))
        elif spec.scope != "stock" and "stock" in namespaces:
            out.append(Problem(r.at, "evidence-scope",
                               f"family '{r.evidence}' is {spec.scope}-wide, but the rule reads the stock's own facts.",
                               "Declare a stock-scope family for it (`evidence:` on the rule).", "warning", r.id))
    return out


def _sector_only_buy(book: RuleBook) -> list[Problem]:
    """Can the rules of sector- or market-wide families alone reach the best band's score?"""
    policy = book.policy
    best = policy.scale.ratings[0]
    if best.min_score is None or not policy.evidence:
        return []
    shared = [r for r in book.rules if r.evidence in policy.evidence and policy.evidence[r.evidence].scope != "stock"]
    gains = [(r, sum(score for _, score in r.emitted)) for r in shared]
    reach = sum(g for _, g in gains if g > 0)
    if reach < best.min_score:
        return []
    top = max((rg for rg in gains if rg[1] > 0), key=lambda rg: rg[1])[0]
    kept = [f for f in best.requires if policy.evidence.get(f) and policy.evidence[f].scope == "stock"]
    guard = (f" Only the policy's requirement of {', '.join(kept)} evidence keeps a stock with no evidence of its "
             f"own from a {best.name}." if kept else f" A stock with no evidence of its own can be rated {best.name}.")
    return [Problem(top.at, "sector-only-buy",
                    f"sector- and market-wide rules alone can score {expr.fmt_num(reach)}, which reaches the "
                    f"{best.name} band ({expr.fmt_num(best.min_score)}).{guard}",
                    "Weigh the sector as one piece of evidence: lower these rules' scores or combine them into "
                    "one signal.", "warning", top.id)]


PRICE_FAMILIES = ("prices", "technicals")  # catalog families of facts every stock with a price history has


def _prices_and_sector_buy(book: RuleBook, catalog: Catalog) -> list[Problem]:
    """Could a stock with a price history and no facts of its own (`facts: {}`) be rated the best band? The
    rules it can fire: sector-wide ones, and those reading nothing of the stock but its prices and what
    is derived from them. Reaching the band's score is a warning when the policy does not require
    evidence of the stock's own for that rating (if it does, the policy keeps such a stock from it)."""
    policy = book.policy
    best = policy.scale.ratings[0]
    if best.min_score is None:
        return []
    families = policy.evidence

    def own_facts(r: LoadedRule) -> list[str]:
        return [p for p in r.paths if p.startswith("stock.")
                and ((spec := catalog.spec(p)) is None or spec.family not in PRICE_FAMILIES)]

    def price_or_sector(r: LoadedRule) -> bool:
        if r.evidence in families and families[r.evidence].scope != "stock":
            return True
        return not own_facts(r)

    gains = [(r, sum(score for _, score in r.emitted)) for r in book.rules if price_or_sector(r)]
    gains = [(r, g) for r, g in gains if g > 0]
    reach = sum(g for _, g in gains)
    kept = [f for f in best.requires if families.get(f) and families[f].scope == "stock"]
    if reach < best.min_score or kept:
        return []
    top = max(gains, key=lambda rg: rg[1])[0]
    named = ", ".join(f"{r.id} (+{expr.fmt_num(g)})"
                      for r, g in sorted(gains, key=lambda rg: (-rg[1], rg[0].id))[:6])
    return [Problem(top.at, "prices-and-sector-buy",
                    f"a stock with a price history and no facts of its own can score {expr.fmt_num(reach)} on "
                    f"sector-wide and price rules ({named}{', ...' if len(gains) > 6 else ''}), which reaches the "
                    f"{best.name} band ({expr.fmt_num(best.min_score)}), and the policy requires no evidence of "
                    f"the stock's own for a {best.name}.",
                    f"Require a valuation for a {best.name} in the policy (`requires: [valuation]` with "
                    "`otherwise:`), or weigh these rules less.", "warning", top.id)]


def _target_moves_with_price(book: RuleBook, base: FactBase) -> list[Problem]:
    out = []
    prices = {"stock.price", "stock.close"} | {p for v in book.valuations for p in v.spec.price}
    for r in book.rules:
        t = r.rule.then.target
        if t is None:
            continue
        linked = [p for key in ("target.low", "target.high") if key in r.values
                  for p in expr.fact_paths(r.values[key])
                  if p in prices or ((spec := base.catalog.spec(p)) is not None and spec.price_link != "none")]
        if linked:
            out.append(Problem(r.then_at, "target-moves-with-price",
                               f"the target is computed from {', '.join(dict.fromkeys(linked))}, so it moves with "
                               "the share price and the upside to it never changes.",
                               "Value the stock with a pack `valuation:` method whose inputs are facts (scenario "
                               "values, or EPS and a PE range).", "warning", r.id))
    return out


def _unread_facts(book: RuleBook, base: FactBase) -> list[Problem]:
    """Facts the fact files state that no rule, message, entry, target or valuation reads."""
    read: set[str] = set()
    for r in book.rules:
        read.update(r.paths)
        read.update(r.then_paths)
    for v in book.valuations:
        read.update(v.paths)
    stated: dict[str, int] = {}
    for ns, groups in (("stock", [s.facts for s in base.stocks.values()]),
                       ("sector", [s.facts for s in base.sectors.values()]), ("commodity", [base.commodities])):
        for facts in groups:
            for name in facts:
                stated[f"{ns}.{name}"] = stated.get(f"{ns}.{name}", 0) + 1
    unread = sorted(p for p in stated if p not in read)
    if not unread:
        return []
    from .yamlsrc import read_yaml

    cat = base.root / "catalog.yaml"
    doc, _ = read_yaml(cat, str(Path(base.root.name) / "catalog.yaml")) if cat.is_file() else (None, [])
    out = []
    for path in unread:
        ns, _, name = path.partition(".")
        where = doc.key_at(("namespaces", ns, name)) if doc is not None else Location(str(cat))
        out.append(Problem(where, "fact-unread",
                           f"'{path}' is stated in {stated[path]} fact file(s) but no rule, message or valuation "
                           "reads it.", "Use it in a rule (or a message), or stop stating it.", "warning"))
    return out


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


def check(rules_dir: Path | str = "rules", facts_dir: Path | str = "facts") -> CheckReport:
    """Everything `verdict rules check` reports: load, type, compile and lint problems, all at once."""
    rules_dir, facts_dir = Path(rules_dir), Path(facts_dir)
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
    if book.catalog is not None:
        base.catalog = book.catalog  # with the derived facts the packs declare
    problems += lint(book, base)
    problems += _unused_technicals(book, base.catalog, rules_dir)
    longest = max((len(s.series.bars) for s in base.stocks.values() if s.series is not None), default=0)
    if longest:
        from .formulas import for_catalog, windows_beyond

        problems += windows_beyond(for_catalog(base.catalog, book.policy), longest)
    from .casetest import check_cases

    problems += check_cases(rules_dir, book, base)  # a test naming a rule that does not exist passes for ever
    try:
        compiled = compile_rules(book, base.catalog)
    except RuleError as exc:
        return CheckReport(ordered(problems + exc.problems), len(book.rules))
    return CheckReport(ordered(problems), len(book.rules), len(compiled.shards))
