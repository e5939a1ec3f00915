"""Cross-sectional derived facts (percentile/rank within the sector or the universe) against a hand
computation over a slice of the shared real universe: three Tushare industries, every stock of them
with a full 2022-2025 history, on one date.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil

import pytest
import yaml
from conftest import ROOT, RULES

from engine.pipeline import Workspace

MARKET = ROOT.parent / "shared" / "data" / "market"
UNIVERSE = MARKET / "ashare_universe_2022_2025"
INDUSTRIES = {"小金属": "small_metals", "银行": "banks", "半导体": "semiconductors"}
DAY = dt.date(2024, 6, 28)
STALE = "600036"  # its stated PE is dated too long before DAY: the fundamentals freshness limit drops it

CATALOG = {"catalog": "cross-test", "namespaces": {"stock": {
    "symbol": {"type": "text", "label": "Symbol", "family": "reference"},
    "name": {"type": "text", "label": "Name", "family": "reference"},
    "pe_ttm": {"type": "number", "label": "PE (TTM)", "family": "fundamentals"},
    "ret_20": {"type": "number", "label": "20-bar return", "unit": "%", "family": "technicals",
               "formula": "ret(close, 20)"},
    "ret_20_pct_in_sector": {"type": "number", "label": "20-bar return percentile in sector", "unit": "%",
                             "family": "technicals", "formula": "percentile(stock.ret_20, sector)"},
    "ret_20_rank": {"type": "number", "label": "20-bar return rank in the universe", "family": "technicals",
                    "formula": "rank(stock.ret_20, universe)"},
    "pe_ttm_pct_in_sector": {"type": "number", "label": "PE percentile in sector", "unit": "%",
                             "family": "fundamentals", "formula": "percentile(stock.pe_ttm, sector)"},
}}}
PACK = {"pack": "momentum", "rules": [
    {"id": "momentum.sector-leader", "title": "20-bar return in the top fifth of its sector",
     "when": "stock.ret_20_pct_in_sector >= 80", "then": {"signal": {"name": "sector_leader", "score": 1}}},
    {"id": "momentum.cheap-in-sector", "when": "stock.pe_ttm_pct_in_sector <= 20",
     "then": {"signal": {"name": "cheap_in_sector", "score": 1}}}]}


def _members() -> dict[str, str]:
    """code -> sector id, for every stock of the three industries with all 890 bars."""
    with (MARKET / "ashare_universe_2022_2025_stocklist.csv").open(encoding="utf-8") as f:
        listed = {r["symbol"]: INDUSTRIES[r["industry"]] for r in csv.DictReader(f) if r["industry"] in INDUSTRIES}
    out = {}
    for code, sector in sorted(listed.items()):
        path = UNIVERSE / f"{code}.csv"
        if path.exists() and sum(1 for _ in path.open()) == 891:
            out[code] = sector
    return out


def _closes(code: str) -> list[tuple[dt.date, float]]:
    with (UNIVERSE / f"{code}.csv").open() as f:
        return [(dt.date.fromisoformat(r["date"]), float(r["close"])) for r in csv.DictReader(f)]


def _pe(code: str) -> float:
    return float(int(code) % 37 + 5)  # synthetic, with ties (codes equal mod 37 share a PE)


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, str]]:
    if not UNIVERSE.is_dir():
        pytest.skip("the shared market data is not present")
    members = _members()
    root = tmp_path_factory.mktemp("cross")
    facts, rules = root / "facts", root / "rules"
    for d in (facts / "stocks", facts / "sectors", facts / "prices", rules):
        d.mkdir(parents=True)
    (facts / "catalog.yaml").write_text(yaml.safe_dump(CATALOG, allow_unicode=True))
    (facts / "sources.yaml").write_text(yaml.safe_dump({"sources": {
        "tushare": {"title": "Tushare qfq daily bars", "publisher": "VisionTrekker/StockTradebyZ"},
        "synthetic": {"title": "Test values", "publisher": "test"}}}))
    (facts / "base.yaml").write_text(f"as_of: {DAY}\n")
    for sector in set(members.values()):
        (facts / "sectors" / f"{sector}.yaml").write_text(yaml.safe_dump({"sector": sector, "name": sector}))
    for code, sector in members.items():
        shutil.copy(UNIVERSE / f"{code}.csv", facts / "prices" / f"{code}.csv")
        pe_day = DAY - dt.timedelta(days=200) if code == STALE else DAY
        (facts / "stocks" / f"{code}.yaml").write_text(yaml.safe_dump({
            "symbol": f"{code}.{'SH' if code.startswith('6') else 'SZ'}", "name": f"S{code}", "sector": sector,
            "exchange": "SH" if code.startswith("6") else "SZ",
            "prices": {"adjust": "qfq", "segments": [{"file": f"prices/{code}.csv", "source": "tushare"}]},
            "facts": {"pe_ttm": {"value": _pe(code), "as_of": pe_day.isoformat(), "source": "synthetic"}}}))
    shutil.copy(RULES / "policy.yaml", rules / "policy.yaml")
    (rules / "momentum.yaml").write_text(yaml.safe_dump(PACK, sort_keys=False))
    return Workspace.open(rules, facts), members


def _percentiles(values: dict[str, float]) -> dict[str, float]:
    """By hand: (rank - 1) / (n - 1) x 100, ranks from the lowest, ties at their average rank."""
    ordered = sorted(values.values())
    out = {}
    for code, v in values.items():
        first = ordered.index(v) + 1
        last = len(ordered) - ordered[::-1].index(v)
        out[code] = ((first + last) / 2 - 1) / (len(ordered) - 1) * 100
    return out


def test_sector_percentile_of_a_price_fact_matches_a_hand_computation(universe) -> None:  # type: ignore[no-untyped-def]
    ws, members = universe
    assert len(members) >= 80 and len(set(members.values())) == 3 and members[STALE] == "banks"
    returns = {}
    for code in members:
        rows = _closes(code)
        i = [d for d, _ in rows].index(DAY)
        returns[code] = round((rows[i][1] / rows[i - 20][1] - 1) * 100, 6)
    expected: dict[str, float] = {}
    for sector in set(members.values()):
        expected |= _percentiles({c: r for c, r in returns.items() if members[c] == sector})
    universe_rank = {c: p / 100 * (len(returns) - 1) + 1 for c, p in _percentiles(returns).items()}
    fired = set()
    for code in members:
        ev = ws.evaluate(code)
        facts = {f.path: f for f in ev.facts}
        assert facts["stock.ret_20"].value == pytest.approx(returns[code], abs=1e-6)
        assert facts["stock.ret_20_pct_in_sector"].value == pytest.approx(expected[code], abs=1e-4), code
        assert facts["stock.ret_20_rank"].value == pytest.approx(universe_rank[code], abs=1e-4), code
        if "momentum.sector-leader" in {f.rule for f in ev.fired}:
            fired.add(code)
        prov = facts["stock.ret_20_pct_in_sector"].provenance
        assert prov is not None and prov.kind == "cross"
        n = sum(1 for s in members.values() if s == members[code])
        assert f"of {n} symbols of sector {members[code]} with stock.ret_20 on {DAY}" in prov.inputs[-1].note
    assert fired == {c for c, p in expected.items() if p >= 80}  # the rule reads it through durable_rules
    assert 5 < len(fired) < len(members) / 2


def test_sector_percentile_of_a_stated_fact_leaves_out_stale_values(universe) -> None:  # type: ignore[no-untyped-def]
    ws, members = universe
    sector = members[STALE]
    fresh = {c: _pe(c) for c, s in members.items() if s == sector and c != STALE}
    expected = _percentiles(fresh)
    for code, pct in expected.items():
        sf = ws.symbol_facts(code)
        assert sf.chosen["stock.pe_ttm_pct_in_sector"].value.value == pytest.approx(pct, abs=1e-4), code
    stale = ws.symbol_facts(STALE)
    assert "stock.pe_ttm" not in stale.chosen
    assert "missing stock.pe_ttm" in stale.unavailable["stock.pe_ttm_pct_in_sector"]


def test_a_date_is_gathered_once_for_every_symbol(universe) -> None:  # type: ignore[no-untyped-def]
    ws, members = universe
    cross = ws.deriver.cross
    before = cross.sweeps
    for code in list(members)[:30]:
        ws.symbol_facts(code, DAY - dt.timedelta(days=7))
    assert cross.sweeps - before == len(members)  # one gather of the date for all symbols, not one per symbol


def test_a_backtest_prefetch_computes_each_symbol_once_for_all_dates(universe) -> None:  # type: ignore[no-untyped-def]
    ws, members = universe
    days = [DAY - dt.timedelta(days=7 * k) for k in range(1, 30)]
    d = ws.deriver
    built = d.cache.built
    d.cross.prefetch(days)
    assert d.cache.built - built == len(members)  # each symbol's series formulas once, however many dates
    sweeps = d.cross.sweeps
    for day in days[:5]:
        ws.symbol_facts(next(iter(members)), day)
    assert d.cross.sweeps == sweeps  # every date was already gathered


def test_a_rating_with_only_the_paths_it_reads_gets_its_cross_section(universe) -> None:  # type: ignore[no-untyped-def]
    from engine.derive import symbol_facts

    ws, members = universe
    code = next(iter(members))
    stock = ws.facts.find(code)
    full = ws.symbol_facts(code)
    path = "stock.ret_20_pct_in_sector"
    some = symbol_facts(ws.facts, stock, ws.book.policy, None, ws.deriver, paths=frozenset({path}))
    assert some.chosen[path].value.value == full.chosen[path].value.value
    assert set(some.chosen) == {path, "stock.ret_20"}
