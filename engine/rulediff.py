"""Before an edit lands: which symbols' ratings, targets, entries and warnings change, and why.

Evaluates every symbol with the old and the new rule directory on the same facts and names the
rules whose firing changed and the rules whose text changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .model import EntryOut, Evaluation
from .pipeline import Workspace


@dataclass
class SymbolChange:
    symbol: str
    name: str
    changes: list[str]
    newly_fired: list[str] = field(default_factory=list)
    stopped_firing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "name": self.name, "changes": self.changes,
                "newly_fired": self.newly_fired, "stopped_firing": self.stopped_firing}


@dataclass
class RuleBookDiff:
    added: list[str]
    removed: list[str]
    edited: list[str]
    symbols: list[SymbolChange]

    @property
    def changed(self) -> bool:
        """Whether any symbol's outcome, or the set of rules it fires, differs (what CI gates on)."""
        return bool(self.symbols)

    def as_dict(self) -> dict[str, Any]:
        return {"rules_added": self.added, "rules_removed": self.removed, "rules_edited": self.edited,
                "symbols": [s.as_dict() for s in self.symbols], "changed": self.changed}


def describe_changes(old: Evaluation, new: Evaluation) -> list[str]:
    """Every difference a reader of the two outcomes would see: rating, score, target, each entry
    (range, advice, the rule it comes from, its note) and each warning (raised, gone, reworded)."""
    out = []
    if old.rating != new.rating:
        out.append(f"rating {old.rating} -> {new.rating}")
    if old.score != new.score:
        out.append(f"score {old.score:g} -> {new.score:g}")
    ta, tb = _target(old), _target(new)
    if ta != tb:
        out.append(f"target {ta} -> {tb}")
    entries_a, entries_b = {e.horizon: e for e in old.entries}, {e.horizon: e for e in new.entries}
    for h in ("short", "medium", "long"):
        ea, eb = entries_a.get(h), entries_b.get(h)
        if _entry(ea) != _entry(eb):
            out.append(f"{h} entry {_entry(ea)} -> {_entry(eb)}")
        elif ea is not None and eb is not None and ea.rule != eb.rule:
            out.append(f"{h} entry now from {eb.rule} (was {ea.rule})")
        elif ea is not None and eb is not None and ea.note != eb.note:
            out.append(f"{h} entry note: {_short(ea.note)!r} -> {_short(eb.note)!r}")
    out += _warning_changes(old, new)
    return out


def _warning_changes(old: Evaluation, new: Evaluation) -> list[str]:
    wa, wb = Counter((w.rule, w.message) for w in old.warnings), Counter((w.rule, w.message) for w in new.warnings)
    gone, added = sorted((wa - wb).elements()), sorted((wb - wa).elements())
    out = []
    for rule in sorted({r for r, _ in gone} | {r for r, _ in added}):
        was, now = [m for r, m in gone if r == rule], [m for r, m in added if r == rule]
        while was and now:  # the same rule warns in other words (another value in its message)
            out.append(f"warning from {rule} changed: {_short(was.pop(0))!r} -> {_short(now.pop(0))!r}")
        out += [f"new warning from {rule}: {_short(m)!r}" for m in now]
        out += [f"warning from {rule} gone: {_short(m)!r}" for m in was]
    return out


def _short(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def _target(ev: Evaluation) -> str:
    return "none" if ev.target is None else f"{ev.target.low:.2f}-{ev.target.high:.2f}"


def _entry(e: EntryOut | None) -> str:
    if e is None:
        return "none"
    if e.low is None and e.high is None:
        return e.advice
    return f"{e.advice} {'' if e.low is None else f'{e.low:.2f}'}-{'' if e.high is None else f'{e.high:.2f}'}"


def _items(ws: Workspace) -> dict[str, Any]:
    """Rules and valuation methods by id, as data (a method's edit moves targets as a rule's does)."""
    out: dict[str, Any] = {rid: lr.rule.model_dump() for rid, lr in ws.rules.items()}
    out.update({v.id: v.spec.model_dump() for v in ws.book.valuations})
    return out


def diff_rulebooks(old: Workspace, new: Workspace) -> RuleBookDiff:
    o, n = _items(old), _items(new)
    edited = [rid for rid in sorted(set(o) & set(n)) if o[rid] != n[rid]]
    symbols = []
    for sym in new.symbols():
        a, b = old.evaluate(sym, run_id="diff"), new.evaluate(sym, run_id="diff")
        changes = describe_changes(a, b)
        fa, fb = {f.rule for f in a.fired}, {f.rule for f in b.fired}
        if changes or fa != fb:  # a rule that fires differently is a change even if the outcome holds
            symbols.append(SymbolChange(sym, b.name, changes, sorted(fb - fa), sorted(fa - fb)))
    return RuleBookDiff(sorted(set(n) - set(o)), sorted(set(o) - set(n)), edited, symbols)
