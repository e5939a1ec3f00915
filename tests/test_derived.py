"""Derived facts declared in the catalog: checked with positions, computed once, equal to the built-ins.

The reference for "built-in" is the technical-facts module the declarations replaced (kept below as
`builtin_technicals`, written against engine/indicators.py exactly as it was): it computed every
indicator on the series cut at the evaluation date and read the last bar.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import FACTS, RULES
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import expr, series
from engine import indicators as ind
from engine.derive import symbol_facts
from engine.errors import FactError, Location
from engine.formulas import GRAMMAR, provenance_of
from engine.load import load_facts
from engine.model import ConflictPolicy
from engine.pipeline import Workspace
from engine.prices import PriceSeries


def builtin_technicals(s: PriceSeries) -> dict[str, float | bool]:
    """What engine/technicals.py derived on a series' last bar (its default parameters)."""
    bars = s.bars
    n, day = len(bars), bars[-1].date
    close, high, low = [b.close for b in bars], [b.high for b in bars], [b.low for b in bars]
    out: dict[str, float | bool] = {}

    def add(name: str, v: float | bool | None) -> None:
        if v is not None:
            out[f"stock.{name}"] = v if isinstance(v, bool) else round(float(v), 6)

    dif, dea, bar = ind.macd(close, 12, 26, 9)
    add("close", close[-1])
    add("macd_dif", dif[-1])
    add("macd_dea", dea[-1])
    add("macd_bar", bar[-1])
    add("macd_dif_pct", dif[-1] / close[-1] * 100)
    add("macd_near_zero_axis", abs(dif[-1]) / close[-1] * 100 < 1.0 and abs(dea[-1]) / close[-1] * 100 < 1.0)
    add("macd_golden_cross", ind.crossed_above(dif, dea, n - 1))
    add("macd_death_cross", ind.crossed_above(dea, dif, n - 1))
    k, d, j = ind.kdj(high, low, close, 9, 3, 3)
    add("kdj_k", k[-1])
    add("kdj_d", d[-1])
    add("kdj_j", j[-1])
    add("kdj_j_max_recent", max(j[-min(5, n):]))
    for period in (6, 12, 24):
        add(f"rsi_{period}", ind.rsi(close, period)[-1])
    for period in (5, 10, 20, 60):
        add(f"ma_{period}", ind.ma(close, period)[-1])
    mid, up, lo = ind.boll(close, 20, 2.0, 1)
    add("boll_mid", mid[-1])
    add("boll_upper", up[-1])
    add("boll_lower", lo[-1])
    year = [b for b in bars if b.date > day - dt.timedelta(days=365)]
    add("high_52w", max(b.high for b in year))
    add("low_52w", min(b.low for b in year))
    add("range_low", min(close[-min(10, n):]))
    add("range_high", max(close[-min(10, n):]))
    add("resistance", max(close[-min(20, n):]))
    add("support", min(close[-min(20, n):]))
    return out


@pytest.fixture(scope="module")
def bundled() -> Workspace:
    return Workspace.open(RULES, FACTS)


def test_declared_technicals_equal_the_builtin_on_every_date(bundled: Workspace) -> None:
    """Every declaration that replaced a built-in technical fact gives exactly its value, on the five real
    series, on every 3rd date from the 70th bar (where every window is full) to the end."""
    checked = 0
    for symbol, stock in bundled.facts.stocks.items():
        s = stock.series
        assert s is not None
        for i in range(70, len(s.bars), 3):
            day = s.bars[i].date
            want = builtin_technicals(s.until(day))
            derived, _, unavailable = bundled.deriver.price_facts(stock, day)
            got = {d.path: d.value.value for d in derived if d.path in want}
            assert got == want, (symbol, day, {p: (got.get(p), v) for p, v in want.items() if got.get(p) != v})
            assert not {p for p in unavailable if p in want}  # longer windows (MA120) start later
            checked += len(want)
    assert checked > 10_000


