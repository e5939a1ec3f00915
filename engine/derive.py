"""Stage 2, derive: the facts one symbol is evaluated on, one value per path, with provenance.

Where several sources state the same fact, the policy picks one (by source rank or recency) and
the disagreement becomes a warning that names every source: analysts must see conflicts, not have
them hidden. Pure functions of the loaded files; no engine, no clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import did_you_mean
from .expr import Interval
from .formulas import DERIVED_SOURCE, Deriver, PriceProvenance
from .limits import number_problem
from .load import FactBase, StockFacts
from .model import Catalog, ConflictPolicy, FactCheck, FactValue, Policy, Provenance, Source

IDENTITY_FACTS = ("symbol", "name", "exchange", "board")
FILE_SOURCE = "fact file"


class Chosen(NamedTuple):
    """The value used for one fact path, and the ones it was chosen over (a tuple: a screen makes
    ~35 per symbol)."""

    path: str
    value: FactValue
    alternatives: tuple[FactValue, ...] = ()
    conflict: bool = False
    derived: str = ""
    # a derived fact's formula, parameters, inputs and last bar (formulas.provenance_of builds it when shown)
    provenance: Provenance | PriceProvenance | None = None


@dataclass
class Conflict:
    path: str
    chosen: FactValue
    others: list[FactValue]
    message: str


@dataclass
class Note:
    """A warning about the facts themselves (stale, short history, a stated fact the prices
    contradict), not from a rule. `path`: the fact it is about, if one (an override clears it)."""

    rule: str
    severity: str
    message: str
    path: str = ""


@dataclass
class SymbolFacts:
    stock: StockFacts
    chosen: dict[str, Chosen]
    conflicts: list[Conflict] = field(default_factory=list)
    date: dt.date | None = None  # the evaluation date: nothing dated later was used
    notes: list[Note] = field(default_factory=list)
    checks: list[FactCheck] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # derived fact -> why it has no value
    deriver: Deriver | None = field(default=None, repr=False)
    # the facts before formulas over facts were applied: overrides re-apply them (what-if, rule tests)
    before_formulas: tuple[dict[str, Chosen], list[FactCheck], list[Conflict]] | None = field(default=None, repr=False)

    def values(self) -> dict[str, FactValue]:
        return {p: c.value for p, c in self.chosen.items()}

    @property
    def as_of(self) -> dt.date | None:
        if self.date is not None:
            return self.date
        dates = [c.value.as_of for c in self.chosen.values() if c.path.startswith("stock.")]
        return max(dates) if dates else None

    def digest(self, sources: dict[str, Source]) -> str:
        """Hash of exactly the facts (and their sources) this evaluation could read: SHA-256 of

            json.dumps({"symbol": header, "facts": {path: {"chosen": fact, "alternatives": [fact, ...]}},
                        "sources": {id: source}}, sort_keys=True, ensure_ascii=False)

        with each fact as `FactValue.model_dump(mode="json")`. Every recorded run computes it, so the facts
        part is written by `fact_text`, not built as dicts and encoded (tests/test_render_trace.py checks
        the text is the one above, byte for byte)."""
        chosen = sorted(self.chosen.items())
        facts = "{" + ", ".join(
            f'{_string(p)}: {{"alternatives": [{", ".join(fact_text(a) for a in c.alternatives)}], '
            f'"chosen": {fact_text(c.value)}}}' for p, c in chosen) + "}"
        used = sorted({c.value.source for _, c in chosen} | {a.source for _, c in chosen for a in c.alternatives})
        # a stock without daily tables hashes as before they existed (recorded runs replay identical)
        header = self.stock.file.model_dump(mode="json", exclude={"facts"} | (
            set() if self.stock.file.indicators else {"indicators"}))
        cited = {s: sources[s].model_dump(mode="json") for s in used if s in sources}
        text = (f'{{"facts": {facts}, "sources": {json.dumps(cited, sort_keys=True, ensure_ascii=False)}, '
                f'"symbol": {json.dumps(header, sort_keys=True, ensure_ascii=False)}}}')
        return hashlib.sha256(text.encode()).hexdigest()


def fact_json(fv: FactValue) -> dict[str, Any]:
    """`fv.model_dump(mode="json")`, at a fraction of its cost and with its keys in sorted order
    (tests/test_render_trace.py checks that the two agree field for field)."""
    v, known = fv.value, fv.known_at
    return {"as_of": fv.as_of.isoformat(), "basis": fv.basis, "gt": fv.gt, "gte": fv.gte,
            "known_at": None if known is None else known.isoformat(), "lt": fv.lt, "lte": fv.lte, "note": fv.note,
            "source": fv.source, "unit": fv.unit, "value": v.isoformat() if isinstance(v, dt.date) else v}


_string = json.encoder.encode_basestring  # a str as JSON text, non-ASCII kept (json.dumps' ensure_ascii=False)


def _scalar(v: Any) -> str:
    """A fact's value or bound as json.dumps writes it (it writes floats by float.__repr__)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if type(v) is float and v - v == 0:  # finite
        return float.__repr__(v)
    if type(v) is int:
        return int.__repr__(v)
    if type(v) is str:
        return _string(v)
    if isinstance(v, dt.date):
        return f'"{v.isoformat()}"'
    return json.dumps(v, ensure_ascii=False)


