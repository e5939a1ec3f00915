"""What would change the rating: what-if overrides, and the threshold of every numeric fact.

`what_if` re-evaluates a symbol with some facts replaced and lists what changed. `sensitivity` finds,
for each numeric fact a rule's condition reads, the nearest value below and above the current one at
which the rating changes. Candidates come straight from the compiled conditions: every comparison
is linear in the fact (compile.py isolates it), so solving `fact op rhs` on the current facts gives
the exact boundary; each candidate is then confirmed by a real re-evaluation, because a boundary
only matters if the rules downstream of it move the score across a band edge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import expr
from .compile import contains, isolate
from .derive import SymbolFacts, check_override, given_value, with_overrides
from .errors import Location, LookupFailure, Problem
from .model import Evaluation
from .pipeline import Workspace

if TYPE_CHECKING:
    from .load import RuleBook


@dataclass
class WhatIf:
    baseline: Evaluation
    scenario: Evaluation
    overrides: dict[str, Any]
    changes: list[str]
    newly_fired: list[str]
    stopped_firing: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.baseline.symbol, "overrides": self.overrides, "changes": self.changes,
                "newly_fired": self.newly_fired, "stopped_firing": self.stopped_firing,
                "baseline": {"rating": self.baseline.rating, "score": self.baseline.score},
                "scenario": {"rating": self.scenario.rating, "score": self.scenario.score}}


def parse_assignment(text: str) -> tuple[str, Any]:
    """`stock.pe_ttm=40`, `stock.is_st=true`, `stock.board=main`, `stock.kdj_j=>80` (a bound)."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise LookupFailure([Problem(Location(), "bad-set", f"--set '{text}' is not PATH=VALUE.",
                                     "Example: --set stock.pe_ttm=40")])
    raw = raw.strip()
    for prefix, key in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt")):
        if raw.startswith(prefix):
            return path.strip(), {key: _number(raw[len(prefix):], text)}
    if raw.lower() in ("true", "false"):
        return path.strip(), raw.lower() == "true"
    try:
        return path.strip(), _number(raw, text)
    except LookupFailure:
        return path.strip(), raw