def test_declared_indicators_agree_with_stockstats(bundled: Workspace) -> None:
    pd = pytest.importorskip("pandas")
    stockstats = pytest.importorskip("stockstats")
    stock = bundled.facts.find("600111")
    s = stock.series
    assert s is not None
    df = stockstats.wrap(pd.DataFrame({"open": [b.open for b in s.bars], "high": [b.high for b in s.bars],
                                       "low": [b.low for b in s.bars], "close": [b.close for b in s.bars],
                                       "volume": [b.volume for b in s.bars]}))
    pairs = {"macd_dif(12, 26, 9)": ("macd", 1), "macd_dea(12, 26, 9)": ("macds", 1),
             "macd_bar(12, 26, 9)": ("macdh", 2), "kdj_k(9, 3, 3)": ("kdjk", 1), "kdj_j(9, 3, 3)": ("kdjj", 1),
             "rsi(12)": ("rsi_12", 1), "boll_upper(20, 2)": ("boll_ub", 1), "ma(close, 20)": ("close_20_sma", 1),
             "avg(volume, 20)": ("volume_20_sma", 1)}
    ss = bundled.deriver.symbol_series(stock)
    assert ss is not None
    for text, (column, factor) in pairs.items():
        ours = ss.values(expr.parse(text, GRAMMAR))
        theirs = df[column].tolist()
        for i in range(500, len(s.bars)):  # after the EMA seeds stop mattering (see test_indicators)
            assert math.isclose(ours[i], factor * theirs[i], rel_tol=1e-6, abs_tol=1e-9), (text, i)


def test_a_formula_is_computed_once_however_many_dates_read_it(bundled: Workspace) -> None:
    stock = bundled.facts.find("300224")
    s = stock.series
    assert s is not None
    dates = [b.date for b in s.bars[-200:]]
    bundled.symbol_facts("300224", dates[0])
    ss = bundled.deriver.symbol_series(stock)
    assert ss is not None
    after_one = ss.computations
    for day in dates:
        bundled.symbol_facts("300224", day)
    assert ss.computations == after_one > 0  # 200 dates, no formula computed again


FORMULAS = ["ma(close, 5)", "ema(close, 12)", "sma(close, 3, 1)", "highest(high, 20)", "lowest(low, 20)",
            "ret(close, 20)", "volatility(close, 20, 250)", "avg(volume, 20) / avg(volume, 60)", "rsi(6)",
            "kdj_j(9, 3, 3)", "macd_bar(12, 26, 9)", "boll_lower(20, 2)", "highest_days(high, 365)",
            "cross(ma(close, 5), ma(close, 20))", "std(close, 10)", "ref(close, 3)", "highest(kdj_j(9, 3, 3), 5)",
            "ema(ma(close, 5) - ma(close, 10), 9)", "close > boll_upper(20, 2) or close < boll_lower(20, 2)"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FORMULAS), st.integers(0, 979))
def test_reading_a_date_of_the_whole_series_equals_computing_on_the_series_cut_there(text: str, i: int) -> None:
    s = _NRE.series
    assert s is not None
    node = expr.parse(text, GRAMMAR)
    whole = series.SymbolSeries(s).at(node, i)
    cut = s.until(s.bars[i].date)
    assert series.SymbolSeries(cut).at(node, i) == whole  # causal: no bar after i is ever read


_NRE = load_facts(FACTS).find("600111")  # a fact base of its own: the tests below may not touch it