def fact_text(fv: FactValue) -> str:
    """`json.dumps(fv.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)`, written directly: a
    symbol's facts hash writes every fact it can read (tests/test_render_trace.py: equal on every
    bundled fact and on generated ones)."""
    known = fv.known_at
    return (f'{{"as_of": "{fv.as_of.isoformat()}", "basis": {_string(fv.basis)}, "gt": {_scalar(fv.gt)}, '
            f'"gte": {_scalar(fv.gte)}, "known_at": {"null" if known is None else _scalar(known)}, '
            f'"lt": {_scalar(fv.lt)}, "lte": {_scalar(fv.lte)}, "note": {_string(fv.note)}, '
            f'"source": {_string(fv.source)}, "unit": {_string(fv.unit)}, "value": {_scalar(fv.value)}}}')


def _span(fv: FactValue) -> Interval:
    if fv.is_point and isinstance(fv.value, (int, float)) and not isinstance(fv.value, bool):
        x = float(fv.value)
        return Interval(x, x)
    return Interval.of(fv)


def disagree(a: FactValue, b: FactValue, tolerance_pct: float) -> bool:
    """Two statements conflict when points differ beyond tolerance or a point lies outside a bound."""
    if a.is_point and b.is_point:
        va, vb = a.value, b.value
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool) \
                and not isinstance(vb, bool):
            scale = max(abs(float(va)), abs(float(vb)))
            return scale > 0 and abs(float(va) - float(vb)) / scale * 100 > tolerance_pct
        return va != vb
    x, y = _span(a), _span(b)
    if x.hi < y.lo or y.hi < x.lo:
        return True
    if x.hi == y.lo and (x.hi_open or y.lo_open):
        return True
    return y.hi == x.lo and (y.hi_open or x.lo_open)


def _rank_key(fv: FactValue, policy: ConflictPolicy, order: int) -> tuple[Any, ...]:
    rank = policy.source_rank.index(fv.source) if fv.source in policy.source_rank else len(policy.source_rank)
    if policy.prefer == "latest":
        return (-fv.as_of.toordinal(), rank, order)
    return (rank, -fv.as_of.toordinal(), order)


def _cite(fv: FactValue, sources: dict[str, Source]) -> str:
    src = sources.get(fv.source)
    name = f"{src.publisher} {src.ref}".strip() if src else fv.source
    return f"{fv.describe()} ({name}, as of {fv.as_of.isoformat()})"


def choose(path: str, values: list[FactValue], policy: ConflictPolicy, sources: dict[str, Source],
           label: str) -> tuple[Chosen, Conflict | None]:
    if len(values) == 1:  # the common case: one statement, nothing to rank or compare
        return Chosen(path, values[0], (), False), None
    ranked = sorted(enumerate(values), key=lambda iv: _rank_key(iv[1], policy, iv[0]))
    best = ranked[0][1]
    others = [v for _, v in ranked[1:]]
    clashing = [o for o in others if disagree(best, o, policy.tolerance_pct)]
    conflict = None
    if clashing:
        how = "source rank" if policy.prefer == "source_rank" else "most recent as-of date"
        message = (f"Sources disagree on {label} ({path}): using {_cite(best, sources)} over "
                   + "; ".join(_cite(o, sources) for o in clashing)
                   + f". Chosen by the policy's {how}; check which basis each source uses.")
        conflict = Conflict(path, best, clashing, message)
    return Chosen(path, best, tuple(others), bool(clashing)), conflict


