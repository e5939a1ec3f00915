"""Two evaluations side by side: what changed in the outcome, which rules newly fire or stop, which facts changed.

Works on outputs alone (two recorded runs, or a recorded run and its facts under other rules), so a
run made before a rule edit is compared with the rules and bands it was rated by. Never evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .expr import fmt_num
from .model import HORIZONS, EntryOut, Evaluation, FactUse, TargetOut


@dataclass
class FactChange:
    path: str
    before: FactUse | None
    after: FactUse | None

    def describe(self) -> str:
        a, b = self.before, self.after
        if a is None or b is None:
            return f"{self.path}: {_fact(a)} -> {_fact(b)}"
        unit = f" {b.unit}" if b.unit else ""
        src_a, src_b = a.derived or a.source or "no source", b.derived or b.source or "no source"
        source = src_b if src_a == src_b else f"{src_a} -> {src_b}"
        when = _date(b) if _date(a) == _date(b) else f"{_date(a)} -> {_date(b)}"
        return f"{self.path}: {_value(a)} -> {_value(b)}{unit} ({source}, as of {when})"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before.model_dump(mode="json") if self.before else None,
                "after": self.after.model_dump(mode="json") if self.after else None}


@dataclass
class RunDiff:
    before: Evaluation
    after: Evaluation
    outcome: list[str]
    newly_fired: list[str]
    stopped_firing: list[str]
    facts: list[FactChange]
    files: list[str] = field(default_factory=list)  # rule and fact files that differ, when known

    @property
    def changed(self) -> bool:
        """Did the outcome, the rules that fired or the facts change?"""
        return bool(self.outcome or self.newly_fired or self.stopped_firing or self.facts)

    def as_dict(self) -> dict[str, Any]:
        return {"before": _side(self.before), "after": _side(self.after), "changed": self.changed,
                "outcome": self.outcome, "newly_fired": self.newly_fired, "stopped_firing": self.stopped_firing,
                "facts": [f.as_dict() for f in self.facts], "files": self.files}


def _side(ev: Evaluation) -> dict[str, Any]:
    return {"run_id": ev.run_id, "symbol": ev.symbol, "as_of": ev.as_of.isoformat() if ev.as_of else None,
            "rating": ev.rating, "score": ev.score, "ruleset_hash": ev.ruleset_hash, "facts_hash": ev.facts_hash,
            "engine_version": ev.engine_version}


def _value(f: FactUse) -> str:
    return fmt_num(f.value) if isinstance(f.value, int | float) and not isinstance(f.value, bool) else str(f.value)


def _date(f: FactUse) -> str:
    return f.as_of.isoformat() if f.as_of else "no date"


def _fact(f: FactUse | None) -> str:
    if f is None:
        return "(absent)"
    unit = f" {f.unit}" if f.unit else ""
    return f"{_value(f)}{unit} ({f.derived or f.source or 'no source'}, as of {_date(f)})"


def _target(t: TargetOut | None) -> str:
    return "none" if t is None else f"{fmt_num(t.low)}-{fmt_num(t.high)} {t.currency}"


def _entry(e: EntryOut | None) -> str:
    if e is None:
        return "none"
    bounds = "" if e.low is None and e.high is None else f" {_bound(e.low)}-{_bound(e.high)}"
    return f"{e.advice}{bounds}"


def _bound(v: float | None) -> str:
    return "?" if v is None else fmt_num(v)


def outcome_changes(a: Evaluation, b: Evaluation) -> list[str]:
    """Rating, score, target, entries per horizon and warnings (by rule, and by message), in words."""
    out = []
    if a.rating != b.rating:
        out.append(f"rating {a.rating} -> {b.rating}")
    if a.score != b.score:
        out.append(f"score {fmt_num(a.score)} -> {fmt_num(b.score)}")
    if _target(a.target) != _target(b.target):
        out.append(f"target {_target(a.target)} -> {_target(b.target)}")
    ea: dict[str, EntryOut] = {e.horizon: e for e in a.entries}
    eb: dict[str, EntryOut] = {e.horizon: e for e in b.entries}
    for h in HORIZONS:
        if _entry(ea.get(h)) != _entry(eb.get(h)):
            out.append(f"{h} entry {_entry(ea.get(h))} -> {_entry(eb.get(h))}")
    wa = {(w.rule, w.message): w for w in a.warnings}
    wb = {(w.rule, w.message): w for w in b.warnings}
    rules_a, rules_b = {w.rule for w in a.warnings}, {w.rule for w in b.warnings}
    for key in sorted(set(wb) - set(wa)):
        verb = "warning now reads" if key[0] in rules_a else "new warning"
        out.append(f"{verb} ({wb[key].severity}) {key[0]}: {key[1]}")
    out += [f"warning gone ({wa[k].severity}) {k[0]}: {k[1]}" for k in sorted(set(wa) - set(wb))
            if k[0] not in rules_b]
    return out


def fact_changes(a: Evaluation, b: Evaluation) -> list[FactChange]:
    """Facts whose value, unit or source differ, and facts only one side could read. A fact whose value
    and source stayed while its date moved (a file header, a stated fact read on a later day) is not a change."""
    from .valuation import SOURCE

    # the valuation method's results (target, upside) are outputs of the rules, shown as the target's change
    fa = {f.path: f for f in a.facts if f.source != SOURCE.publisher}
    fb = {f.path: f for f in b.facts if f.source != SOURCE.publisher}

    def same(x: FactUse, y: FactUse) -> bool:
        return (x.value, x.unit, x.source) == (y.value, y.unit, y.source) and (
            x.derived == y.derived or (bool(x.derived) and bool(y.derived)))

    return [FactChange(p, fa.get(p), fb.get(p)) for p in sorted(set(fa) | set(fb))
            if fa.get(p) is None or fb.get(p) is None or not same(fa[p], fb[p])]


def diff_evaluations(a: Evaluation, b: Evaluation, files: list[str] | None = None) -> RunDiff:
    fired_a = [f.rule for f in a.fired]
    fired_b = [f.rule for f in b.fired]
    return RunDiff(a, b, outcome_changes(a, b), sorted(set(fired_b) - set(fired_a)),
                   sorted(set(fired_a) - set(fired_b)), fact_changes(a, b), files or [])


def manifest_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files of two snapshots that differ, named inside their folder (`valuation.yaml changed`)."""
    def inner(m: dict[str, str]) -> dict[str, str]:
        return {name.split("/", 1)[-1]: h for name, h in m.items()}

    a, b = inner(before), inner(after)
    out = [f"{n} changed" for n in sorted(set(a) & set(b)) if a[n] != b[n]]
    out += [f"{n} added" for n in sorted(set(b) - set(a))]
    out += [f"{n} removed" for n in sorted(set(a) - set(b))]
    return out

