"""Rule tests as data beside the packs (rules/tests/*.yaml): given facts -> expected outcome.

Each case names a symbol from the facts directory, a stock fact file, or inline facts, optionally
overrides some facts, and states what must come out (rating, signals, warnings, entries, target).
The runner evaluates each case through the same pipeline as `verdict evaluate`, reports a readable
difference for each failed expectation, and measures which rules no case ever fired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .derive import SymbolFacts, check_override, given_value, symbol_facts, with_overrides
from .errors import Location, LookupFailure, Problem, RuleError, VerdictError, did_you_mean
from .load import FactBase, RuleBook, SectorFacts, StockFacts, display_path, fact_entries, read_mapping, validate
from .model import (
    Case,
    CaseFile,
    EntryExpect,
    EntryOut,
    Evaluation,
    FactValue,
    GivenFacts,
    RangeExpect,
    SectorFile,
    StockFile,
)
from .pipeline import Workspace
from .yamlsrc import SourceDoc

TESTS_DIR = "tests"


@dataclass
class CaseResult:
    case: Case
    where: Location
    failures: list[str]
    fired: set[str] = field(default_factory=set)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures and not self.error


@dataclass
class Coverage:
    per_pack: dict[str, tuple[int, int, list[str]]]  # pack -> (fired, total, never fired)

    @property
    def fired(self) -> int:
        return sum(f for f, _, _ in self.per_pack.values())

    @property
    def total(self) -> int:
        return sum(t for _, t, _ in self.per_pack.values())

    @property
    def percent(self) -> float:
        return 100.0 * self.fired / self.total if self.total else 100.0


@dataclass
class LoadedCase:
    """A case as read: where it is (for file:line:col), and the problems found before running it."""

    case: Case
    where: Location
    path: Path
    doc: SourceDoc
    index: int
    problems: list[Problem] = field(default_factory=list)


# Warnings that come from the engine, not from a rule: a case may expect them by these ids.
ENGINE_WARNINGS = ("facts.conflict", "facts.stale", "facts.history", "facts.check", "engine.cross-check",
                   "policy.evidence")


def read_cases(rules_dir: Path, *, required: bool = True) -> tuple[list[LoadedCase], list[Problem]]:
    """Every case of every file in DIR/tests, and the files' YAML and schema problems."""
    problems: list[Problem] = []
    out: list[LoadedCase] = []
    folder = rules_dir / TESTS_DIR
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files and required:
        raise LookupFailure([Problem(Location(display_path(folder)), "no-tests",
                                     f"no rule tests found in {display_path(folder)}.",
                                     "Add YAML files with `cases:` there (see README, 'Rule tests').")])
    for path in files:
        doc = read_mapping(path, rules_dir, problems)
        if doc is None:
            continue
        # The file and each case are validated on their own, so one bad case hides no other.
        items = doc.data.get("cases")
        _, errs = validate(CaseFile, doc, data={**doc.data, "cases": []})
        problems.extend(errs)
        if not isinstance(items, list):
            where = doc.key_at(("cases",)) if "cases" in doc.data else doc.at(())
            problems.append(Problem(where, "no-cases", "a test file needs `cases:`, a list of cases.",
                                    "Add `cases:` with at least one case (see README, 'Rule tests')."))
        for i, item in enumerate(items if isinstance(items, list) else []):
            case, errs = validate(Case, doc, ("cases", i), item)
            problems.extend(errs)
            if case is not None:
                out.append(LoadedCase(case, doc.at(("cases", i)), path, doc, i))
    return out, problems


def load_cases(rules_dir: Path, book: RuleBook, facts: FactBase) -> list[LoadedCase]:
    """The cases, each with the problems of what it names (unknown rules, signals, warnings, facts);
    a file that is not valid YAML or does not fit the schema stops the run (RuleError)."""
    cases, problems = read_cases(rules_dir)
    if problems:
        raise RuleError(problems)
    for lc in cases:
        lc.problems = case_problems(lc, book, facts)
    return cases


def check_cases(rules_dir: Path, book: RuleBook, facts: FactBase) -> list[Problem]:
    """What `verdict rules check` reports about the test files: schema problems and unknown names."""
    cases, problems = read_cases(rules_dir, required=False)
    for lc in cases:
        problems += case_problems(lc, book, facts)
    return problems