def symbol_facts(base: FactBase, stock: StockFacts, policy: Policy | ConflictPolicy,
                 as_of: dt.date | None = None, deriver: Deriver | None = None, *,
                 paths: frozenset[str] | None = None) -> SymbolFacts:
    """Resolve every fact the symbol can see on the evaluation date to one value each.

    Only facts that describe no later day and were known by then (their source published), and only
    price bars up to it, are read (no look-ahead); derived facts are computed by their catalog formulas
    (engine/formulas.py: price-history ones from the series computed once, then those over facts, then
    cross-sections); stale facts are dropped or flagged by policy. `paths` resolves only those facts and
    what their formulas read (a backtest's ratings; a cross-section gathering every symbol's value of one
    fact, which never reads a cross-section itself).
    """
    from .formulas import default_deriver

    full = policy if isinstance(policy, Policy) else None
    conflict_policy: ConflictPolicy = policy.conflicts if isinstance(policy, Policy) else policy
    deriver = deriver or default_deriver(base, full)
    wanted = deriver.formulas.closure(paths) if paths is not None else None
    day = base.evaluation_date(as_of)
    raw: dict[str, list[FactValue]] = {}
    sector = base.sectors.get(stock.file.sector)
    for ns, facts, newest in (("commodity", base.commodities_of(stock.file.sector), None),
                              ("sector", sector.facts if sector else {}, sector.newest if sector else None),
                              ("stock", stock.facts, stock.newest)):
        if day is None or (newest is not None and newest <= day):
            raw.update((f"{ns}.{name}", vals) for name, vals in facts.items())
            continue
        for name, vals in facts.items():
            raw[f"{ns}.{name}"] = [v for v in vals if v.visible_on(day)]
    if stock.file.indicators:  # daily tables: each column's latest row on or before the day, known on its day
        for table in base.daily_series(stock):
            for name, fv in table.facts(day or dt.date.max).items():
                raw[f"stock.{name}"] = [*raw.get(f"stock.{name}", []), fv]
    if wanted is not None:
        raw = {p: vs for p, vs in raw.items() if p in wanted}
    notes: list[Note] = []
    how: dict[str, tuple[str, Provenance | PriceProvenance | None]] = {}
    # `paths`: a backtest's rating or a cross-section, which read the symbol on many dates
    derived, warns, unavailable = deriver.price_facts(stock, day, wanted, provenance=paths is None,
                                                      one_date=paths is None)
    notes += [Note("facts.history", "medium", w) for w in warns]
    for d in derived:
        raw[d.path] = [d.value, *raw.get(d.path, [])]
        how[d.path] = (d.how, d.provenance)
    if full is not None and day is not None and full.freshness.max_age_days:
        raw, stale = _freshness(raw, base, full, day)
        notes += stale
    raw = {p: vs for p, vs in raw.items() if vs}
    chosen: dict[str, Chosen] = {}
    conflicts: list[Conflict] = []
    for name in IDENTITY_FACTS:
        path = f"stock.{name}"
        if base.catalog.spec(path) is not None and name not in stock.facts and (wanted is None or path in wanted):
            dates = [v.as_of for vals in raw.values() for v in vals]
            header_date = day or (max(dates) if dates else dt.date(1970, 1, 1))
            fv = FactValue(value=getattr(stock.file, name), as_of=header_date, source=FILE_SOURCE)
            chosen[path] = Chosen(path, fv, derived=f"header of {stock.path}")
    checks: list[FactCheck] = []
    for path, vals in raw.items():
        if len(vals) == 1 and path not in how:  # one statement: nothing to rank, compare or check
            chosen[path] = Chosen(path, vals[0], (), False)
            continue
        spec = base.catalog.spec(path)
        c, conflict = choose(path, vals, conflict_policy, base.sources, spec.label if spec else path)
        if path in how and c.value is vals[0]:
            c = Chosen(c.path, c.value, c.alternatives, c.conflict, *how[path])
        chosen[path] = c
        if conflict:
            conflicts.append(conflict)
        if path in how and len(vals) > 1:
            derived_value, stated = vals[0], vals[1:]
            agree = not any(disagree(derived_value, s, conflict_policy.tolerance_pct) for s in stated)
            checks.append(FactCheck(path=path, derived=derived_value.value, how=how[path][0], agree=agree,
                                    stated=[{"value": s.value if s.is_point else s.describe(), "source": s.source,
                                             "as_of": s.as_of.isoformat()} for s in stated]))
    close, price = chosen.get("stock.close"), chosen.get("stock.price")
    if close is not None and price is not None and price.value.source != DERIVED_SOURCE and stock.series:
        # a stated price is checked against the close of the day it describes, which may be before the last bar
        bar = stock.series.bar_on(price.value.as_of)
        if bar is not None:
            tolerance = conflict_policy.tolerance_pct
            day_close = close.value.model_copy(update={"value": bar.close, "as_of": bar.date})
            agree = not disagree(day_close, price.value, tolerance)
            which = "last close" if bar.date == close.value.as_of else f"close of {bar.date}"
            checks.append(FactCheck(path="stock.price", derived=bar.close, agree=agree,
                                    how=f"{which} of the price history ({close.value.basis}) vs the stated price",
                                    stated=[{"value": price.value.value, "source": price.value.source,
                                             "as_of": price.value.as_of.isoformat()}]))
            if not agree:
                notes.append(Note("facts.check", "high", _price_disagreement(which, day_close, price.value, tolerance,
                                                                             base.sources), "stock.price"))
    sf = SymbolFacts(stock, chosen, conflicts, day, notes, checks, unavailable, deriver)
    _apply_formulas(sf, wanted)  # a cross-section's own gathering asks for no cross-sectional fact: no loop
    return sf