def parse_assignments(texts: list[str], option: str = "--set") -> dict[str, Any]:
    """Several PATH=VALUE; one path given twice is an error (the last one silently won before)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for text in texts:
        path, value = parse_assignment(text)
        if path in out:
            raise LookupFailure([Problem(Location(), "repeated-set", f"{option} {path} is given twice ('{given[path]}' "
                                         f"and '{text}'); which one is meant?",
                                         "Give each fact path once; to compare values, use one --set per run, "
                                         "--scenarios FILE or --grid.")])
        out[path], given[path] = value, text
    return out


def _number(raw: str, text: str) -> float | int:
    try:
        v = float(raw)
    except ValueError:
        raise LookupFailure([Problem(Location(), "bad-set", f"--set '{text}': '{raw}' is not a number.",
                                     "Bounds are written like --set stock.kdj_j=>80.")]) from None
    return int(v) if v.is_integer() and "." not in raw else v


def overrides_for(ws: Workspace, sf: SymbolFacts, values: dict[str, Any]) -> dict[str, Any]:
    as_of = sf.as_of or dt.date(2000, 1, 1)
    out = {}
    for path, value in values.items():
        fv = given_value(value, as_of, "override")
        problem = check_override(ws.facts.catalog, path, fv)
        if problem:
            raise LookupFailure([Problem(Location(), "bad-set", f"--set {path}: {problem}",
                                         "Fact paths are listed in facts/catalog.yaml.")])
        out[path] = fv
    return out


def what_if(ws: Workspace, query: str, values: dict[str, Any], as_of: dt.date | None = None) -> WhatIf:
    """One scenario against the baseline (see scenarios.compare_scenarios for several)."""
    from .scenarios import Scenario, compare_scenarios

    c = compare_scenarios(ws, query, [Scenario("what-if", dict(values))], None, as_of)
    r = c.results[0]
    return WhatIf(c.baseline, r.evaluation, values, r.changes, r.newly_fired, r.stopped_firing)


# ------------------------------------------------------------------------------ sensitivity


@dataclass
class Flip:
    """The nearest value in one direction at which the rating changes."""

    direction: str  # "up" | "down"
    boundary: float
    inclusive: bool  # the boundary value itself already changes the rating
    rating: str
    change_pct: float | None
    rule: str  # the rule whose comparison gives the boundary

    @property
    def flip_value(self) -> float:
        if self.inclusive:
            return self.boundary
        return self.boundary + (epsilon(self.boundary) if self.direction == "up" else -epsilon(self.boundary))


@dataclass
class FactSensitivity:
    path: str
    label: str
    value: float
    up: Flip | None = None
    down: Flip | None = None
    candidates: int = 0

    def nearest_pct(self) -> float:
        pcts = [abs(f.change_pct) for f in (self.up, self.down) if f and f.change_pct is not None]
        return min(pcts) if pcts else float("inf")


@dataclass
class Sensitivity:
    symbol: str
    name: str
    rating: str
    score: float
    facts: list[FactSensitivity] = field(default_factory=list)
    evaluations: int = 0

    def as_dict(self) -> dict[str, Any]:
        def flip(f: Flip | None) -> dict[str, Any] | None:
            if f is None:
                return None
            return {"boundary": f.boundary, "inclusive": f.inclusive, "flip_value": f.flip_value,
                    "rating": f.rating, "change_pct": f.change_pct, "rule": f.rule}

        return {"symbol": self.symbol, "name": self.name, "rating": self.rating, "score": self.score,
                "evaluations": self.evaluations,
                "facts": [{"path": s.path, "label": s.label, "value": s.value, "up": flip(s.up),
                           "down": flip(s.down), "candidates": s.candidates} for s in self.facts]}


def epsilon(x: float) -> float:
    return max(abs(x), 1.0) * 1e-6


def changes_at_boundary(op: str, up: bool) -> bool:
    """Whether `fact op boundary` changes truth at the boundary itself when the fact moves up to it (or
    down, `up=False`): >= and < moving up, > and <= moving down; the others change just beyond it."""
    return op in ((">=", "<") if up else (">", "<="))


def solved_comparisons(book: RuleBook) -> list[tuple[str, str, str, expr.Node]]:
    """Every comparison of a `when` (but == and !=) solved for each fact it reads: (fact path, rule id,
    op, other side), meaning `fact op other side`. It depends on the rules alone, so it is worked out
    once per rule book (fragility asks for every symbol of a screen, twice)."""
    solved: list[tuple[str, str, str, expr.Node]] | None = book.__dict__.get("_solved_comparisons")
    if solved is not None:
        return solved
    solved = []
    for rule in book.rules:
        try:
            dnf = expr.to_dnf(rule.cond)
        except expr.ExprError:
            continue
        for conj in dnf:
            for lit in conj:
                node = lit.node
                if not isinstance(node, expr.Cmp) or node.op in ("==", "!="):
                    continue
                for ref in {n for n in expr.walk(node) if isinstance(n, expr.FactRef)}:
                    left, op, right = node.left, node.op, node.right
                    if not contains(left, ref):
                        left, op, right = right, expr.FLIP[op], left
                    try:
                        op, rhs = isolate(left, op, right, ref)
                    except expr.ExprError:
                        continue
                    if not contains(rhs, ref):
                        solved.append((ref.path, rule.id, op, rhs))
    book.__dict__["_solved_comparisons"] = solved
    return solved


def boundaries(ws: Workspace, env: expr.EvalEnv) -> dict[str, list[tuple[float, str, str]]]:
    """fact path -> (boundary, rule, op) for every comparison of a `when` that reads the fact,
    rewritten as `fact op boundary` on the current facts."""
    out: dict[str, list[tuple[float, str, str]]] = {}
    for path, rule_id, op, rhs in solved_comparisons(ws.book):
        v = expr.value_of(rhs, env)
        if isinstance(v, float) and not isinstance(v, bool):
            out.setdefault(path, []).append((v, rule_id, op))
    return out


def sensitivity(ws: Workspace, query: str, as_of: dt.date | None = None, paths: list[str] | None = None
                ) -> Sensitivity:
    sf = ws.symbol_facts(query, as_of)
    base = ws.evaluate_facts(sf, run_id="sensitivity")
    env = expr.EvalEnv(sf.values(), {})
    result = Sensitivity(base.symbol, base.name, base.rating, base.score)
    cands = boundaries(ws, env)
    if paths:
        unknown = [p for p in paths if ws.facts.catalog.spec(p) is None]
        if unknown:
            from .errors import did_you_mean

            raise LookupFailure([Problem(Location(), "unknown-fact", f"unknown fact path '{unknown[0]}'.",
                                         did_you_mean(unknown[0], ws.facts.catalog.paths()))])
    for path in sorted(cands):
        if paths and path not in paths:
            continue
        fv = sf.chosen.get(path)
        if fv is None or not fv.value.is_point or isinstance(fv.value.value, bool) \
                or not isinstance(fv.value.value, (int, float)):
            continue
        value = float(fv.value.value)
        spec = ws.facts.catalog.spec(path)
        entry = FactSensitivity(path, spec.label if spec else path, value, candidates=len(cands[path]))

        def rating_at(x: float, path: str = path, fv: Any = fv) -> str:
            result.evaluations += 1
            ov = {path: given_value(x, fv.value.as_of, "sensitivity")}
            return ws.rate(with_overrides(sf, ws.facts.catalog, ov))[0]

        for direction in ("up", "down"):
            sign = 1 if direction == "up" else -1
            options = sorted({(t, r, op) for t, r, op in cands[path] if sign * (t - value) >= 0},
                             key=lambda tro: (sign * (tro[0] - value), tro[1]))
            tried: set[float] = set()
            for t, rule_id, op in options:
                # `fact op t` changes truth at t or just beyond it: one re-evaluation per candidate
                inclusive = changes_at_boundary(op, direction == "up")
                x = t if inclusive else t + sign * epsilon(t)
                if (inclusive and t == value) or x in tried:
                    continue
                tried.add(x)
                r = rating_at(x)
                if r != base.rating:
                    setattr(entry, direction, Flip(direction, t, inclusive, r, _pct(t, value), rule_id))
                    break
        if entry.up or entry.down:
            result.facts.append(entry)
    result.facts.sort(key=lambda s: (s.nearest_pct(), s.path))
    return result


def _pct(t: float, value: float) -> float | None:
    return round((t - value) / abs(value) * 100, 2) if value else None


def tornado(result: Sensitivity, path: Any, top: int = 12) -> Any:
    from .charts import pyplot

    plt = pyplot()

    rows = [s for s in result.facts if s.nearest_pct() != float("inf")][:top][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(rows), 3) + 1.4), dpi=110)
    for i, s in enumerate(rows):
        for f, color in ((s.down, "#d73027"), (s.up, "#1a9850")):
            if f and f.change_pct is not None:
                ax.barh(i, f.change_pct, color=color, alpha=0.8)
                ax.text(f.change_pct, i, f" {f.rating} ", va="center", fontsize=8,
                        ha="left" if f.change_pct >= 0 else "right")
    ax.set_yticks(range(len(rows)), [f"{s.label} ({expr.fmt_num(round(s.value, 4))})" for s in rows], fontsize=8)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel("change of the fact (%) at which the rating changes")
    ax.set_title(f"{result.name} ({result.symbol}): {result.rating}, score {expr.fmt_num(result.score)}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------ share price


def _moved(link: str, v: float, ratio: float) -> float:
    """A price-linked fact's value when the share price is multiplied by `ratio`."""
    if link == "proportional":
        return v * ratio
    if link == "value_vs_price_pct":
        return ((1 + v / 100) / ratio - 1) * 100
    return ((1 + v / 100) * ratio - 1) * 100  # return_pct