def case_problems(lc: LoadedCase, book: RuleBook, facts: FactBase) -> list[Problem]:
    """Every name a case uses that cannot mean anything: an expectation about a rule that does not
    exist passes for ever (`not_fired: [a.misspelt-id]`), so each is an error with a did-you-mean."""
    case, doc, base = lc.case, lc.doc, ("cases", lc.index)
    rules = book.by_id()
    signals = sorted({s.name for r in book.rules for s in r.rule.then.signals()})
    warners = sorted({r.id for r in book.rules if r.rule.then.warnings()} | set(ENGINE_WARNINGS))
    out: list[Problem] = []

    def at(*loc: str | int) -> Location:
        return doc.at((*base, *loc))

    def bad(where: Location, code: str, message: str, hint: str) -> None:
        out.append(Problem(where, code, message, hint, rule=case.name))

    x = case.expect
    for key in ("fired", "not_fired", "not_evaluable"):
        for j, rid in enumerate(getattr(x, key)):
            if rid not in rules:
                bad(at("expect", key, j), "unknown-rule", f"expect.{key}: rule '{rid}' does not exist, so this "
                    "expectation can never tell anything.", did_you_mean(rid, list(rules)) or
                    "Rule ids are pack-qualified, as `verdict rules check` lists them.")
    for key in ("signals", "no_signals"):
        for j, name in enumerate(getattr(x, key)):
            if name not in signals:
                bad(at("expect", key, j), "unknown-signal", f"expect.{key}: no rule emits a signal '{name}'.",
                    did_you_mean(name, signals) or "Signals are the names in the rules' `then: signal:`.")
    for key in ("warnings", "no_warnings"):
        for j, rid in enumerate(getattr(x, key)):
            if rid in warners:
                continue
            if rid in rules:
                bad(at("expect", key, j), "never-warns", f"expect.{key}: rule '{rid}' raises no warning (its "
                    "`then` has none), so this expectation can never tell anything.",
                    "Name a rule with a `warning:`, or one of the engine's: " + ", ".join(ENGINE_WARNINGS) + ".")
            else:
                bad(at("expect", key, j), "unknown-rule", f"expect.{key}: no rule or engine check '{rid}' "
                    "raises warnings.", did_you_mean(rid, warners) or "Warnings are named by the rule that "
                    "raises them (or facts.conflict, facts.stale, ...).")
    if book.policy is not None and x.rating is not None and x.rating not in book.policy.scale.names():
        names = book.policy.scale.names()
        bad(at("expect", "rating"), "unknown-rating", f"expect.rating: '{x.rating}' is not on the policy's scale.",
            did_you_mean(x.rating, names) or f"The scale is: {', '.join(names)}.")
    for path, value in case.set.items():
        problem = check_override(facts.catalog, path, given_value(value, GivenFacts().as_of, "override"))
        if problem:
            bad(doc.key_at((*base, "set", path)), "bad-set", f"set: {problem}", "Fact paths are listed in "
                "facts/catalog.yaml.")
    if case.given is not None:
        for ns in ("stock", "sector", "commodity"):
            for name, value in getattr(case.given, ns).items():
                problem = check_override(facts.catalog, f"{ns}.{name}",
                                         given_value(value, case.given.as_of, "case"))
                if problem:
                    bad(doc.key_at((*base, "given", ns, name)), "bad-given", f"given.{ns}: {problem}",
                        "Fact paths are listed in facts/catalog.yaml (give `name`, not `stock.name`, here).")
    if case.symbol is not None:
        try:
            facts.find(case.symbol)
        except LookupFailure as exc:
            bad(at("symbol"), "unknown-symbol", exc.problems[0].message, exc.problems[0].hint)
    if case.file is not None and not (lc.path.parent / case.file).is_file():
        bad(at("file"), "missing-file", f"file: '{case.file}' does not exist (relative to {display_path(lc.path)}).",
            "Give a stock fact file's path relative to the case file.")
    return sorted(out, key=lambda p: (p.loc.line, p.loc.col))


