"""Fragility: would one signal, or a small move in a fact that decides it, change the rating?

The score part is arithmetic on the policy's band edges (what the rating would be a signal lower or
higher, through the same overrides and evidence checks). The fact part reuses the sensitivity
machinery: every comparison solved for each fact it reads (whatif.boundaries), the valuation's
inputs and the price solved for each upside edge, and each candidate within the policy's margin
confirmed by a re-evaluation where its comparisons change, nearest first (engine/rerating.py: by
durable_rules, unless no rule can fire differently there). A screen without traces checks the score
only (re-evaluations cost many times the screen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import expr
from .derive import given_value, with_overrides
from .evidence import index
from .model import FactValue, FragileFact, Fragility
from .rerating import Rerating
from .resolve import band, rate
from .valuation import COMPUTED, UPSIDE, Valued

if TYPE_CHECKING:
    from .pipeline import Run


def assess(run: Run, facts: bool = True) -> Fragility:
    ws, res = run.workspace, run.resolution
    policy = ws.book.policy
    fp = policy.fragility
    notes: list[str] = []
    edges: list[dict[str, Any]] = []
    idx = index(ws.book)
    names = policy.scale.names()
    score, rating = res.score, res.rating.name
    here, _ = band(policy, score)
    at = names.index(here)
    candidates = []
    low_edge = policy.scale.ratings[at].min_score
    if low_edge is not None and score - low_edge < fp.score_margin:
        candidates.append(("below", low_edge, low_edge - score - 1e-6))
    if at > 0:
        up_edge = policy.scale.ratings[at - 1].min_score
        if up_edge is not None and up_edge - score <= fp.score_margin:
            candidates.append(("above", up_edge, up_edge - score))
    for side, edge, shift in candidates:
        other = rate(run.firings, ws.rules, policy, run.facts.chosen, idx, shift).name
        distance = round(abs(score - edge), 6)
        edges.append({"edge": edge, "side": side, "distance": distance, "rating": other})
        if other != rating:
            gap = expr.fmt_num(distance)
            if side == "below":
                notes.append(f"score {expr.fmt_num(score)} is {gap} above the band edge {expr.fmt_num(edge)}: "
                             f"one signal less makes it {other}")
            else:
                notes.append(f"score {expr.fmt_num(score)} is {gap} below the band edge {expr.fmt_num(edge)}: "
                             f"one signal more makes it {other}")
    found: list[FragileFact] = []
    if facts:
        found = _facts(run, fp.fact_margin_pct)
        for f in found:
            notes.append(f"{f.path} {expr.fmt_num(round(f.value, 4))} -> {expr.fmt_num(round(f.threshold, 4))} "
                         f"({f.change_pct:+.1f}%) makes it {f.rating} ({f.rule})")
    fragile = any(e["rating"] != rating for e in edges) or bool(found)
    return Fragility(fragile=fragile, notes=notes, score_edges=edges, facts=found, facts_checked=facts)


def _facts(run: Run, margin_pct: float) -> list[FragileFact]:
    """Facts within `margin_pct` of a value at which the rating changes, confirmed by re-evaluation."""
    from .whatif import boundaries, changes_at_boundary, epsilon

    ws, sf = run.workspace, run.facts
    catalog = ws.facts.catalog
    rating = run.resolution.rating.name
    cands: dict[str, list[tuple[float, str, str | None]]] = {}  # threshold, rule, `fact op threshold` (None: unknown)
    env = expr.EvalEnv(sf.values(), {})
    for path, items in boundaries(ws, env).items():
        if path in COMPUTED:
            continue
        cands.setdefault(path, []).extend(items)
    for path, solved in _valuation_boundaries(run).items():
        cands.setdefault(path, []).extend((t, rule, None) for t, rule in solved)
    out: list[FragileFact] = []
    rerating = Rerating(run)
    for path in sorted(cands):
        c = sf.chosen.get(path)
        if c is None or not c.value.is_point or isinstance(c.value.value, bool) \
                or not isinstance(c.value.value, (int, float)):
            continue
        value = float(c.value.value)
        if not value:
            continue
        # one threshold may be several rules' (uptrend above a line, downtrend below it; the policy's upside
        # edge and the rules that read the same upside): name them all, at the threshold nearest the value
        rules_at: dict[float, tuple[float, set[str], set[str | None]]] = {}
        for t, r, op in sorted(cands[path], key=lambda tro: abs(tro[0] - value)):
            if t != value and abs(t - value) / abs(value) * 100 <= margin_pct:
                at = rules_at.setdefault(round(t, 9), (t, set(), set()))
                at[1].add(r)
                at[2].add(op)
        near = sorted(((t, " / ".join(sorted(rs)), ops) for t, rs, ops in rules_at.values()),
                      key=lambda tro: abs(tro[0] - value))
        done: set[int] = set()
        for t, rule, ops in near:
            sign = 1 if t > value else -1
            if sign in done:
                continue
            # re-evaluate where the comparisons at t change (at t, or just beyond it), at both points only
            # when they differ or one is not known
            at_t = {True, False} if None in ops else {changes_at_boundary(op, sign > 0) for op in ops if op}
            for x in [t] * (True in at_t) + [t + sign * epsilon(t)] * (False in at_t):
                other = rerating.rating(_moved(run, path, x, c.value), rule.split(" / "))
                if other != rating:
                    spec = catalog.spec(path)
                    out.append(FragileFact(path=path, label=spec.label if spec else path, value=value, threshold=t,
                                           change_pct=round((t - value) / abs(value) * 100, 2), rating=other,
                                           rule=rule))
                    done.add(sign)
                    break
    return sorted(out, key=lambda f: (abs(f.change_pct), f.path))


def _moved(run: Run, path: str, x: float, fv: FactValue) -> Any:
    """The run's facts with `path` at `x`; moving the valuation's price moves every fact linked to it."""
    sf, catalog = run.facts, run.workspace.facts.catalog
    over = {path: given_value(x, fv.as_of, "fragility")}
    v = fv.value
    spec = catalog.spec(path)
    if spec is not None and spec.price_link == "proportional" and path in _price_facts(run) \
            and isinstance(v, (int, float)) and v:
        ratio = x / float(v)
        for other in _price_facts(run):
            c = sf.chosen.get(other)
            if other != path and c is not None and c.value.is_point and isinstance(c.value.value, (int, float)):
                over[other] = given_value(float(c.value.value) * ratio, c.value.as_of, "fragility")
    return with_overrides(sf, catalog, over)


def _price_facts(run: Run) -> list[str]:
    return list(dict.fromkeys(p for v in run.workspace.book.valuations for p in v.spec.price))


def _valuation_boundaries(run: Run) -> dict[str, list[tuple[float, str]]]:
    """For the target's method: the price, and each input, at which the upside crosses an edge that a
    rating or a rule tests (policy upside bands, rules reading stock.upside_pct)."""
    best = next((v for v in run.resolution.valuations if isinstance(v, Valued)), None)
    if best is None:
        return {}
    policy = run.workspace.book.policy
    bench = policy.scale.expected_benchmark_return_pct
    edges: list[tuple[float, str]] = []
    for b in policy.scale.ratings:
        for key, e in (("min", b.min_upside_pct), ("max", b.max_upside_pct)):
            if e is not None:
                edges.append((e + bench, f"policy: {b.name} {key} upside {expr.fmt_num(e)}%"))
    from .whatif import boundaries

    env = expr.EvalEnv(run.facts.values(), {})
    edges += [(t, rule) for t, rule, _ in boundaries(run.workspace, env).get(UPSIDE, [])]
    out: dict[str, list[tuple[float, str]]] = {}
    m = best.method.spec
    for e, why in edges:
        point = best.price * (1 + e / 100)  # the target value at which the upside is exactly e
        if point > 0:
            out.setdefault(best.price_fact, []).append((best.value / (1 + e / 100), why))
        if m.method == "scenarios":
            for s in m.scenarios:
                w = best.inputs.get(s.weight) if isinstance(s.weight, str) else s.weight
                v = best.inputs.get(s.value)
                if w and v is not None:
                    out.setdefault(s.value, []).append((v + (point - best.value) / float(w), why))
        else:
            eps = best.inputs.get(m.eps or "")
            if eps:
                out.setdefault(m.eps or "", []).append((eps * point / best.value, why))
    return out
