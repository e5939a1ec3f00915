"""Stage 5a, evidence: which families of evidence an evaluation had, and what the policy lets it conclude.

A missing fact makes the rules that need it not evaluable: that lowers the coverage and is reported,
and is never counted against the stock. A rating whose evidence the policy requires is missing (a
Buy needs a valuation) becomes the rating the policy names instead, and one whose upside to the
target contradicts its label moves to the band the upside supports. Pure: no engine, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import expr
from .load import RuleBook
from .model import EvidenceCoverage, FamilyCoverage, Policy
from .valuation import COMPUTED

UPSIDE = "stock.upside_pct"


@dataclass(frozen=True)
class EvidenceIndex:
    """Per rule book, computed once: each fact-reading rule's family and the paths it reads."""

    rules: tuple[tuple[str, str, tuple[str, ...]], ...]  # (rule id, family, fact paths)
    valuations: tuple[tuple[str, str], ...]  # (method id, family)


_INDEX: dict[int, tuple[RuleBook, EvidenceIndex]] = {}


def index(book: RuleBook) -> EvidenceIndex:
    hit = _INDEX.get(id(book))
    if hit is None or hit[0] is not book:
        if len(_INDEX) > 64:
            _INDEX.clear()
        idx = EvidenceIndex(tuple((r.id, r.evidence, tuple(r.paths)) for r in book.rules if r.paths and r.evidence),
                            tuple((v.id, v.evidence) for v in book.valuations if v.evidence))
        hit = _INDEX[id(book)] = (book, idx)
    return hit[1]


def upside_of(facts: dict[str, Any]) -> float | None:
    """The upside fact as a number (a Chosen or a FactValue), if it is known as a point."""
    c = facts.get(UPSIDE)
    if c is None:
        return None
    fv = getattr(c, "value", c)
    v = getattr(fv, "value", None)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def present_families(policy: Policy, idx: EvidenceIndex, facts: dict[str, Any], fired: set[str]) -> set[str]:
    """Families with at least one evaluable rule (all its facts present); a family that needs a target
    is present only with an upside."""
    has_target = upside_of(facts) is not None
    out: set[str] = set()
    for rid, family, paths in idx.rules:
        if family in out:
            continue
        if rid in fired or all(p in facts for p in paths):
            out.add(family)
    for _, family in idx.valuations:
        if has_target:
            out.add(family)
    return {f for f in out if not (policy.evidence.get(f) and policy.evidence[f].needs_target and not has_target)}


def _lower(policy: Policy, name: str) -> str | None:
    names = policy.scale.names()
    i = names.index(name)
    return names[i + 1] if i + 1 < len(names) else None


def _higher(policy: Policy, name: str) -> str | None:
    names = policy.scale.names()
    i = names.index(name)
    return names[i - 1] if i > 0 else None


def _label(policy: Policy, families: list[str]) -> str:
    return ", ".join(policy.evidence[f].label if f in policy.evidence else f for f in families)


def gate(policy: Policy, rating: str, present: set[str], upside: float | None) -> tuple[str, list[str]]:
    """Move `rating` until its evidence requirements and its upside range hold. Returns the rating and
    one line per move (empty when nothing moved)."""
    steps: list[str] = []
    seen: set[str] = set()
    rel = None if upside is None else upside - policy.scale.expected_benchmark_return_pct
    bench = policy.scale.expected_benchmark_return_pct
    against = f" (less the benchmark's expected {expr.fmt_num(bench)}%)" if bench else ""
    while rating not in seen:
        seen.add(rating)
        band = policy.band_named(rating)
        missing = [f for f in band.requires if f not in present]
        if missing and band.otherwise:
            steps.append(f"{rating} needs {_label(policy, missing)} evidence, which is missing: {band.otherwise}")
            rating = band.otherwise
            continue
        if rel is not None and band.min_upside_pct is not None and rel < band.min_upside_pct:
            lower = _lower(policy, rating)
            if lower is None:
                break
            steps.append(f"upside {rel:.1f}%{against} is below {rating}'s {expr.fmt_num(band.min_upside_pct)}%: "
                         f"{lower}")
            rating = lower
            continue
        if rel is not None and band.max_upside_pct is not None and rel > band.max_upside_pct:
            higher = _higher(policy, rating)
            if higher is None:
                break
            steps.append(f"upside {rel:.1f}%{against} is above {rating}'s {expr.fmt_num(band.max_upside_pct)}%: "
                         f"{higher}")
            rating = higher
            continue
        break
    return rating, steps


def coverage(book: RuleBook, facts: dict[str, Any], fired: set[str], rating: str,
             valuation_missing: dict[str, list[str]]) -> EvidenceCoverage:
    """Per family: rules, evaluable, fired, present, and the facts it lacked; what better ratings need.

    `valuation_missing`: method id -> the facts it lacked (methods that could not be computed)."""
    policy = book.policy
    idx = index(book)
    present = present_families(policy, idx, facts, fired)
    stats: dict[str, dict[str, Any]] = {}
    for rid, family, paths in idx.rules:
        st = stats.setdefault(family, {"rules": 0, "evaluable": 0, "fired": 0, "missing": {}})
        st["rules"] += 1
        lacking = [p for p in paths if p not in facts and p not in COMPUTED]
        if rid in fired or all(p in facts for p in paths):
            st["evaluable"] += 1
        else:
            st["missing"].update(dict.fromkeys(lacking))
        if rid in fired:
            st["fired"] += 1
    has_target = upside_of(facts) is not None
    for mid, family in idx.valuations:
        st = stats.setdefault(family, {"rules": 0, "evaluable": 0, "fired": 0, "missing": {}})
        if not has_target:
            st["missing"].update(dict.fromkeys(valuation_missing.get(mid, [])))
    order = list(policy.evidence) + sorted(f for f in stats if f not in policy.evidence)
    families = []
    for f in order:
        if f not in stats:
            continue
        st, spec = stats[f], policy.evidence.get(f)
        families.append(FamilyCoverage(family=f, label=spec.label if spec else f, scope=spec.scope if spec else "",
                                       rules=st["rules"], evaluable=st["evaluable"], fired=st["fired"],
                                       present=f in present, missing=list(st["missing"])))
    total = sum(fc.rules for fc in families)
    evaluable = sum(fc.evaluable for fc in families)
    needs = []
    names = policy.scale.names()
    for b in policy.scale.ratings[:names.index(rating)]:
        lacking = [f for f in b.requires if f not in present]
        if not lacking:
            continue
        what = []
        for f in lacking:
            spec = policy.evidence.get(f)
            methods = [(mid, valuation_missing.get(mid, [])) for mid, fam in idx.valuations if fam == f]
            if spec is not None and spec.needs_target:
                if methods:
                    ways = "; or ".join(f"{mid} needs {', '.join(gaps) or 'usable inputs'}" for mid, gaps in methods)
                    what.append(f"{_label(policy, [f])}: a target from a valuation method ({ways})")
                else:
                    what.append(f"{_label(policy, [f])}: a target, but no pack has a valuation method of this family")
                continue
            fc = next((x for x in families if x.family == f), None)
            gaps = ", ".join(fc.missing[:6]) + (" ..." if len(fc.missing) > 6 else "") if fc and fc.missing \
                else "no rule of this family"
            what.append(f"{_label(policy, [f])}: an evaluable rule (missing {gaps})")
        needs.append(f"{b.name} needs " + "; ".join(what))
    return EvidenceCoverage(percent=round(100.0 * evaluable / total, 1) if total else 100.0, families=families,
                            missing=[fc.family for fc in families if not fc.evaluable and not fc.present],
                            needs=needs)