def case_facts(ws: Workspace, case: Case, case_path: Path) -> SymbolFacts:
    policy = ws.book.policy.conflicts
    if case.symbol is not None:
        sf = ws.symbol_facts(case.symbol, case.as_of)
    elif case.file is not None:
        path = (case_path.parent / case.file).resolve()
        problems: list[Problem] = []
        doc = read_mapping(path, None, problems)
        if doc is None:
            raise RuleError(problems)

        stf, errs = validate(StockFile, doc, data={**doc.data, "facts": {}})
        facts = fact_entries(doc, doc.data.get("facts"), "stock", ws.facts.catalog, ws.facts.sources, problems)
        if errs or problems or stf is None:
            raise RuleError(errs + problems)
        sf = symbol_facts(ws.facts, StockFacts(stf, doc.path, facts, doc), ws.book.policy, case.as_of, ws.deriver)
    else:
        assert case.given is not None
        g = case.given
        stock_file = StockFile(symbol="000000.SH", name=case.name, sector="__case__", exchange="SH")

        def as_facts(values: Mapping[str, object]) -> dict[str, list[FactValue]]:
            return {k: [given_value(v, g.as_of, "case")] for k, v in values.items()}

        base = FactBase(ws.facts.root, ws.facts.catalog, ws.facts.sources, {},
                        {"__case__": SectorFacts(SectorFile(sector="__case__", name="case"), "case",
                                                 as_facts(g.sector))},
                        as_facts(g.commodity))
        sf = symbol_facts(base, StockFacts(stock_file, "case", as_facts(g.stock), None), policy, g.as_of)
        bad = [f"{ns}.{k}" for ns, d in (("stock", g.stock), ("sector", g.sector), ("commodity", g.commodity))
               for k in d if ws.facts.catalog.spec(f"{ns}.{k}") is None]
        if bad:
            raise ValueError(f"unknown fact path(s) in given: {', '.join(bad)}")
    if case.set:
        as_of = sf.as_of or (case.given.as_of if case.given else GivenFacts().as_of)
        overrides = {p: given_value(v, as_of, "override") for p, v in case.set.items()}
        sf = with_overrides(sf, ws.facts.catalog, overrides)
    return sf


def _near(label: str, got: float | None, want: float | None, tol: float) -> list[str]:
    if want is None:
        return []
    if got is None:
        return [f"{label}: expected {want:g} (+/- {tol:g}), got none"]
    return [] if abs(got - want) <= tol else [f"{label}: expected {want:g} (+/- {tol:g}), got {got:g}"]


def _range(label: str, low: float | None, high: float | None, exp: RangeExpect) -> list[str]:
    out = _near(f"{label} low", low, exp.low, exp.tol) + _near(f"{label} high", high, exp.high, exp.tol)
    for name, value, bound, cmp in (("low", low, exp.low_min, "min"), ("low", low, exp.low_max, "max"),
                                    ("high", high, exp.high_min, "min"), ("high", high, exp.high_max, "max")):
        if bound is None:
            continue
        if value is None:
            out.append(f"{label} {name}: expected a value {'>=' if cmp == 'min' else '<='} {bound}, got none")
        elif (cmp == "min" and value < bound) or (cmp == "max" and value > bound):
            out.append(f"{label} {name}: expected {'>=' if cmp == 'min' else '<='} {bound}, got {value}")
    return out


def compare(case: Case, ev: Evaluation) -> list[str]:
    """Every unmet expectation, one readable line each: what was expected, what came out."""
    x = case.expect
    out: list[str] = []
    if x.rating is not None and ev.rating != x.rating:
        out.append(f"rating: expected {x.rating}, got {ev.rating} (score {ev.score:g}; {ev.rating_info.decided_by})")
    if x.score is not None and abs(ev.score - x.score) > 1e-9:
        out.append(f"score: expected {x.score:g}, got {ev.score:g} ({ev.score - x.score:+g})")
        out += score_detail(x.score, ev)
    signals = {s.name for s in ev.signals}
    out += [f"signal {s}: expected, not emitted" for s in x.signals if s not in signals]
    out += [f"signal {s}: not expected, emitted by {next(g.rule for g in ev.signals if g.name == s)}"
            for s in x.no_signals if s in signals]
    fired = {f.rule for f in ev.fired}
    not_eval = {n.rule: n for n in ev.not_fired if n.status == "not_evaluable"}
    out += [f"rule {r}: expected to fire, did not" + (
        f" (not evaluable: needs {', '.join(not_eval[r].missing)})" if r in not_eval else "")
        for r in x.fired if r not in fired]
    out += [f"rule {r}: expected not to fire, fired" for r in x.not_fired if r in fired]
    out += [f"rule {r}: expected not evaluable, was {'fired' if r in fired else 'false'}"
            for r in x.not_evaluable if r not in not_eval]
    warned = {w.rule for w in ev.warnings}
    out += [f"warning from {r}: expected, none raised" for r in x.warnings if r not in warned]
    out += [f"warning from {r}: not expected, raised: {next(w.message for w in ev.warnings if w.rule == r)}"
            for r in x.no_warnings if r in warned]
    entries = {e.horizon: e for e in ev.entries}
    for horizon, exp in x.entries.items():
        got = entries.get(horizon)
        out += _entry(horizon, got, exp)
    if x.target is not None:
        if ev.target is None:
            out.append("target: expected a target range, got none")
        else:
            t = x.target
            out += _range("target", ev.target.low, ev.target.high, t)
            out += _near("target value", ev.target.value, t.value, t.tol)
            out += _near("target upside_pct", ev.target.upside_pct, t.upside_pct, t.tol)
            if t.method is not None and ev.target.rule != t.method:
                out.append(f"target method: expected {t.method}, got {ev.target.rule}")
    present = {f.family for f in ev.coverage.families if f.present} if ev.coverage else set()
    out += [f"evidence {f}: expected present, missing" for f in x.evidence if f not in present]
    out += [f"evidence {f}: expected missing, present" for f in x.no_evidence if f in present]
    if x.fragile is not None and ev.fragility is not None and ev.fragility.fragile != x.fragile:
        why = "; ".join(ev.fragility.notes) or "nothing near an edge"
        out.append(f"fragile: expected {str(x.fragile).lower()}, got {str(ev.fragility.fragile).lower()} ({why})")
    if x.no_target and ev.target is not None:
        out.append(f"target: expected none, got {ev.target.low}-{ev.target.high} from {ev.target.rule}")
    return out


