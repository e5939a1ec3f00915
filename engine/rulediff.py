"""Before an edit lands: which symbols' ratings, targets, entries and warnings change, and why.

Evaluates every symbol with the old and the new rule directory on the same facts and names the
rules whose firing changed and the rules whose text changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import Evaluation
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

    def as_dict(self) -> dict[str, Any]:
        return {"rules_added": self.added, "rules_removed": self.removed, "rules_edited": self.edited,
                "symbols": [s.as_dict() for s in self.symbols]}


def _outcome(ev: Evaluation) -> dict[str, Any]:
    return {
        "rating": ev.rating,
        "score": ev.score,
        "target": None if ev.target is None else (ev.target.low, ev.target.high),
        "entries": {e.horizon: (e.advice, e.low, e.high) for e in ev.entries},
        "warnings": sorted((w.rule, w.severity, w.message) for w in ev.warnings),
    }


def describe_changes(old: Evaluation, new: Evaluation) -> list[str]:
    a, b = _outcome(old), _outcome(new)
    out = []
    if a["rating"] != b["rating"]:
        out.append(f"rating {a['rating']} -> {b['rating']}")
    if a["score"] != b["score"]:
        out.append(f"score {a['score']:g} -> {b['score']:g}")
    if a["target"] != b["target"]:
        out.append(f"target {_rng(a['target'])} -> {_rng(b['target'])}")
    for h in ("short", "medium", "long"):
        ea, eb = a["entries"].get(h), b["entries"].get(h)
        if ea != eb:
            out.append(f"{h} entry {_entry(ea)} -> {_entry(eb)}")
    wa, wb = {w[0] for w in a["warnings"]}, {w[0] for w in b["warnings"]}
    out += [f"new warning from {r}" for r in sorted(wb - wa)]
    out += [f"warning from {r} gone" for r in sorted(wa - wb)]
    return out


def _rng(r: Any) -> str:
    return "none" if r is None else f"{r[0]:.2f}-{r[1]:.2f}"


def _entry(e: Any) -> str:
    if e is None:
        return "none"
    advice, low, high = e
    return advice + ("" if low is None and high is None else f" {low}-{high}")


def diff_rulebooks(old: Workspace, new: Workspace) -> RuleBookDiff:
    o, n = old.rules, new.rules
    edited = [rid for rid in sorted(set(o) & set(n))
              if o[rid].rule.model_dump() != n[rid].rule.model_dump()]
    symbols = []
    for sym in new.symbols():
        a, b = old.evaluate(sym, run_id="diff"), new.evaluate(sym, run_id="diff")
        changes = describe_changes(a, b)
        fa, fb = {f.rule for f in a.fired}, {f.rule for f in b.fired}
        if changes:
            symbols.append(SymbolChange(sym, b.name, changes, sorted(fb - fa), sorted(fa - fb)))
    return RuleBookDiff(sorted(set(n) - set(o)), sorted(set(o) - set(n)), edited, symbols)