def _apply_formulas(sf: SymbolFacts, wanted: frozenset[str] | None = None, cross: bool = True,
                    skip: frozenset[str] = frozenset()) -> None:
    """Formulas over facts and cross-sections, on the chosen facts (kept first, for overrides)."""
    if sf.deriver is None or not sf.deriver.formulas.later():
        return
    sf.before_formulas = (dict(sf.chosen), list(sf.checks), list(sf.conflicts))
    sf.deriver.apply(sf, wanted, cross, skip)


def _price_disagreement(which: str, close: FactValue, price: FactValue, tolerance_pct: float,
                        sources: dict[str, Source]) -> str:
    """Why a stated price the history contradicts matters: targets read the stated price, entry ranges
    and technical levels read the history, so the two would be on different scales."""
    stated, derived = float(price.value), float(close.value)  # type: ignore[arg-type]
    gap = abs(stated - derived) / max(abs(stated), abs(derived)) * 100
    return (f"The stated price {_cite(price, sources)} disagrees with the {which} of the price history, "
            f"{close.describe()} ({close.basis}), by {gap:.1f}% (the policy's tolerance is {tolerance_pct:g}%). "
            "Targets and valuation rules read the stated price, entry ranges and technical levels read the "
            "history: they are not on one scale. Check the stated price, its date, and the history's adjustment.")


_CUTOFFS: dict[tuple[int, tuple[tuple[str, int], ...], dt.date], tuple[Catalog, dict[str, dt.date]]] = {}


def _cutoffs(catalog: Catalog, limits: tuple[tuple[str, int], ...], day: dt.date) -> dict[str, dt.date]:
    """The oldest as-of date still fresh on `day`, per fact path (the same for every symbol of a screen)."""
    key = (id(catalog), limits, day)
    hit = _CUTOFFS.get(key)
    if hit is None or hit[0] is not catalog:
        if len(_CUTOFFS) > 256:
            _CUTOFFS.clear()
        oldest = {family: day - dt.timedelta(days=limit) for family, limit in limits}
        hit = _CUTOFFS[key] = (catalog, {path: oldest[spec.family] for path in catalog.paths()
                                         if (spec := catalog.spec(path)) is not None and spec.family in oldest})
    return hit[1]