def score_detail(expected: float, ev: Evaluation, limit: int = 5) -> list[str]:
    """The signals behind a score that missed: what was emitted, and the rules whose firing (or not
    firing) would account for the difference, with what kept each."""
    gap = round(expected - ev.score, 6)
    emitted = [s for s in ev.signals if s.score]
    out = ["  signals emitted: " + (", ".join(f"{s.score:+g} {s.name} ({s.rule})" for s in
                                              sorted(emitted, key=lambda s: (-s.score, s.name))) or "none scoring")]
    by_rule: dict[str, float] = {}
    for s in ev.signals:
        by_rule[s.rule] = by_rule.get(s.rule, 0.0) + s.score
    missed = [(sum(float(w["score"]) for w in n.would_emit), n) for n in ev.not_fired]
    exact = [(v, n) for v, n in missed if abs(v - gap) < 1e-9]
    toward = exact or [(v, n) for v, n in missed if v * gap > 0]
    for v, n in sorted(toward, key=lambda vn: (abs(vn[0] - gap), vn[1].rule))[:limit]:
        why = "; ".join(n.blocked_by) or n.status.replace("_", " ")
        out.append(f"  {'would make up' if abs(v - gap) < 1e-9 else 'toward it'}: {v:+g} from {n.rule} "
                   f"({n.file}:{n.line}), which did not fire: {why}")
    stopped = [(r, v) for r, v in by_rule.items() if abs(-v - gap) < 1e-9]
    for r, v in sorted(stopped)[:limit]:
        out.append(f"  would make up: {-v:+g} had {r} not fired (it emitted {v:+g})")
    return out


def _entry(horizon: str, got: EntryOut | None, exp: EntryExpect) -> list[str]:
    if exp.absent:
        return [f"entry {horizon}: expected none, got one from {got.rule}"] if got is not None else []
    if got is None:
        return [f"entry {horizon}: expected an entry, got none"]
    out = []
    if exp.advice and got.advice != exp.advice:
        out.append(f"entry {horizon} advice: expected {exp.advice}, got {got.advice}")
    if exp.note_contains and exp.note_contains not in got.note:
        out.append(f"entry {horizon} note: expected to contain {exp.note_contains!r}, got {got.note!r}")
    return out + _range(f"entry {horizon}", got.low, got.high, exp)


def run_cases(ws: Workspace) -> list[CaseResult]:
    results = []
    for lc in load_cases(ws.rules_dir, ws.book, ws.facts):
        case, where = lc.case, lc.where
        if lc.problems:  # an expectation naming nothing real: the case fails without running
            results.append(CaseResult(case, where, [], error="\n".join(p.render() for p in lc.problems)))
            continue
        try:
            sf = case_facts(ws, case, lc.path)
            ev = ws.evaluate_facts(sf, run_id="test")
        except (VerdictError, ValueError) as exc:
            msg = exc.render() if isinstance(exc, VerdictError) else str(exc)
            results.append(CaseResult(case, where, [], error=msg))
            continue
        results.append(CaseResult(case, where, compare(case, ev), {f.rule for f in ev.fired}))
    return results


def coverage(ws: Workspace, results: list[CaseResult]) -> Coverage:
    fired = set().union(*(r.fired for r in results)) if results else set()
    per_pack: dict[str, tuple[int, int, list[str]]] = {}
    for r in ws.book.rules:
        f, t, never = per_pack.get(r.pack, (0, 0, []))
        if r.id in fired:
            per_pack[r.pack] = (f + 1, t + 1, never)
        else:
            per_pack[r.pack] = (f, t + 1, [*never, r.id])
    return Coverage(dict(sorted(per_pack.items())))
