"""Stage 2b, value: each pack's valuation method -> a target range and the upside it implies, as facts.

Runs on a symbol's resolved facts before the rules, so rules read `stock.upside_pct` like any fact.
The target comes only from the method's inputs (scenario values with weights, or earnings per share
times a PE range), never from the current price: the price moves the upside, not the target. Pure:
no engine, no clock; a what-if that changes an input gets a recomputed target.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .derive import Chosen, SymbolFacts
from .load import LoadedValuation, RuleBook
from .model import FactValue, Source, ValuationMethod, ValuationOut

VALUATION_SOURCE = "valuation"
SOURCE = Source(title="Computed by verdict from a pack's valuation method and the facts it names",
                publisher="verdict (valuation method)")
TARGET_VALUE, TARGET_LOW, TARGET_HIGH = "stock.target_value", "stock.target_low", "stock.target_high"
UPSIDE, BEAR_CASE = "stock.upside_pct", "stock.bear_case_pct"
COMPUTED = (TARGET_VALUE, TARGET_LOW, TARGET_HIGH, UPSIDE, BEAR_CASE)
HOW = {TARGET_VALUE: "the method's point value", TARGET_LOW: "the low end of its range",
       TARGET_HIGH: "the high end of its range", UPSIDE: "(target value / price - 1) x 100",
       BEAR_CASE: "(lowest scenario value / price - 1) x 100"}


@dataclass(frozen=True)
class Valued:
    """A valuation method applied to one symbol's facts."""

    method: LoadedValuation
    value: float
    low: float
    high: float
    price: float
    price_fact: str
    upside_pct: float
    how: str
    inputs: dict[str, float] = field(default_factory=dict)
    bear_case_pct: float | None = None
    reference: dict[str, Any] | None = None

    def out(self, used: bool) -> ValuationOut:
        m = self.method
        return ValuationOut(method=m.id, title=m.spec.title, kind=m.spec.method, file=m.file, line=m.line,
                            value=self.value, low=self.low, high=self.high, price=self.price,
                            price_fact=self.price_fact, upside_pct=self.upside_pct, how=self.how,
                            inputs=self.inputs, reference=self.reference, used=used)


@dataclass(frozen=True)
class NotValued:
    """Why a method could not be computed: the facts it lacks, or an input it cannot use."""

    method: LoadedValuation
    missing: list[str]
    reason: str


def _num(chosen: dict[str, Chosen], path: str) -> float | None:
    c = chosen.get(path)
    if c is None or not c.value.is_point:
        return None
    v = c.value.value
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _price(m: ValuationMethod, chosen: dict[str, Chosen]) -> tuple[str, float, dt.date] | None:
    """The most recent of the method's price facts (the first listed on a tie)."""
    best: tuple[str, float, dt.date] | None = None
    for path in m.price:
        v = _num(chosen, path)
        if v is None:
            continue
        day = chosen[path].value.as_of
        if best is None or day > best[2]:
            best = (path, v, day)
    return best


def _money(v: float) -> str:
    return f"{round2(v):,.2f}"