def test_one_bar_of_a_formula_is_its_whole_series_at_that_bar(bundled: Workspace) -> None:
    """`at(node, i)` works out a window's standard deviation (std, volatility, BOLL) or extreme (highest,
    lowest, by bars or calendar days) from bar i's window alone,
    and what combines series bar by bar (arithmetic, comparisons, and/or/not, abs) on bar i alone: on the
    five real series, every bar and every price-history formula the catalog declares (and this file's), it
    is `values(node)[i]` as written (repr: 0.0 is not -0.0), Nones, booleans and zero divisors included."""
    texts = [*FORMULAS, "abs(macd_dif(12, 26, 9)) / close * 100 < 1 and not (close > 0 and -ref(close, 1) < 0)",
             "ret(close, 1) / (close - close) > 0 or max(close, open) == 0", "abs(ref(close, 3)) + 1",
             "stdp(close, 10)", "std(ret(close, 1), 5)", "volatility(ma(close, 5), 10, 250)", "boll_upper(10, 1.5, 0)",
             "lowest_days(ret(close, 1), 30)", "highest((close - ref(close, 1)) * 0, 3)",
             "lowest_days((close - ref(close, 1)) * 0, 10)"]  # the last two: 0.0 and -0.0, equal but not alike
    nodes = [f.node for f in bundled.deriver.formulas.prices()] + [expr.parse(t, GRAMMAR) for t in texts]
    kinds: set[type] = set()
    for stock in bundled.facts.stocks.values():
        assert stock.series is not None
        lookup = bundled.deriver.formulas.series_node
        whole, one = series.SymbolSeries(stock.series, lookup), series.SymbolSeries(stock.series, lookup)
        for node in nodes:
            values = whole.values(node)
            for i in range(len(values)):
                assert repr(one.at(node, i)) == repr(values[i]), (stock.file.symbol, expr.unparse(node), i)
                kinds.add(type(values[i]))
    assert kinds == {float, bool, type(None)}


def _with_catalog(workdir: Path, entries: str) -> Path:
    """Add stock.* entries (YAML lines, 4-space indented) to the copied catalog; returns it."""
    catalog = workdir / "facts" / "catalog.yaml"
    text = catalog.read_text()
    catalog.write_text(text.replace("  stock:\n", "  stock:\n" + entries, 1))
    return catalog


def _line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if fragment in line)


def _at(path: Path, key: str, text: str) -> str:
    """file:line:col where `text` starts on the line of `key` (1-based column, as editors count)."""
    line = _line_of(path, key)
    col = path.read_text().splitlines()[line - 1].index(text) + 1
    return f"facts/catalog.yaml:{line}:{col}"


@pytest.mark.parametrize(("formula", "code", "fragment"), [
    ("avg(volme, 20)", "unknown-series", "Did you mean 'volume'?"),
    ("stock.pe_tmm / 2", "unknown-fact", "Did you mean 'stock.pe_ttm'?"),
    ("mavg(close, 20)", "unknown-function", "Did you mean 'avg'"),
    ("ma(close)", "arity", "ma(series, n)"),
    ("ma(close, 0)", "parameter", "from 1 to 10000, not 0"),
    ("ma(close, 2.5)", "parameter", "a whole number"),
    ("ma(close, stock.pe_ttm)", "parameter", "must be a number written in the formula"),
    ("ma(stock.pe_ttm, 20)", "not-a-series", "stock.pe_ttm is a fact with one value per date"),
    ("macd_dif(26, 12, 9)", "parameter", "fast EMA must be shorter"),
    ("percentile(stock.pe_ttm, industry)", "arity", "percentile(stock.x, sector)"),
    ("signal.overbought", "signal-in-formula", "cannot read signals"),
    ("close > 3", "type", "gives a bool, but the catalog declares stock.x_test as number"),
    ("stock.price > 2026-1-19", "date-literal", 'date("2026-01-19")'),
    ("2 * 3", "constant", "reads no fact and no price series"),
])
def test_a_bad_formula_is_reported_at_its_file_line_and_column(workdir: Path, formula: str, code: str,
                                                              fragment: str) -> None:
    catalog = _with_catalog(workdir, f'    x_test: {{type: number, label: "X", family: technicals,\n'
                                     f'             formula: "{formula}"}}\n')
    with pytest.raises(FactError) as err:
        load_facts(workdir / "facts")
    hits = [p for p in err.value.problems if p.code == code]
    assert hits, [p.render() for p in err.value.problems]
    p = hits[0]
    assert fragment in p.render(), p.render()
    assert p.loc.file == "facts/catalog.yaml" and p.loc.line == _line_of(catalog, f'formula: "{formula}"')
    assert p.loc.col >= 23  # inside the formula's text, not at the start of the line