def _price_for(link: str, v: float, t: float, p0: float) -> float | None:
    """The share price at which a price-linked fact now at `v` would reach `t`."""
    if link == "proportional":
        return p0 * t / v if v else None
    if link == "value_vs_price_pct":
        return (1 + v / 100) * p0 / (1 + t / 100) if t != -100 else None
    return p0 * (1 + t / 100) / (1 + v / 100) if v != -100 else None


def price_overrides(ws: Workspace, sf: SymbolFacts, price: float) -> dict[str, Any]:
    """stock.price set to `price`, and every fact linked to the price moved with it."""
    p0 = float(sf.chosen["stock.price"].value.value)  # type: ignore[arg-type]
    ratio = price / p0
    out = {"stock.price": given_value(price, sf.chosen["stock.price"].value.as_of, "price scenario")}
    from .valuation import VALUATION_SOURCE

    for path, c in sf.chosen.items():
        spec = ws.facts.catalog.spec(path)
        if spec is None or spec.price_link == "none" or path == "stock.price" or not c.value.is_point:
            continue
        if c.value.source == VALUATION_SOURCE:  # the upside is computed again, from the new price and inputs
            continue
        v = c.value.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[path] = given_value(_moved(spec.price_link, float(v), ratio), c.value.as_of, "price scenario")
    return out


