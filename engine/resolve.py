"""Stage 5, resolve: what fired -> rating, target range, entry ranges per horizon, warnings.

The rating comes from the summed signal scores and the policy's bands, then rating overrides by
salience (set, then caps and floors). Targets and entries take the highest-salience rule whose
bounds can be computed from the symbol's facts. Pure: no engine, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from . import evidence, expr, valuation
from .derive import SymbolFacts
from .evidence import EvidenceIndex
from .load import LoadedRule, RuleBook
from .model import HORIZONS, EntryOut, EvidenceCoverage, Policy, RatingOut, SignalOut, TargetOut, WarningOut
from .rete import Firing

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


class Signal(NamedTuple):
    """A signal a fired rule emitted (a plain tuple: a screen makes ~45 per symbol at 200 rules)."""

    name: str
    score: float
    rule: str
    sources: list[str]  # the rules whose signals the emitting rule consumed

    def out(self) -> SignalOut:
        return SignalOut.model_construct(name=self.name, score=self.score, rule=self.rule, sources=self.sources)


@dataclass
class Resolution:
    rating: RatingOut
    score: float
    target: TargetOut | None
    entries: list[EntryOut]
    warnings: list[WarningOut]
    firings: list[Firing]
    rules: dict[str, LoadedRule]
    coverage: EvidenceCoverage | None = None
    valuations: list[valuation.Valued | valuation.NotValued] = field(default_factory=list)

    @cached_property
    def signals(self) -> list[Signal]:
        """Every signal emitted, in firing order (built when asked: a screen needs only the score)."""
        return signals_of(self.firings, self.rules)


def signals_of(firings: list[Firing], rules: dict[str, LoadedRule]) -> list[Signal]:
    out: list[Signal] = []
    for f in firings:
        lr = rules[f.rule]
        for name, score in lr.emitted:
            out.append(Signal(name, score, f.rule, f.signal_sources if lr.reads_signals else []))
    return out


def signal_env(signals: list[Signal]) -> dict[str, list[float]]:
    env: dict[str, list[float]] = {}
    for s in signals:
        env.setdefault(s.name, []).append(s.score)
    return env


def band(policy: Policy, score: float) -> tuple[str, str]:
    for b in policy.scale.ratings:
        if b.min_score is None or score >= b.min_score:
            edge = f"score {expr.fmt_num(score)} >= {expr.fmt_num(b.min_score)}" if b.min_score is not None \
                else f"score {expr.fmt_num(score)} below every other band"
            return b.name, edge
    last = policy.scale.ratings[-1]  # pragma: no cover - the last band has no minimum
    return last.name, "lowest band"


def _by_salience(firings: list[Firing], rules: dict[str, LoadedRule]) -> list[str]:
    """Fired rules that set more than signals, highest salience first (the order precedence takes)."""
    return sorted((f.rule for f in firings if rules[f.rule].has_outputs), key=lambda rid: rules[rid].salience_key)


def rate(firings: list[Firing], rules: dict[str, LoadedRule], policy: Policy,
         facts: dict[str, Any] | None = None, idx: EvidenceIndex | None = None, score_shift: float = 0) -> Rating:
    """The rating alone (score band, overrides, then the policy's evidence and upside checks when the
    facts are given). resolve() adds the rest. `score_shift` asks what the rating would be with the
    score moved by that much (fragility)."""
    total, count = 0.0, 0
    for f in firings:
        for _, signal_score in rules[f.rule].emitted:
            total += signal_score
            count += 1
    score = round(total + score_shift, 6)
    names = policy.scale.names()
    rating, decided_by = band(policy, score)
    decided_by = f"{decided_by} (sum of {count} signal scores)"
    steps = [f"{decided_by}: {rating}"]

    overrides = [(rid, rules[rid].rule.then.rating) for rid in _by_salience(firings, rules)
                 if rules[rid].rule.then.rating]
    sets = [(rid, o) for rid, o in overrides if o is not None and o.mode == "set"]
    if sets:
        first, chosen = sets[0]
        rating, decided_by = chosen.value, f"override by {first} (salience {rules[first].rule.salience})"
        steps.append(f"{decided_by}: {rating}")
    for rid, o in overrides:
        if o is None:
            continue
        at, lim = names.index(rating), names.index(o.value)
        if o.mode == "cap" and at < lim:
            rating, decided_by = o.value, f"capped at {o.value} by {rid}"
            steps.append(decided_by)
        elif o.mode == "floor" and at > lim:
            rating, decided_by = o.value, f"raised to {o.value} by {rid}"
            steps.append(decided_by)
    if facts is not None and idx is not None:
        fired = {f.rule for f in firings}
        present = evidence.present_families(policy, idx, facts, fired)
        rating, moves = evidence.gate(policy, rating, present, evidence.upside_of(facts))
        if moves:
            decided_by = moves[-1].rsplit(":", 1)[0]
            steps += moves
        return Rating(rating, decided_by, score, steps, moves)
    return Rating(rating, decided_by, score, steps, [])


class Rating(NamedTuple):
    name: str
    decided_by: str
    score: float
    steps: list[str]  # how it was reached, one line each
    moves: list[str]  # of them, the policy's moves for missing evidence or an inconsistent upside


def resolve(firings: list[Firing], rules: dict[str, LoadedRule], policy: Policy, facts: SymbolFacts,
            book: RuleBook | None = None) -> Resolution:
    idx = evidence.index(book) if book is not None else None
    rating, decided_by, score, steps, moves = rate(firings, rules, policy, facts.chosen if idx else None, idx)
    fired = _by_salience(firings, rules)
    meaning = next(b.meaning for b in policy.scale.ratings if b.name == rating)
    rating_out = RatingOut.model_construct(name=rating, meaning=meaning, scale=policy.scale.name,
                                           benchmark=policy.scale.benchmark, horizon=policy.scale.horizon,
                                           decided_by=decided_by, bands=list(policy.scale.bands_out), steps=steps)
    res = Resolution(rating_out, score, None, [], [], firings, rules)
    results = valuation.valuations(book, facts) if book is not None and book.valuations else []
    if book is not None:
        missing = {r.method.id: r.missing for r in results if isinstance(r, valuation.NotValued)}
        res.coverage = evidence.coverage(book, facts.chosen, {f.rule for f in firings}, rating, missing)
    res.valuations = results
    # Signals are built only when a fired rule's values or messages may read them; once built, they are
    # the resolution's own (a rendered evaluation uses the same list).
    env = expr.EvalEnv(facts.values(), signal_env(res.signals), facts.date) if fired else expr.EvalEnv({}, {})

    # A fired rule whose values or messages read a fact this evaluation lacks (never stated, not yet
    # known, dropped as stale) is said so in a warning: its value is not used, its message shows the gap.
    unmet: list[tuple[str, str, list[str]]] = []  # (rule, what it would have set, the facts it lacks)
    gaps: dict[str, list[str]] = {}  # rule -> facts its rendered messages lack

    target = _method_target(results, facts)  # a pack's valuation method comes before a rule's target
    for rid in fired:
        lr = rules[rid]
        t = lr.rule.then.target
        if t is None:
            continue
        low, high = _num(lr, "target.low", env), _num(lr, "target.high", env)
        if low is None or high is None:
            unmet.append((rid, "target", _absent(lr, ("target.low", "target.high"), env)))
            continue
        if target is None:
            low, high = sorted((low, high))
            target = TargetOut(low=round(low, 2), high=round(high, 2), currency=t.currency,
                               note=_text(lr, "target.note", env, gaps), rule=rid)
        break

    entries: dict[str, EntryOut] = {}
    for rid in fired:
        lr = rules[rid]
        for i, e in enumerate(lr.rule.then.entries()):
            if e.horizon in entries:
                continue
            low = _num(lr, f"entry.{i}.low", env) if e.low is not None else None
            high = _num(lr, f"entry.{i}.high", env) if e.high is not None else None
            if (e.low is not None and low is None) or (e.high is not None and high is None):
                unmet.append((rid, f"{e.horizon} entry", _absent(lr, (f"entry.{i}.low", f"entry.{i}.high"), env)))
                continue
            if low is not None and high is not None and low > high:
                low, high = high, low
            entries[e.horizon] = EntryOut(horizon=e.horizon, advice=e.advice,
                                          low=None if low is None else round(low, 2),
                                          high=None if high is None else round(high, 2),
                                          note=_text(lr, f"entry.{i}.note", env, gaps), rule=rid)

    warnings: list[WarningOut] = []
    for rid in fired:
        lr = rules[rid]
        for i, w in enumerate(lr.rule.then.warnings()):
            warnings.append(WarningOut(rule=rid, severity=w.severity,
                                       message=_text(lr, f"warning.{i}", env, gaps)))
    used = {"target": target.rule if target else None, **{f"{e.horizon} entry": e.rule for e in entries.values()}}
    for rid, what, lacks in unmet:
        if lacks:
            instead = f"{used[what]}'s is used instead" if used.get(what) else "none is given"
            warnings.append(WarningOut(rule="facts.missing", severity="medium", message=(
                f"{rid} fired but sets no {what}: it needs {', '.join(lacks)}, which this evaluation does not "
                f"have (not stated, not yet known, or too old); {instead}.")))
    for rid, lacks in gaps.items():
        warnings.append(WarningOut(rule="facts.missing", severity="medium", message=(
            f"{rid} fired, but its message reads {', '.join(lacks)}, which this evaluation does not have "
            "(not stated, not yet known, or too old): the message shows it as unknown.")))
    for c in facts.conflicts:
        warnings.append(WarningOut(rule="facts.conflict", severity="medium", message=c.message))
    for n in facts.notes:
        warnings.append(WarningOut.model_validate({"rule": n.rule, "severity": n.severity, "message": n.message}))
    for move in moves:
        warnings.append(WarningOut(rule="policy.evidence", severity="medium", message=f"Rating moved: {move}."))
    if res.coverage is not None:
        for need in res.coverage.needs:
            warnings.append(WarningOut(rule="policy.evidence", severity="low", message=f"Missing evidence: {need}."))
    warnings.sort(key=lambda w: (SEVERITY_ORDER[w.severity], w.rule))
    res.target, res.entries, res.warnings = target, [entries[h] for h in HORIZONS if h in entries], warnings
    return res


def _method_target(results: list[valuation.Valued | valuation.NotValued], facts: SymbolFacts) -> TargetOut | None:
    """The target of the first computable valuation method (with the upside the facts carry)."""
    best = valuation.primary(results)
    if best is None:
        return None
    upside = evidence.upside_of(facts.chosen)
    return TargetOut(low=best.low, high=best.high, currency="RMB", note=best.how, rule=best.method.id,
                     value=best.value, upside_pct=best.upside_pct if upside is None else upside)


def _num(lr: LoadedRule, key: str, env: expr.EvalEnv) -> float | None:
    node = lr.values.get(key)
    if node is None:
        return None
    v = expr.value_of(node, env)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _absent(lr: LoadedRule, keys: tuple[str, ...], env: expr.EvalEnv) -> list[str]:
    """Facts the rule's values under `keys` read that the evaluation lacks ([] when something else failed,
    such as a division by zero)."""
    paths = [p for k in keys if (node := lr.values.get(k)) is not None for p in expr.fact_paths(node)]
    return [p for p in dict.fromkeys(paths) if p not in env.facts]


def _text(lr: LoadedRule, key: str, env: expr.EvalEnv, gaps: dict[str, list[str]] | None = None) -> str:
    parts = lr.templates.get(key)
    if not parts:
        return ""
    if gaps is not None:
        lacks = [p for part in parts if isinstance(part, expr.Placeholder) for p in expr.fact_paths(part.node)
                 if p not in env.facts]
        if lacks:
            known = gaps.setdefault(lr.id, [])
            known.extend(p for p in dict.fromkeys(lacks) if p not in known)
    return expr.render_template(parts, env)