def test_a_cycle_between_derived_facts_is_an_error(workdir: Path) -> None:
    catalog = _with_catalog(workdir, '    a_x: {type: number, label: A, family: technicals, formula: "stock.b_x + 1"}\n'
                                     '    b_x: {type: number, label: B, family: technicals, formula: "stock.c_x * 2"}\n'
                                     '    c_x: {type: number, label: C, family: technicals, formula: "stock.a_x-1"}\n')
    with pytest.raises(FactError) as err:
        load_facts(workdir / "facts")
    cycles = [p for p in err.value.problems if p.code == "cycle"]
    assert len(cycles) == 1, [p.render() for p in err.value.problems]
    assert "stock.a_x -> stock.b_x -> stock.c_x -> stock.a_x" in cycles[0].message
    assert cycles[0].loc.line == _line_of(catalog, "c_x:") and cycles[0].loc.col > 50


def test_a_window_longer_than_the_history_is_not_evaluable_with_the_reason(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    catalog = _with_catalog(workdir, '    ma_500: {type: number, label: "MA 500", family: technicals, '
                                     'formula: "ma(close, 500)"}\n')
    pack = workdir / "rules" / "technical.yaml"
    pack.write_text(pack.read_text() + "\n  - id: technical.above-ma-500\n    when: stock.close > stock.ma_500\n"
                                       "    then: {signal: {name: long_uptrend, score: 1}}\n")
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    ev = ws.evaluate("300748", as_of=dt.date(2026, 1, 19))  # 137 bars to that date
    nf = {n.rule: n for n in ev.not_fired}["technical.above-ma-500"]
    assert nf.status == "not_evaluable"
    assert nf.missing == [f"stock.ma_500 (not computed: ma(close, 500) needs 500 bars of price history; there are "
                          f"137 up to 2026-01-19 [{_at(catalog, 'ma_500:', 'ma(close, 500)')}])"]
    assert "stock.ma_500" in {f.path for f in ws.evaluate("600111").facts}  # 980 bars: computed
    out = verdict("evaluate", "300748", "--explain", "--no-record", "--as-of", "2026-01-19", cwd=workdir)
    assert "needs 500 bars of price history; there are 137" in out.stdout
    catalog.write_text(catalog.read_text().replace("ma(close, 500)", "ma(close, 5000)"))
    check = verdict("rules", "check", cwd=workdir)
    longest = max(len(s.series.bars) for s in load_facts(workdir / "facts").stocks.values() if s.series)
    assert f"{_at(catalog, 'ma_500:', 'ma(close, 5000)')}: warning window-beyond-history: " \
           "stock.ma_500 = ma(close, 5000) needs 5000 bars " \
           f"of price history, and the longest loaded history has {longest}: it has no value" in check.stdout


def test_a_zero_divisor_gives_a_stated_not_evaluable_result(workdir: Path) -> None:
    catalog = _with_catalog(workdir, '    peg_test: {type: number, label: "PEG", family: fundamentals, '
                                     'formula: "stock.pe_ttm / stock.earnings_growth_low_pct"}\n')
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    stock.write_text(stock.read_text().replace("{value: 116.67,", "{value: 0,"))
    pack = workdir / "rules" / "risk.yaml"
    pack.write_text(pack.read_text() + "\n  - id: risk.peg-test\n    when: stock.peg_test > 2\n"
                                       "    then: {warning: {message: \"PEG {stock.peg_test}\"}}\n")
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    sf = ws.symbol_facts("600111")
    assert sf.unavailable["stock.peg_test"] == ("stock.pe_ttm / stock.earnings_growth_low_pct (division by zero) "
                                                f"[{_at(catalog, 'peg_test:', 'stock.pe_ttm /')}]")
    nf = {n.rule: n for n in ws.evaluate("600111").not_fired}["risk.peg-test"]
    assert nf.status == "not_evaluable" and "division by zero" in nf.missing[0]


def test_a_formula_over_facts_shows_its_inputs_and_is_recomputed_under_overrides(bundled: Workspace) -> None:
    from engine.derive import given_value, with_overrides

    sf = bundled.symbol_facts("600111")
    peg = sf.chosen["stock.peg"]
    assert peg.value.value == pytest.approx(86.26 / 116.67, abs=1e-6) and peg.value.source == "formula"
    assert peg.value.as_of == dt.date(2026, 1, 16)  # its oldest input
    assert peg.provenance is not None and [(i.name, i.value, i.source) for i in peg.provenance.inputs] == [
        ("stock.pe_ttm", 86.26, "jinling-ai"), ("stock.earnings_growth_low_pct", 116.67, "eastmoney-20260120")]
    assert peg.derived.startswith("stock.pe_ttm / stock.earnings_growth_low_pct: stock.pe_ttm 86.26 [jinling-ai, ")
    assert peg.provenance.defined_at.startswith("rules/relative_value.yaml:")  # declared by the pack
    moved = with_overrides(sf, bundled.facts.catalog,
                           {"stock.earnings_growth_low_pct": given_value(30, dt.date(2026, 1, 16), "override")})
    assert moved.chosen["stock.peg"].value.value == pytest.approx(86.26 / 30, abs=1e-6)
    fixed = with_overrides(sf, bundled.facts.catalog, {"stock.peg": given_value(9, dt.date(2026, 1, 16), "override")})
    assert fixed.chosen["stock.peg"].value.value == 9


def test_volume_ratio_matches_a_hand_computation_from_the_csv(bundled: Workspace) -> None:
    stock = bundled.facts.find("300127")
    assert stock.series is not None
    volumes = [b.volume for b in stock.series.until(dt.date(2026, 1, 30)).bars]
    want = round((sum(volumes[-20:]) / 20) / (sum(volumes[-60:]) / 60), 6)
    sf = bundled.symbol_facts("300127", dt.date(2026, 1, 30))
    c = sf.chosen["stock.vol_ratio_20_60"]
    assert c.value.value == pytest.approx(want, abs=2e-6) and c.value.value > 1.5
    prov = provenance_of(c.provenance)
    assert prov is not None and prov.last_bar == dt.date(2026, 1, 30) and prov.bars == len(volumes)
    assert prov.parameters == {"avg(volume, 20)": {"n": 20}, "avg(volume, 60)": {"n": 60}}
    assert [(i.name, i.source) for i in prov.inputs] == [
        ("avg(volume, 20)", "prices"), ("avg(volume, 60)", "prices"),
        ("volume", "tushare-visiontrekker, tushare-gunark")]
    assert prov.inputs[2].value == volumes[-1]


def test_a_catalog_without_formulas_gets_the_builtin_technicals_from_the_policy(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    """Catalogs (and audit snapshots) written before formulas: built-in facts declared without one are
    computed with the policy's `technicals:` parameters, as before."""
    import re

    catalog = workdir / "facts" / "catalog.yaml"
    catalog.write_text(re.sub(r',?\s*formula: (?:"[^"]*"|close)', "", catalog.read_text()))
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    old = {p: c.value.value for p, c in ws.symbol_facts("600111").chosen.items() if c.value.source == "prices"}
    bundled = Workspace.open(RULES, FACTS)
    new = {p: c.value.value for p, c in bundled.symbol_facts("600111").chosen.items() if c.value.source == "prices"}
    # the 28 built-ins, vol_ratio_20_60 from rules/volume.yaml, and the general packs' five price facts
    assert old == new and len(old) == 34
    policy = workdir / "rules" / "policy.yaml"
    policy.write_text(policy.read_text().replace("  min_bars: 120", "  min_bars: 120\n  macd: [10, 20, 5]"))
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    dif = ws.symbol_facts("600111").chosen["stock.macd_dif"]
    assert dif.derived.startswith("macd_dif(10, 20, 5): ") and dif.value.value != new["stock.macd_dif"]
    assert verdict("rules", "check", cwd=workdir).returncode == 0  # used: no warning
    shutil.copy(FACTS / "catalog.yaml", catalog)
    out = verdict("rules", "check", cwd=workdir)
    assert "rules/policy.yaml:" in out.stdout
    assert "warning technicals-unused: technicals: macd is not used" in out.stdout


def test_date_facts_and_ages_in_rules(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    _with_catalog(workdir, '    listing_date: {type: date, label: "Listing date", family: reference}\n')
    stock = workdir / "facts" / "stocks" / "300748.yaml"
    stock.write_text(stock.read_text().replace("facts:\n", "facts:\n  listing_date: {value: 2018-09-21, as_of: "
                                                           "2026-01-19, source: seed-report}\n", 1))
    pack = workdir / "rules" / "risk.yaml"
    pack.write_text(pack.read_text() + '\n  - id: risk.seasoned\n    when: stock.listing_date < date("2020-01-01") '
                    "and days_since(stock.listing_date) > 2000 and age(stock.pe_ttm) <= 7\n"
                    "    then: {warning: {severity: low, message: \"listed {days_since(stock.listing_date)} days\"}}\n")
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    ev = ws.evaluate("300748", as_of=dt.date(2026, 1, 20))
    fired = next(f for f in ev.fired if f.rule == "risk.seasoned")
    assert [c.text for c in fired.comparisons] == [
        "stock.listing_date 2018-09-21 < 2020-01-01 (holds)",
        "days_since(stock.listing_date) = 2678 > 2000 (holds by 33.9%)",
        "age(stock.pe_ttm) = 1 <= 7 (holds by 85.7%)"]
    assert fired.facts["stock.listing_date"] == dt.date(2018, 9, 21)
    assert "listed 2678 days" in next(w.message for w in ev.warnings if w.rule == "risk.seasoned")
    assert "risk.seasoned" not in {f.rule for f in ws.evaluate("300748", as_of=dt.date(2026, 2, 10)).fired}  # PE old
    pack.write_text(pack.read_text().replace('stock.listing_date < date("2020-01-01")', "stock.price > 2026-1-19"))
    out = verdict("rules", "check", cwd=workdir)
    line = _line_of(pack, "stock.price > 2026-1-19")
    col = pack.read_text().splitlines()[line - 1].index("2026-1-19") + 1
    assert out.returncode == 1
    assert f"rules/risk.yaml:{line}:{col}: error date-literal: `2026-1-19` is not a date here" in out.stdout


def test_a_pack_declares_derived_facts_checked_like_the_catalogs(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    pack = workdir / "rules" / "capital_flow.yaml"
    pack.write_text(pack.read_text() + "\n".join([
        "derived:",
        '  stock.turnover_5: {type: number, label: "5-day average volume", family: technicals,',
        '                    formula: "avg(volme, 5)"}',
        '  stock.close: {type: number, label: "Close again", family: prices, formula: "close"}',
        '  stock.stated_here: {type: number, label: "Stated", family: prices}',
        '  stok.bad: {type: number, label: "Bad", family: prices, formula: "close"}',
        '  stock.loop_a: {type: number, label: "A", family: prices, formula: "stock.loop_b + 1"}',
        '  stock.loop_b: {type: number, label: "B", family: prices, formula: "stock.loop_a + 1"}', ""]))
    out = verdict("rules", "check", cwd=workdir)
    assert out.returncode == 1
    text = pack.read_text().splitlines()

    def at(fragment: str, inner: str) -> str:
        line = next(i for i, t in enumerate(text, start=1) if fragment in t)
        return f"rules/capital_flow.yaml:{line}:{text[line - 1].index(inner) + 1}"

    assert f"{at('avg(volme', 'volme')}: error unknown-series: " \
           "in the formula of stock.turnover_5: `volme` is not a price series " \
           "or a fact path. Did you mean 'volume'?" in out.stdout
    assert f"{at('stock.close:', 'stock.close')}: error pack-fact: " \
           "'stock.close' is already declared in the fact catalog" \
        in out.stdout
    assert "'stock.stated_here' has no formula" in out.stdout and "'stok.bad' is not a fact path" in out.stdout
    assert "stock.loop_a -> stock.loop_b -> stock.loop_a" in out.stdout


def test_a_fact_declared_by_one_pack_is_read_by_another_and_explained(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    (workdir / "rules" / "flows_extra.yaml").write_text("\n".join([
        "pack: flows_extra",
        "derived:",
        '  stock.range_width_pct: {type: number, label: "Range width", unit: "%", family: technicals,',
        '                          formula: "(stock.range_high / stock.range_low - 1) * 100"}',
        "rules:",
        "  - id: flows_extra.narrow-range",
        "    when: stock.range_width_pct < 10 and stock.pe_ttm / stock.earnings_growth_low_pct < 1",
        "    then: {signal: {name: narrow_range, score: 0}}", ""]))
    risk = workdir / "rules" / "risk.yaml"
    risk.write_text(risk.read_text() + "\n  - id: risk.narrow-and-cheap\n    when: signal.narrow_range and "
                                       "stock.range_width_pct > 1\n    then: {warning: {severity: low, message: "
                                       "\"range {stock.range_width_pct:.1f}% wide\"}}\n")
    out = verdict("evaluate", "600111", "--explain", "--no-record", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "stock.range_width_pct = " in out.stdout
    assert "derived: (stock.range_high / stock.range_low - 1) * 100: stock.range_high 52.48 [prices, 2026-01-20]" \
        in out.stdout
    assert "stock.pe_ttm / stock.earnings_growth_low_pct = 0.7394 < 1 (holds by 26.1%)" in out.stdout
    data = json.loads(verdict("evaluate", "600111", "--format", "json", "--no-record", cwd=workdir).stdout)
    prov = next(f for f in data["facts"] if f["path"] == "stock.range_width_pct")["provenance"]
    assert prov["kind"] == "facts" and prov["defined_at"] == "rules/flows_extra.yaml:4:37"
    assert [i["name"] for i in prov["inputs"]] == ["stock.range_high", "stock.range_low"]
    assert "risk.narrow-and-cheap" in {f["rule"] for f in data["fired"]}


def test_explain_shows_a_peg_above_2_with_its_formula_and_inputs(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    stock.write_text(stock.read_text().replace("{value: 116.67,", "{value: 30,"))
    out = verdict("evaluate", "600111", "--explain", "--no-record", cwd=workdir)
    assert "[medium] PEG 2.88 is above 2: PE (TTM) 86.26 against growth guidance of at least 30%" in out.stdout
    assert "stock.peg 2.8753 > 2 (holds by 43.8%)" in out.stdout
    assert ("derived: stock.pe_ttm / stock.earnings_growth_low_pct: stock.pe_ttm 86.26 [jinling-ai, 2026-01-19], "
            "stock.earnings_growth_low_pct 30 [eastmoney-20260120, 2026-01-16]") in out.stdout


N = st.integers(1, 40) | st.sampled_from([0, 2000, 2.5])  # sometimes out of range or beyond the history
SERIES_LEAF = st.sampled_from(["close", "volume", "high", "low", "amount", "stock.close", "stock.kdj_j", "clse"])
FACT_LEAF = st.sampled_from(["stock.pe_ttm", "stock.earnings_growth_low_pct", "stock.price", "stock.kdj_j",
                             "sector.margin_targets", "3", "0", "-2.5", "stock.pe_tmm", "signal.overbought"])


@st.composite
def series_formula(draw: st.DrawFn, depth: int = 2) -> str:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(SERIES_LEAF)
    inner = draw(series_formula(depth - 1))
    n = draw(N)
    return draw(st.sampled_from([
        f"ma({inner}, {n})", f"ema({inner}, {n})", f"sma({inner}, {n}, 1)", f"highest({inner}, {n})",
        f"lowest({inner}, {n})", f"ret({inner}, {n})", f"ref({inner}, {n})", f"volatility({inner}, {n})",
        f"std({inner}, {n})", f"highest_days({inner}, {n})", f"{inner} / {draw(series_formula(depth - 1))}",
        f"{inner} - {draw(series_formula(depth - 1))}", f"kdj_j(9, 3, {n})", f"rsi({n})", f"macd_bar(12, 26, {n})",
        f"boll_upper({n}, 2)", f"abs({inner})", f"max({inner}, {n})"]))


@st.composite
def any_formula(draw: st.DrawFn) -> str:
    a = draw(series_formula() | FACT_LEAF)
    b = draw(series_formula() | FACT_LEAF)
    return draw(st.sampled_from([
        a, f"{a} / {b}", f"{a} * {b} + 1", f"percentile({draw(st.sampled_from(['stock.pe_ttm', 'stock.close']))}, "
        f"{draw(st.sampled_from(['sector', 'universe', 'industry']))})", f"age(stock.pe_ttm) + {a}",
        f"{a} > {b}", f"{a} > {b} and not {b} < 1", f"cross({a}, {b})", f"rank(stock.pe_ttm, sector) - {a}"]))


@settings(max_examples=200, deadline=None)
@given(any_formula(), st.sampled_from(["number", "bool"]))
def test_any_formula_text_is_a_value_or_a_located_problem(text: str, kind: str) -> None:
    """Generated formulas: checking never raises, every problem is located; a formula that checks can be
    evaluated on real prices and resolved facts without raising (a missing value is a reason)."""
    from engine.formulas import Deriver, check
    from engine.model import Catalog

    data = _BUNDLED.catalog.model_dump()
    data["namespaces"]["stock"]["x_test"] = {"type": kind, "label": "x", "family": "technicals", "formula": text}
    catalog = Catalog.model_validate(data)
    formulas, problems = check(catalog, lambda path: (Location("facts/catalog.yaml", 9, 5), 0))
    assert all(p.loc.file and p.loc.line and p.message for p in problems)
    f = formulas.items.get("stock.x_test")
    if f is None:
        assert problems
        return
    deriver = Deriver(formulas, _BUNDLED, None)
    for day in (dt.date(2025, 1, 6), dt.date(2026, 1, 20)):
        sf = symbol_facts(_BUNDLED, _NRE, ConflictPolicy(), day, deriver)
        assert ("stock.x_test" in sf.chosen) != ("stock.x_test" in sf.unavailable)  # a value, or why not


_BUNDLED = load_facts(FACTS)


def test_a_price_history_without_amounts_says_so(workdir: Path) -> None:
    _with_catalog(workdir, '    amount_5: {type: number, label: "Average amount", family: technicals, '
                           'formula: "avg(amount, 5)"}\n')
    sf = Workspace.open(workdir / "rules", workdir / "facts").symbol_facts("600111")
    assert "stock.amount_5" not in sf.chosen
    assert sf.unavailable["stock.amount_5"].startswith("the price history has no amount (turnover) on 2026-01-20 [")