def _freshness(raw: dict[str, list[FactValue]], base: FactBase, policy: Policy, day: dt.date
               ) -> tuple[dict[str, list[FactValue]], list[Note]]:
    """Drop (or keep, by policy) values older than their family's limit; one note per family."""
    limits = policy.freshness.max_age_days
    cutoffs = _cutoffs(base.catalog, tuple(sorted(limits.items())), day)
    exclude = policy.freshness.stale == "exclude"
    keep: dict[str, list[FactValue]] = {}
    stale: dict[str, list[tuple[str, FactValue]]] = {}
    for path, vals in raw.items():
        cutoff = cutoffs.get(path)
        if cutoff is None or (len(vals) == 1 and vals[0].as_of >= cutoff):
            keep[path] = vals
            continue
        fresh = []
        spec = base.catalog.spec(path)
        for v in vals:
            if v.as_of < cutoff:
                stale.setdefault(spec.family if spec else "", []).append((path, v))
                if exclude:
                    continue
            fresh.append(v)
        keep[path] = fresh
    notes = []
    for family, items in sorted(stale.items()):
        paths = sorted({p for p, _ in items})
        newest = max(v.as_of for _, v in items)
        shown = ", ".join(paths[:8]) + (f" and {len(paths) - 8} more" if len(paths) > 8 else "")
        notes.append(Note("facts.stale", "medium",
                          f"{len(items)} {family} fact value(s) are older than the {limits[family]}-day limit on "
                          f"{day} (newest as of {newest}): {shown}; "
                          + ("they were not used, and rules that need them are not evaluable."
                             if exclude else "they were used anyway (policy: warn).")))
    return keep, notes


def given_value(value: Any, as_of: dt.date, source: str) -> FactValue:
    """A FactValue from a plain value or a bound mapping such as {gt: 80}, as tests and what-ifs give them."""
    if isinstance(value, dict):
        return FactValue.model_validate({**value, "as_of": as_of, "source": source})
    return FactValue(value=value, as_of=as_of, source=source)


def check_override(catalog: Catalog, path: str, fv: FactValue, ranges: bool = True) -> str:
    """'' when `fv` fits the catalog's declaration of `path`, else what is wrong (with a did-you-mean).
    `ranges`: also refuse numbers that are not finite or outside the catalog's min/max (for values a
    person gives; a sensitivity search may probe beyond them)."""
    spec = catalog.spec(path)
    if spec is None:
        hint = did_you_mean(path, catalog.paths())
        return f"unknown fact path '{path}'." + (f" {hint}" if hint else "")
    numbers = [b for b in (fv.gt, fv.gte, fv.lt, fv.lte) if b is not None]
    if fv.value is None:
        if not (spec.type == "number" and spec.bounds):
            return f"'{path}' cannot be given as a bound (the catalog does not declare bounds: true for it)."
    else:
        v = fv.value
        ok = {"number": isinstance(v, (int, float)) and not isinstance(v, bool), "bool": isinstance(v, bool),
              "text": isinstance(v, str), "date": isinstance(v, dt.date)}[spec.type]
        if not ok:
            return f"'{path}' must be {spec.type}, not {v!r}."
        if spec.type == "number":
            numbers.append(v)  # type: ignore[arg-type]
    for n in numbers if ranges else []:
        why = number_problem(float(n), spec.min, spec.max)
        if why:
            return f"'{path}': {why}."
    return ""


def with_overrides(sf: SymbolFacts, catalog: Catalog, overrides: dict[str, FactValue]) -> SymbolFacts:
    """A copy of `sf` in which each overridden path has exactly the given value, and the derived facts
    computed from other facts are computed again from them (unless overridden themselves)."""
    base_chosen, base_checks, base_conflicts = sf.before_formulas or (sf.chosen, sf.checks, sf.conflicts)
    chosen = dict(base_chosen)
    for path, fv in overrides.items():
        problem = check_override(catalog, path, fv, ranges=False)
        if problem:
            raise ValueError(problem)
        chosen[path] = Chosen(path, fv, derived="override")
    unavailable = {p: why for p, why in sf.unavailable.items() if p not in overrides}
    out = SymbolFacts(sf.stock, chosen, [c for c in base_conflicts if c.path not in overrides], sf.date,
                      [n for n in sf.notes if n.path not in overrides],
                      [c for c in base_checks if c.path not in overrides], unavailable, sf.deriver)
    if sf.before_formulas is not None:
        later = {f.path for f in out.deriver.formulas.later()} if out.deriver else set()
        out.unavailable = {p: why for p, why in unavailable.items() if p not in later}
        _apply_formulas(out, skip=frozenset(overrides))
    return out
