"""Pydantic models of every file the user writes and every result the engine gives.

This is the one place types are declared. Input models forbid unknown keys, so a misspelt
`salence:` is an error with a did-you-mean rather than a silently ignored setting. The JSON
Schema of the files comes from these models too.

A result's life has one name per stage: what durable returned is a `rete.DurableResult` (the
firings, in order); what the rating resolved to is a `resolve.Resolution`; a `pipeline.Run` holds
both with the facts they came from, unrendered; what is rendered is an `Evaluation` (the JSON
contract). A screen keeps, per symbol, an `Outcome`: the evaluation's `Summary` (its conclusions
without the trace, what a screen's table and CSV show) and, when rendered, the evaluation itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

Number = int | float
Scalar = bool | int | float | str | dt.date


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------- facts


FactType = Literal["number", "bool", "text", "date"]
FACT_NAMESPACES = ("stock", "sector", "commodity")


class FactSpec(Strict):
    """A known fact path: its type, unit and family (the family sets its freshness limit)."""

    type: FactType
    label: str
    unit: str = ""
    family: Literal["prices", "technicals", "fundamentals", "sector", "commodity", "flows", "reference"]
    bounds: bool = Field(False, description="may be given only as a bound (gt/gte/lt/lte), as reports often do")
    price_link: Literal["none", "proportional", "value_vs_price_pct", "return_pct"] = Field(
        "none", description="how the fact moves when the share price moves (for price scenarios): proportional "
                            "(PE, close), value_vs_price_pct ((value / price - 1) x 100), return_pct (a return "
                            "ending at the price)")
    min: float | None = Field(None, description="lowest value a source may state (numbers; e.g. 0.001 for prices)")
    max: float | None = Field(None, description="highest value a source may state (numbers)")
    description: str = ""
    formula: str | None = Field(
        None, description="makes this a derived fact, computed rather than stated: an expression over other facts "
                          "(stock.pe_ttm / stock.earnings_growth_low_pct), price-history functions "
                          "(avg(volume, 20) / avg(volume, 60), macd_dif(12, 26, 9), highest(close, 20)) or a "
                          "cross-sectional rank (percentile(stock.pe_ttm, sector)); see README, 'Derived facts'")


class Catalog(Strict):
    """Every fact path rules may read, by namespace (stock, sector, commodity)."""

    catalog: str = "facts"
    namespaces: dict[Literal["stock", "sector", "commodity"], dict[str, FactSpec]]

    def spec(self, path: str) -> FactSpec | None:
        return self._specs.get(path)

    @cached_property
    def _specs(self) -> dict[str, FactSpec]:
        return {f"{ns}.{name}": spec for ns, fields in self.namespaces.items() for name, spec in fields.items()}

    def paths(self) -> list[str]:
        return [f"{ns}.{name}" for ns, fields in self.namespaces.items() for name in fields]


class Source(Strict):
    """A cited source: the fact files refer to it by id."""

    title: str
    publisher: str
    date: dt.date | None = Field(None, description="publication date: nothing it states is known before it")
    url: str | None = None
    ref: str = Field("", description="how the report cites it, e.g. [1]")
    note: str = ""


class SourceList(Strict):
    sources: dict[str, Source]


class FactValue(Strict):
    """One sourced statement of a fact: a value, or only a bound where that is all the source says."""

    value: Scalar | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    as_of: dt.date = Field(description="the day the value describes")
    known_at: dt.date | None = Field(
        None, description="the day it became known (a filing, a publication); default: the later of as_of and "
                          "the cited source's date. An evaluation as of D reads only what was known on D")
    source: str
    unit: str = ""
    note: str = ""
    basis: str = Field("", description="price basis or definition, e.g. raw close, qfq, TTM")

    @model_validator(mode="after")
    def _value_or_bounds(self) -> FactValue:
        bounds = [b for b in (self.gt, self.gte, self.lt, self.lte) if b is not None]
        if self.value is None and not bounds:
            raise ValueError("give either `value` or a bound (`gt`, `gte`, `lt`, `lte`)")
        if self.value is not None and bounds:
            raise ValueError("give either `value` or bounds, not both")
        if self.gt is not None and self.gte is not None:
            raise ValueError("give at most one lower bound (`gt` or `gte`)")
        if self.lt is not None and self.lte is not None:
            raise ValueError("give at most one upper bound (`lt` or `lte`)")
        return self

    @property
    def is_point(self) -> bool:
        return self.value is not None

    @property
    def known(self) -> dt.date:
        """The day it became known (loading fills `known_at` from the source's date where not given)."""
        return self.known_at or self.as_of

    def visible_on(self, day: dt.date) -> bool:
        """Whether an evaluation as of `day` may read it: it describes no later day and was known by then."""
        return self.as_of <= day and (self.known_at is None or self.known_at <= day)

    def describe(self) -> str:
        if self.value is not None:
            return _fmt(self.value)
        parts = []
        if self.gt is not None:
            parts.append(f"> {_fmt(self.gt)}")
        if self.gte is not None:
            parts.append(f">= {_fmt(self.gte)}")
        if self.lt is not None:
            parts.append(f"< {_fmt(self.lt)}")
        if self.lte is not None:
            parts.append(f"<= {_fmt(self.lte)}")
        return " and ".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


FactEntry = FactValue | list[FactValue]


class PriceSegment(Strict):
    file: str = Field(description="OHLCV CSV, relative to the facts directory")
    source: str
    anchor: dt.date | None = Field(None, description="date the adjusted prices were fetched (the qfq anchor)")


class PriceSeriesSpec(Strict):
    """Where a symbol's daily prices are and on what basis: segments are joined only on one basis."""

    adjust: Literal["qfq", "hfq", "raw"]
    volume_unit: Literal["lots", "shares"] = "lots"
    segments: list[PriceSegment] = Field(min_length=1)
    suspensions: list[tuple[dt.date, dt.date]] = Field([], description="[first, last] days with no trading")


class IndicatorTable(Strict):
    """A daily fact table (date, then one column per stock fact: pe_ttm, pb, total_mv ...), see dailyfacts.py."""

    file: str = Field(description="CSV, relative to the facts directory")
    source: str


class StockFile(Strict):
    symbol: str = Field(description="code with exchange suffix, e.g. 600111.SH")
    name: str
    aliases: list[str] = []
    sector: str
    exchange: Literal["SH", "SZ", "BJ"]
    board: Literal["main", "chinext", "star", "bse"] = "main"
    prices: PriceSeriesSpec | None = None
    indicators: list[IndicatorTable] = Field([], description="daily fact tables: each column's latest row on or "
                                                             "before the evaluation date is a fact")
    facts: dict[str, FactEntry] = {}

    @field_validator("symbol")
    @classmethod
    def _symbol_form(cls, v: str) -> str:
        code, _, suffix = v.partition(".")
        if not (code.isdigit() and len(code) == 6 and suffix in ("SH", "SZ", "BJ")):
            raise ValueError("symbol must be a 6-digit code with .SH, .SZ or .BJ, e.g. 600111.SH")
        return v

    @property
    def code(self) -> str:
        return self.symbol.partition(".")[0]


class SectorFile(Strict):
    sector: str
    name: str
    index: str = ""
    facts: dict[str, FactEntry] = {}


class FactBaseFile(Strict):
    """facts/base.yaml: the date evaluations are as of unless --as-of says otherwise."""

    as_of: dt.date | None = None
    description: str = ""


class CommodityFile(Strict):
    commodities: str = "commodities"
    sectors: list[str] | None = Field(
        None, description="the sectors (their `sector:` ids) whose stocks these commodity facts concern; "
                          "absent, every stock's (a miner's prices must not speak for a bank)")
    facts: dict[str, FactEntry] = {}


class BenchmarkColumns(Strict):
    date: str = "date"
    open: str | None = Field("open", description="none if the file has closes only")
    close: str = "close"


class BenchmarkFile(Strict):
    """facts/benchmarks/*.yaml: a benchmark index's daily history for backtests, and where it comes from."""

    name: str = Field(description="as the policy's scale names it, e.g. CSI 300")
    code: str = ""
    file: str = Field(description="CSV of daily levels, relative to this file")
    columns: BenchmarkColumns = BenchmarkColumns()
    source: dict[str, str] = Field(description="publisher, repository, commit, path, how it was copied and checked")


# ----------------------------------------------------------------------------------- rules


Severity = Literal["low", "medium", "high"]
Horizon = Literal["short", "medium", "long"]
HORIZONS: tuple[Horizon, ...] = get_args(Horizon)  # an entry's horizon, in this order wherever listed
Advice = Literal["wait", "accumulate", "buy", "hold", "reduce", "avoid"]
ValueExpr = Annotated[str | int | float, Field(description="a number or an expression over facts")]


class SignalEffect(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    score: float = Field(0, ge=-100, le=100)
    note: str = ""


class WarningEffect(Strict):
    severity: Severity = "medium"
    message: str


class EntryEffect(Strict):
    horizon: Horizon
    advice: Advice
    low: ValueExpr | None = None
    high: ValueExpr | None = None
    note: str = ""


class TargetEffect(Strict):
    low: ValueExpr
    high: ValueExpr
    currency: str = "RMB"
    note: str = ""


class RatingEffect(Strict):
    value: str
    mode: Literal["set", "cap", "floor"] = Field(
        "set", description="set: this rating; cap: at most this rating; floor: at least this rating")
    reason: str = ""


class Then(Strict):
    signal: SignalEffect | list[SignalEffect] | None = None
    warning: WarningEffect | list[WarningEffect] | None = None
    entry: EntryEffect | list[EntryEffect] | None = None
    target: TargetEffect | None = None
    rating: RatingEffect | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Then:
        if not any((self.signal, self.warning, self.entry, self.target, self.rating)):
            raise ValueError("`then` must emit at least one of signal, warning, entry, target, rating")
        return self

    def signals(self) -> list[SignalEffect]:
        return _as_list(self.signal)

    def warnings(self) -> list[WarningEffect]:
        return _as_list(self.warning)

    def entries(self) -> list[EntryEffect]:
        return _as_list(self.entry)


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return list(x) if isinstance(x, list) else [x]


Why = Annotated[dict[float, str], Field(
    description="the reason for each threshold or multiplier written in the rule (keyed by the number as "
                "written), with its source where it comes from a report or a convention")]
RULE_ID = r"^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$"


class Rule(Strict):
    id: str = Field(pattern=RULE_ID, description="pack-qualified id, e.g. valuation.pe-stretched")
    title: str = ""
    description: str = ""
    when: str
    salience: int = Field(0, ge=-10000, le=10000, description="higher fires first")
    evidence: str | None = Field(None, description="the family of evidence it is (policy `evidence:`); "
                                                   "default: the pack's")
    why: Why = {}
    then: Then


class Scenario(Strict):
    """One scenario of a valuation: its value per share and its weight (numbers, or fact paths)."""

    name: str
    value: str = Field(description="fact path of the scenario's value per share, e.g. stock.dcf_bear_value")
    weight: float | str = Field(description="its probability: a number in (0, 1], or a fact path")


class ReferenceTarget(Strict):
    """A target stated elsewhere (a report's), shown beside the method's own for comparison."""

    label: str
    low: str = Field(description="fact path")
    high: str = Field(description="fact path")


class ValuationMethod(Strict):
    """How a pack values a stock: the target range and the upside come from here, never from the price.

    `scenarios`: the probability-weighted value of scenario values (RMB per share); the range moves
    `weight_uncertainty_pp` points of weight between the lowest and the highest scenario.
    `pe_range`: earnings per share times a PE range (`pe_low`..`pe_high`); the point is the middle.
    The upside is target / price - 1, against the most recent of the `price` facts."""

    id: str = Field(pattern=RULE_ID, description="pack-qualified id, e.g. valuation.dcf-scenarios")
    title: str
    description: str = ""
    method: Literal["scenarios", "pe_range"]
    scenarios: list[Scenario] = []
    weight_uncertainty_pp: float = Field(0, ge=0, le=50)
    eps: str | None = Field(None, description="fact path of earnings per share (pe_range)")
    pe_low: float | str | None = Field(None, description="a number or a fact path (pe_range)")
    pe_high: float | str | None = Field(None, description="a number or a fact path (pe_range)")
    price: list[str] = Field(["stock.price", "stock.close"],
                             description="price facts; the most recent one (the first on a tie) is used")
    reference: ReferenceTarget | None = None
    salience: int = Field(0, ge=-10000, le=10000, description="the computable method of highest salience sets the "
                                                              "target; the others are shown as cross-checks")
    why: Why = {}

    @model_validator(mode="after")
    def _inputs(self) -> ValuationMethod:
        if self.method == "scenarios":
            if not self.scenarios:
                raise ValueError("a `scenarios` valuation needs `scenarios:` (name, value, weight)")
            fixed = [s.weight for s in self.scenarios if not isinstance(s.weight, str)]
            if len(fixed) == len(self.scenarios) and abs(sum(fixed) - 1) > 1e-6:
                raise ValueError(f"scenario weights must add up to 1, not {sum(fixed):g}")
        elif self.eps is None or self.pe_low is None or self.pe_high is None:
            raise ValueError("a `pe_range` valuation needs `eps`, `pe_low` and `pe_high`")
        return self


class Pack(Strict):
    pack: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    evidence: str | None = Field(None, description="the family of evidence its rules are (policy `evidence:`)")
    valuation: ValuationMethod | list[ValuationMethod] | None = None
    derived: dict[str, FactSpec] = Field(
        {}, description="derived facts the pack declares, by path (stock.peg: {type, label, family, formula}), "
                        "as the fact catalog does; every pack's rules may read them")
    rules: list[Rule]

    def valuations(self) -> list[ValuationMethod]:
        return _as_list(self.valuation)


class RatingBand(Strict):
    name: str
    min_score: float | None = Field(None, description="lowest score (inclusive) of this band; none for the last")
    meaning: str
    requires: list[str] = Field([], description="families of evidence (policy `evidence:`) this rating needs")
    otherwise: str | None = Field(None, description="the rating given instead when `requires` is not met")
    min_upside_pct: float | None = Field(
        None, description="with a target, the least upside (less the benchmark's expected return) this rating allows")
    max_upside_pct: float | None = Field(None, description="with a target, the most upside this rating allows")
    why: Why = {}


class Scale(Strict):
    name: str
    benchmark: str
    horizon: str
    source: str = ""
    expected_benchmark_return_pct: float = Field(
        0, description="the benchmark return the upside is measured against (the labels are relative to it)")
    ratings: list[RatingBand] = Field(description="best first")

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        mins = [b.min_score for b in self.ratings[:-1]]
        if any(m is None for m in mins):
            raise ValueError("every band but the last needs min_score")
        if mins != sorted(mins, reverse=True):  # type: ignore[type-var]
            raise ValueError("bands must be listed best first, with falling min_score")
        return self

    @cached_property
    def bands_out(self) -> tuple[BandOut, ...]:
        """The bands as output models, made once (every evaluation's rating carries them)."""
        return tuple(BandOut(name=b.name, min_score=b.min_score) for b in self.ratings)

    def names(self) -> list[str]:
        return [b.name for b in self.ratings]


class ConflictPolicy(Strict):
    prefer: Literal["source_rank", "latest"] = "source_rank"
    tolerance_pct: float = Field(2.0, ge=0)
    source_rank: list[str] = []


class TechnicalParams(Strict):
    """How much price history the EMA/SMA-seeded indicators need, and the parameters of the built-in
    technical facts for catalogs written before formulas: a built-in fact (macd_dif, kdj_j, ma_20, ...)
    that the catalog declares without a `formula:` is computed with these (engine/formulas.py,
    `builtin_formulas`). Where the catalog gives a formula, the formula's own parameters apply."""

    macd: tuple[int, int, int] = (12, 26, 9)
    kdj: tuple[int, int, int] = (9, 3, 3)
    rsi: list[int] = [6, 12, 24]
    ma: list[int] = [5, 10, 20, 60]
    boll_n: int = 20
    boll_k: float = 2.0
    boll_ddof: Literal[0, 1] = 1
    near_zero_axis_pct: float = Field(
        1.0, description="MACD is near the zero axis when |DIF| and |DEA| are below this % of the close")
    range_days: int = Field(10, description="the trading range spans the closes of this many bars")
    level_days: int = Field(20, description="resistance/support: highest/lowest close of this many bars")
    recent_days: int = Field(5, description="window of 'recent' extremes such as the highest J")
    min_bars: int = Field(120, description="warn below this much history (EMA and SMA seeds)")


class Freshness(Strict):
    """Maximum age in calendar days of a fact at the evaluation date, by family."""

    max_age_days: dict[str, int] = {"prices": 7, "technicals": 7, "fundamentals": 130, "flows": 14,
                                    "sector": 60, "commodity": 100, "reference": 3650}
    stale: Literal["exclude", "warn"] = Field(
        "exclude", description="exclude: a stale fact is dropped (rules needing it are not evaluable); warn: kept")


class EvidenceFamily(Strict):
    """A kind of evidence a rule can be (valuation, earnings, sector, ...), and whose it is."""

    scope: Literal["stock", "sector", "market"] = Field(
        description="stock: about this company; sector and market: shared by every stock of the sector or market")
    label: str
    description: str = ""
    needs_target: bool = Field(False, description="present only when a valuation method gave a target and upside")


class FragilityPolicy(Strict):
    """When an evaluation says its rating is fragile."""

    score_margin: float = Field(1, ge=0, description="the score is within this of a band edge")
    fact_margin_pct: float = Field(5, ge=0, description="a fact within this % of a threshold that changes the rating")
    why: Why = {}


class Policy(Strict):
    policy: str
    scale: Scale
    evidence: dict[str, EvidenceFamily] = Field({}, description="families of evidence rules and packs declare")
    conflicts: ConflictPolicy = ConflictPolicy()
    technicals: TechnicalParams = TechnicalParams()
    freshness: Freshness = Freshness()
    fragility: FragilityPolicy = FragilityPolicy()
    disclaimer: str

    @model_validator(mode="after")
    def _requirements(self) -> Policy:
        names = self.scale.names()
        for b in self.scale.ratings:
            unknown = [f for f in b.requires if f not in self.evidence]
            if unknown:
                raise ValueError(f"rating {b.name} requires unknown evidence famil{'ies' if len(unknown) > 1 else 'y'} "
                                 f"{', '.join(unknown)}; declare {'them' if len(unknown) > 1 else 'it'} under "
                                 f"`evidence:` ({', '.join(self.evidence) or 'none declared'})")
            if b.requires and b.otherwise is None:
                raise ValueError(f"rating {b.name} has `requires` but no `otherwise` (the rating it becomes "
                                 "when the evidence is missing)")
            if b.otherwise is not None and (b.otherwise not in names or b.otherwise == b.name):
                raise ValueError(f"rating {b.name}: `otherwise: {b.otherwise}` must name another rating of the "
                                 f"scale ({', '.join(names)})")
        return self

    def band_named(self, name: str) -> RatingBand:
        return next(b for b in self.scale.ratings if b.name == name)


# ----------------------------------------------------------------------------------- results


class ProvenanceInput(BaseModel):
    """One value a derived fact was computed from."""

    name: str = Field(description="a fact path, or a part of the formula such as avg(volume, 20)")
    value: Any
    source: str = ""
    as_of: dt.date | None = None
    note: str = ""


class Provenance(BaseModel):
    """How a derived fact was computed: enough for a person to recompute it."""

    formula: str
    defined_at: str = Field(description="file:line:col of the declaration")
    kind: Literal["prices", "facts", "cross"]
    parameters: dict[str, dict[str, float]] = Field({}, description="per function call of the formula")
    inputs: list[ProvenanceInput] = []
    bars: int | None = Field(None, description="price bars up to the last bar used")
    last_bar: dt.date | None = None
    basis: str = ""


class FactUse(BaseModel):
    path: str
    value: Any
    unit: str = ""
    as_of: dt.date | None = None
    known_at: dt.date | None = Field(None, description="the day the value became known (publication, trading day)")
    source: str = ""
    derived: str = ""
    provenance: Provenance | None = None

    @model_serializer(mode="wrap")
    def _without_empty_provenance(self, handler: Any) -> Any:
        out = handler(self)
        if isinstance(out, dict) and out.get("provenance") is None:
            out.pop("provenance", None)  # stated facts: the output stays as it was
        return out


class Comparison(BaseModel):
    text: str
    left: Any
    op: str
    right: Any
    holds: bool | None
    margin_pct: float | None = None


class Fired(BaseModel):
    rule: str
    title: str
    pack: str
    file: str
    line: int
    salience: int
    facts: dict[str, Any]
    signals_used: list[dict[str, Any]] = []
    comparisons: list[Comparison] = []
    produced: list[str] = []


class NotFired(BaseModel):
    rule: str
    pack: str
    file: str
    line: int
    status: Literal["false", "not_evaluable"]
    missing: list[str] = []
    comparisons: list[Comparison] = []
    blocked_by: list[str] = Field([], description="the parts of the condition that failed or were undecided")
    would_emit: list[dict[str, Any]] = Field([], description="signals (name, score) it would have emitted")


class SignalOut(BaseModel):
    name: str
    score: float
    rule: str
    sources: list[str] = Field([], description="the rules whose signals this rule consumed")
    note: str = Field("", description="the emitting rule's note on it, with the facts it rests on")


class WarningOut(BaseModel):
    rule: str
    severity: Severity
    message: str


class EntryOut(BaseModel):
    horizon: Horizon
    advice: Advice
    low: float | None = None
    high: float | None = None
    note: str = ""
    rule: str


class TargetOut(BaseModel):
    low: float
    high: float
    currency: str
    note: str = ""
    rule: str
    value: float | None = Field(None, description="the point target of a valuation method (its upside is measured "
                                                  "to it)")
    upside_pct: float | None = Field(None, description="value / price - 1, in %")


class ValuationOut(BaseModel):
    """One valuation method applied: its target, how it was computed, and from which facts."""

    method: str = Field(description="the method's id")
    title: str
    kind: str
    file: str
    line: int
    value: float
    low: float
    high: float
    currency: str = "RMB"
    price: float
    price_fact: str
    upside_pct: float
    how: str
    inputs: dict[str, Any] = Field({}, description="fact path -> the value used")
    reference: dict[str, Any] | None = Field(None, description="a target stated elsewhere, for comparison")
    used: bool = Field(False, description="whether it set the target (else it is a cross-check)")


class FamilyCoverage(BaseModel):
    family: str
    label: str
    scope: str
    rules: int = Field(description="rules of this family that read facts")
    evaluable: int = Field(description="of them, those whose facts were all present")
    fired: int
    present: bool = Field(description="whether the family counts as evidence for this rating")
    missing: list[str] = Field([], description="facts its rules needed and did not have")


class EvidenceCoverage(BaseModel):
    """Which families of evidence the rating rests on, and what was missing (never counted against it)."""

    percent: float = Field(description="share of the fact-reading rules whose facts were all present")
    families: list[FamilyCoverage]
    missing: list[str] = Field([], description="families with no evaluable rule")
    needs: list[str] = Field([], description="what a better rating would need and does not have")


class FragileFact(BaseModel):
    path: str
    label: str
    value: float
    threshold: float
    change_pct: float
    rating: str = Field(description="the rating beyond the threshold")
    rule: str


class Fragility(BaseModel):
    """Whether the rating would change with one signal or a small move in a deciding fact."""

    fragile: bool
    notes: list[str] = []
    score_edges: list[dict[str, Any]] = Field([], description="band edges within the policy's score margin")
    facts: list[FragileFact] = Field([], description="facts within the policy's margin of a rating change")
    facts_checked: bool = Field(True, description="false in screens without traces: only the score was checked")


class BandOut(BaseModel):
    name: str
    min_score: float | None


class RatingOut(BaseModel):
    name: str
    meaning: str
    scale: str
    benchmark: str
    horizon: str
    decided_by: str
    bands: list[BandOut] = Field([], description="the policy's bands, best first, as they were when rated")
    steps: list[str] = Field([], description="how the rating was reached: score band, overrides, evidence, upside")


class FactCheck(BaseModel):
    """A fact both derived from prices and stated by a source: do they agree?"""

    path: str
    derived: Any
    stated: list[dict[str, Any]]
    agree: bool
    how: str


class _Rated(BaseModel):
    """What an evaluation concluded: the fields a full evaluation and a screen's summary share."""

    symbol: str
    name: str
    sector: str
    as_of: dt.date | None
    rating: str
    score: float
    rating_info: RatingOut
    target: TargetOut | None
    entries: list[EntryOut]
    warnings: list[WarningOut]
    coverage: EvidenceCoverage | None = Field(None, description="which families of evidence were present")
    fragility: Fragility | None = Field(None, description="whether a small change would change the rating")


class Evaluation(_Rated):
    """What is rendered: one symbol's evaluation, the JSON contract of `verdict evaluate --format json`."""

    valuations: list[ValuationOut] = Field([], description="each valuation method that could be computed")
    signals: list[SignalOut]
    fired: list[Fired]
    not_fired: list[NotFired]
    facts: list[FactUse]
    fact_checks: list[FactCheck] = Field([], description="derived facts next to what sources state")
    run_id: str
    ruleset_hash: str
    facts_hash: str
    engine_version: str
    disclaimer: str


class Summary(_Rated):
    """A screened symbol: the outcome of an evaluation without its rendered trace.

    What a screen prints (table, CSV). `fired` names the rules that fired, in firing order; the full
    explanation is `verdict evaluate SYMBOL` (or a screen with --format jsonl, or one that records)."""

    fired: list[str]
    run_id: str
    ruleset_hash: str
    engine_version: str
    disclaimer: str

    @classmethod
    def of(cls, ev: Evaluation) -> Summary:
        """The summary of a full evaluation (its warnings include the cross-check's, if any)."""
        return cls.model_construct(
            symbol=ev.symbol, name=ev.name, sector=ev.sector, as_of=ev.as_of, rating=ev.rating, score=ev.score,
            rating_info=ev.rating_info, target=ev.target, entries=ev.entries, warnings=ev.warnings,
            coverage=ev.coverage, fragility=ev.fragility, fired=[f.rule for f in ev.fired], run_id=ev.run_id,
            ruleset_hash=ev.ruleset_hash, engine_version=ev.engine_version, disclaimer=ev.disclaimer)


@dataclass
class Outcome:
    """One symbol of a screen: its summary, its full evaluation when the trace was rendered (as the JSON
    a worker wrote: pickling the model tree back was most of a recorded screen; or where a worker
    spilled that JSON, `spilled` (file, offset, length), so a screen holds no documents in memory), and
    the recorded form of the run (its trace, engine/capture.py, packed) when it is recorded."""

    summary: Summary
    document: str | None = None
    full: Evaluation | None = None
    row: dict[str, Any] = field(default_factory=dict)  # a screen's chosen columns, by column key
    trace: str | bytes | None = None  # what the audit log stores: the trace, as text or packed (audit.pack_output)
    spilled: tuple[str, int, int] | None = None

    def evaluation(self) -> Evaluation:
        if self.full is None:
            self.full = Evaluation.model_validate_json(self.json())
        return self.full

    def json(self) -> str:
        if self.document is not None:
            return self.document
        if self.spilled is not None:
            path, offset, length = self.spilled
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length).decode("utf-8")
        if self.full is None:
            raise ValueError(f"{self.summary.symbol} was screened without its trace")
        return self.full.model_dump_json()

    def recorded(self) -> str | bytes:
        """What the audit log stores for it: its trace, else its full evaluation's JSON."""
        return self.trace if self.trace is not None else self.json()

    @classmethod
    def of(cls, ev: Evaluation) -> Outcome:
        return cls(Summary.of(ev), None, ev)



# ----------------------------------------------------------------------------------- rule tests


GivenValue = Scalar | dict[str, Number]


class RangeExpect(Strict):
    """A computed price range: exact values within `tol`, and/or bounds that must hold."""

    low: float | None = Field(None, description="expected low, within `tol`")
    high: float | None = Field(None, description="expected high, within `tol`")
    tol: float = Field(0.01, ge=0, description="tolerance of `low`, `high` (and a target's `value`, `upside_pct`)")
    low_min: float | None = None
    low_max: float | None = None
    high_min: float | None = None
    high_max: float | None = None


class TargetExpect(RangeExpect):
    value: float | None = Field(None, description="expected point target of the valuation method, within `tol`")
    upside_pct: float | None = Field(None, description="expected upside in %, within `tol`")
    method: str | None = Field(None, description="the valuation method (or rule) that set the target")


class EntryExpect(RangeExpect):
    advice: Advice | None = None
    note_contains: str | None = None
    absent: bool = Field(False, description="expect no entry for this horizon")


class CaseExpect(Strict):
    rating: str | None = None
    score: float | None = None
    signals: list[str] = Field([], description="signals that must be emitted")
    no_signals: list[str] = Field([], description="signals that must not be emitted")
    fired: list[str] = []
    not_fired: list[str] = []
    not_evaluable: list[str] = []
    warnings: list[str] = Field([], description="rule ids that must have raised a warning")
    no_warnings: list[str] = []
    entries: dict[Horizon, EntryExpect] = {}
    target: TargetExpect | None = None
    no_target: bool = False
    evidence: list[str] = Field([], description="families of evidence that must be present")
    no_evidence: list[str] = Field([], description="families of evidence that must be missing (not present)")
    fragile: bool | None = Field(None, description="whether the rating must be (true) or must not be (false) "
                                                   "fragile")


class GivenFacts(Strict):
    """Inline facts for a case: nothing else from the facts directory is visible."""

    as_of: dt.date = dt.date(2026, 1, 1)
    stock: dict[str, GivenValue] = {}
    sector: dict[str, GivenValue] = {}
    commodity: dict[str, GivenValue] = {}


class Case(Strict):
    name: str
    symbol: str | None = Field(None, description="take the facts of this symbol from the facts directory")
    file: str | None = Field(None, description="a stock fact file, relative to the case file")
    given: GivenFacts | None = None
    as_of: dt.date | None = Field(None, description="evaluate the symbol or file as of this date (point in time)")
    set: dict[str, GivenValue] = Field({}, description="override facts: path -> value or bound")
    expect: CaseExpect

    @model_validator(mode="after")
    def _one_source(self) -> Case:
        if sum(x is not None for x in (self.symbol, self.file, self.given)) != 1:
            raise ValueError("give exactly one of `symbol`, `file` or `given`")
        if self.as_of is not None and self.given is not None:
            raise ValueError("inline facts take their date from `given: as_of:`")
        return self


class CaseFile(Strict):
    cases: list[Case]


# ----------------------------------------------------------------------------------- what-if scenarios


class ScenarioSpec(Strict):
    """One named scenario: facts set to other values, and optionally the share price moved."""

    note: str = Field("", description="what the scenario stands for (shown with it)")
    set: dict[str, GivenValue] = Field({}, description="fact path -> value, or a bound such as {gt: 80}, as "
                                                       "`--set` takes them")
    price: float | None = Field(None, gt=0, description="the share price: stock.price and every fact the catalog "
                                                        "links to it (PE, DCF vs price, returns) move with it; "
                                                        "facts under `set` keep their given values")


class ScenarioFile(Strict):
    """`verdict what-if SYMBOL --scenarios FILE`: named scenarios, shown side by side in this order."""

    scenarios: dict[str, ScenarioSpec] = Field(min_length=1, description="scenario name -> what it changes")
