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

from .derive import SymbolFacts, given_value, symbol_facts, with_overrides
from .errors import Location, LookupFailure, Problem, RuleError, VerdictError
from .load import SectorFacts, StockFacts, _read, display_path, validate
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


def load_cases(rules_dir: Path) -> list[tuple[Case, Location, Path]]:
    problems: list[Problem] = []
    out: list[tuple[Case, Location, Path]] = []
    folder = rules_dir / TESTS_DIR
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        raise LookupFailure([Problem(Location(display_path(folder)), "no-tests",
                                     f"no rule tests found in {display_path(folder)}.",
                                     "Add YAML files with `cases:` there (see README, 'Rule tests').")])
    for path in files:
        doc = _read(path, rules_dir, problems)
        if doc is None:
            continue
        cf, errs = validate(CaseFile, doc)
        problems.extend(errs)
        if cf:
            out += [(c, doc.at(("cases", i)), path) for i, c in enumerate(cf.cases)]
    if problems:
        raise RuleError(problems)
    return out


def case_facts(ws: Workspace, case: Case, case_path: Path) -> SymbolFacts:
    policy = ws.book.policy.conflicts
    if case.symbol is not None:
        sf = ws.symbol_facts(case.symbol)
    elif case.file is not None:
        path = (case_path.parent / case.file).resolve()
        problems: list[Problem] = []
        doc = _read(path, None, problems)
        if doc is None:
            raise RuleError(problems)
        from .load import _fact_entries

        stf, errs = validate(StockFile, doc, data={**doc.data, "facts": {}})
        facts = _fact_entries(doc, doc.data.get("facts"), "stock", ws.facts.catalog, ws.facts.sources, problems)
        if errs or problems or stf is None:
            raise RuleError(errs + problems)
        sf = symbol_facts(ws.facts, StockFacts(stf, doc.path, facts, doc), ws.book.policy)
    else:
        assert case.given is not None
        g = case.given
        stock_file = StockFile(symbol="000000.SH", name=case.name, sector="__case__", exchange="SH")

        def as_facts(values: Mapping[str, object]) -> dict[str, list[FactValue]]:
            return {k: [given_value(v, g.as_of, "case")] for k, v in values.items()}

        from .load import FactBase

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


def _range(label: str, low: float | None, high: float | None, exp: RangeExpect) -> list[str]:
    out = []
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
        out.append(f"score: expected {x.score:g}, got {ev.score:g}")
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
            out += _range("target", ev.target.low, ev.target.high, x.target)
    if x.no_target and ev.target is not None:
        out.append(f"target: expected none, got {ev.target.low}-{ev.target.high} from {ev.target.rule}")
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
    for case, where, path in load_cases(ws.rules_dir):
        try:
            sf = case_facts(ws, case, path)
            ev = ws.evaluate_facts(sf, run_id="test")
        except (VerdictError, ValueError) as exc:
            msg = exc.render() if isinstance(exc, VerdictError) else str(exc)
            results.append(CaseResult(case, where, [], error=msg))
            continue
        if case.expect.rating is not None and case.expect.rating not in ws.book.policy.scale.names():
            results.append(CaseResult(case, where, [], error=f"rating '{case.expect.rating}' is not on the scale"))
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