def round2(v: float) -> float:
    """Half-up to the fen, as prices are quoted (68.205 -> 68.21; round() would give 68.2 on its binary value)."""
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(v)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def compute(lv: LoadedValuation, chosen: dict[str, Chosen]) -> Valued | NotValued:
    m = lv.spec
    missing = [p for p in lv.paths if p not in m.price and (p not in chosen or _num(chosen, p) is None)
               and not (m.reference and p in (m.reference.low, m.reference.high))]
    price = _price(m, chosen)
    if price is None:
        missing.append(" or ".join(m.price))
    if missing:
        return NotValued(lv, missing, "missing " + ", ".join(missing))
    assert price is not None
    price_fact, p, _ = price
    if p <= 0:
        return NotValued(lv, [], f"{price_fact} is {p:g}: no upside can be measured")
    inputs: dict[str, float] = {price_fact: p}
    bear = None
    if m.method == "scenarios":
        values, weights = [], []
        for s in m.scenarios:
            v = _num(chosen, s.value)
            w = s.weight if not isinstance(s.weight, str) else _num(chosen, s.weight)
            assert v is not None and w is not None
            inputs[s.value] = v
            if isinstance(s.weight, str):
                inputs[s.weight] = w
            values.append(v)
            weights.append(float(w))
        if abs(sum(weights) - 1) > 1e-6:
            return NotValued(lv, [], f"the scenario weights add up to {sum(weights):g}, not 1")
        if any(w < 0 for w in weights):
            return NotValued(lv, [], "a scenario weight is negative")
        point = sum(w * v for w, v in zip(weights, values, strict=True))
        lo_i, hi_i = values.index(min(values)), values.index(max(values))
        spread = values[hi_i] - values[lo_i]
        shift = m.weight_uncertainty_pp / 100
        low = point - min(shift, weights[hi_i]) * spread
        high = point + min(shift, weights[lo_i]) * spread
        terms = " + ".join(f"{w:g} x {_money(v)} ({s.name})" for s, w, v in zip(m.scenarios, weights, values,
                                                                               strict=True))
        how = f"{terms} = {_money(point)}"
        if shift and spread:
            how += (f"; range: {m.weight_uncertainty_pp:g} points of weight moved between the {m.scenarios[lo_i].name} "
                    f"and {m.scenarios[hi_i].name} cases, {_money(low)} - {_money(high)}")
        bear = round((min(values) / p - 1) * 100, 6)
    else:
        eps = _num(chosen, m.eps or "")
        los = m.pe_low if not isinstance(m.pe_low, str) else _num(chosen, m.pe_low)
        his = m.pe_high if not isinstance(m.pe_high, str) else _num(chosen, m.pe_high)
        assert eps is not None and los is not None and his is not None
        inputs[m.eps or ""] = eps
        for key, v in ((m.pe_low, los), (m.pe_high, his)):
            if isinstance(key, str):
                inputs[key] = float(v)
        if eps <= 0:
            return NotValued(lv, [], f"{m.eps} is {eps:g}: a PE range does not value a loss")
        pe_lo, pe_hi = sorted((float(los), float(his)))
        if pe_lo <= 0:
            return NotValued(lv, [], f"the PE range {pe_lo:g} - {pe_hi:g} is not positive")
        low, high = eps * pe_lo, eps * pe_hi
        point = (low + high) / 2
        how = (f"EPS {eps:,.4g} x PE {pe_lo:g} - {pe_hi:g} = {_money(low)} - {_money(high)}, "
               f"middle {_money(point)}")
    value, low, high = round2(point), round2(low), round2(high)
    # the upside is kept to 1e-6 (as derived facts are): a threshold search moves the price by a millionth
    upside = round((value / p - 1) * 100, 6)
    how += f"; upside {upside:+.2f}% against {price_fact} {p:,.2f}"
    reference = None
    if m.reference:
        rl, rh = _num(chosen, m.reference.low), _num(chosen, m.reference.high)
        if rl is not None and rh is not None:
            reference = {"label": m.reference.label, "low": rl, "high": rh}
            how += f" ({m.reference.label}: {_money(rl)} - {_money(rh)})"
    return Valued(lv, value, low, high, p, price_fact, upside, how, inputs, bear, reference)


def valuations(book: RuleBook, sf: SymbolFacts) -> list[Valued | NotValued]:
    """Every method of the book on these facts, in precedence order (the first Valued sets the target)."""
    return [compute(lv, sf.chosen) for lv in book.valuations]


def primary(results: list[Valued | NotValued]) -> Valued | None:
    return next((r for r in results if isinstance(r, Valued)), None)


def apply(book: RuleBook, sf: SymbolFacts) -> SymbolFacts:
    """`sf` with the target and upside of the first computable method as facts (an override wins)."""
    if not book.valuations:
        return sf
    chosen = {p: c for p, c in sf.chosen.items()
              if not (p in COMPUTED and c.value.source == VALUATION_SOURCE)}
    best = primary(valuations(book, dataclasses.replace(sf, chosen=chosen)))
    if best is not None:
        day = sf.as_of or dt.date(1970, 1, 1)
        mid = best.method.id
        for path, value, unit in ((TARGET_VALUE, best.value, "RMB"), (TARGET_LOW, best.low, "RMB"),
                                  (TARGET_HIGH, best.high, "RMB"), (UPSIDE, best.upside_pct, "%"),
                                  (BEAR_CASE, best.bear_case_pct, "%")):
            if value is None or (path in chosen and chosen[path].derived == "override"):
                continue
            fv = FactValue(value=value, as_of=day, source=VALUATION_SOURCE, unit=unit, basis=mid, note=best.how)
            chosen[path] = Chosen(path, fv, derived=f"{mid}: {HOW[path]} (see the target)")
    return dataclasses.replace(sf, chosen=chosen)