def price_sensitivity(ws: Workspace, query: str, as_of: dt.date | None = None) -> Sensitivity:
    """At what share price does the rating change? Valuation facts move with the price."""
    sf = ws.symbol_facts(query, as_of)
    base = ws.evaluate_facts(sf, run_id="sensitivity")
    result = Sensitivity(base.symbol, base.name, base.rating, base.score)
    price = sf.chosen.get("stock.price")
    if price is None or not isinstance(price.value.value, (int, float)):
        raise LookupFailure([Problem(Location(), "no-price", f"{base.symbol} has no stated share price "
                                     "(stock.price) on this date.", "Add one to its facts, or pick --as-of.")])
    p0 = float(price.value.value)
    env = expr.EvalEnv(sf.values(), {})
    bounds = boundaries(ws, env)
    cands: list[tuple[float, str]] = [(t, r) for t, r, _ in bounds.get("stock.price", []) if t > 0]
    for path, items in bounds.items():
        spec = ws.facts.catalog.spec(path)
        c = sf.chosen.get(path)
        if spec is None or spec.price_link == "none" or c is None or not c.value.is_point:
            continue
        v = float(c.value.value)  # type: ignore[arg-type]
        for t, rule, _ in items:
            p = _price_for(spec.price_link, v, t, p0)
            if p is not None and p > 0:
                cands.append((p, rule))
    entry = FactSensitivity("stock.price", "Share price", p0, candidates=len(cands))

    def rating_at(x: float) -> str:
        result.evaluations += 1
        return ws.rate(with_overrides(sf, ws.facts.catalog, price_overrides(ws, sf, x)))[0]

    for direction in ("up", "down"):
        sign = 1 if direction == "up" else -1
        for t, rule_id in sorted({(round(t, 6), r) for t, r in cands if sign * (t - p0) > 0},
                                 key=lambda tr: (sign * (tr[0] - p0), tr[1])):  # ties: by rule id
            found = None
            r = rating_at(t)
            if r != base.rating:
                found = Flip(direction, t, True, r, _pct(t, p0), rule_id)
            else:
                r = rating_at(t + sign * epsilon(t))
                if r != base.rating:
                    found = Flip(direction, t, False, r, _pct(t, p0), rule_id)
            if found:
                setattr(entry, direction, found)
                break
    if entry.up or entry.down:
        result.facts.append(entry)
    return result
