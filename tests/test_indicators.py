"""Indicators against an independent implementation (stockstats) on the bundled real prices, and
against stockstats' own published test values on its own test data.

Deliberate convention differences, converted before comparing:
- MACD bar: ours is 2 x (DIF - DEA) as Chinese terminals draw it; stockstats' macdh is DIF - DEA.
- EMA seeding: ours is recursive from the first close (TA-Lib compatibility mode 1, as Tongdaxin);
  stockstats uses pandas' bias-corrected ewm(adjust=True). The two converge geometrically, so values
  are compared after a warm-up of 500 bars, where they agree far below 1e-6.
- RSI: ours seeds Wilder smoothing with the first change; stockstats adds a zero change on bar 0 and
  uses adjust=True. Same convergence argument.
- KDJ RSV on a flat 9-bar window (high == low): ours 50 (neutral), stockstats 0. No such window occurs
  in the compared data; test_flat_window_rsv_is_neutral pins ours.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import FACTS, ROOT, check_golden, need_shared

from engine import indicators as ind
from engine.load import load_facts

pd = pytest.importorskip("pandas")
stockstats = pytest.importorskip("stockstats")
SHARED = ROOT.parent / "shared" / "data" / "market" / "stockstats_testdata"  # need_shared() in CI
WARM_UP = 500  # (1 - 1/24)^500 < 1e-9: seeds no longer matter for RSI24, the slowest


def _series():  # type: ignore[no-untyped-def]
    base = load_facts(FACTS)
    return {s.file.symbol: s.series for s in base.stocks.values() if s.series}


def _close_enough(a: float, b: float, rel: float = 1e-6) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


@pytest.mark.parametrize("symbol", ["600111.SH", "000831.SZ", "300224.SZ", "300127.SZ"])
def test_indicators_agree_with_stockstats_on_real_prices(symbol: str) -> None:
    series = _series()[symbol]
    bars = series.bars
    close = [b.close for b in bars]
    high = [b.high for b in bars]
    low = [b.low for b in bars]
    df = stockstats.wrap(pd.DataFrame({"open": [b.open for b in bars], "high": high, "low": low, "close": close,
                                       "volume": [b.volume for b in bars]}))
    dif, dea, bar = ind.macd(close)
    k, d, j = ind.kdj(high, low, close)
    mid, up, lo = ind.boll(close)
    rsi = {n: ind.rsi(close, n) for n in (6, 12, 24)}
    ma20 = ind.ma(close, 20)
    ref = {name: df[name].tolist() for name in ("macd", "macds", "macdh", "kdjk", "kdjd", "kdjj", "boll", "boll_ub",
                                                "boll_lb", "rsi_6", "rsi_12", "rsi_24", "close_20_sma")}
    assert len(bars) > WARM_UP + 100
    checked = 0
    for i in range(WARM_UP, len(bars)):
        pairs = [("DIF", dif[i], ref["macd"][i]), ("DEA", dea[i], ref["macds"][i]),
                 ("bar", bar[i], 2 * ref["macdh"][i]), ("K", k[i], ref["kdjk"][i]), ("D", d[i], ref["kdjd"][i]),
                 ("J", j[i], ref["kdjj"][i]), ("BOLL", mid[i], ref["boll"][i]), ("UB", up[i], ref["boll_ub"][i]),
                 ("LB", lo[i], ref["boll_lb"][i]), ("MA20", ma20[i], ref["close_20_sma"][i])] + [
                     (f"RSI{n}", rsi[n][i], ref[f"rsi_{n}"][i]) for n in (6, 12, 24)]
        for name, ours, theirs in pairs:
            assert ours is not None and _close_enough(ours, theirs), (symbol, name, bars[i].date, ours, theirs)
            checked += 1
    assert checked > 5000


def _stockstats_csv(name: str):  # type: ignore[no-untyped-def]
    path = need_shared(SHARED / name)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        r = {k.lower(): v for k, v in r.items()}
        out.append((int(float(r["date"])), float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"])))
    return out


def _slice(rows, start: int, end: int):  # type: ignore[no-untyped-def]
    return [r for r in rows if start <= r[0] <= end]


def test_reproduces_stockstats_published_kdj() -> None:
    rows = _slice(_stockstats_csv("987654.csv"), 20110101, 20110120)
    k, d, j = ind.kdj([r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows])
    at = {r[0]: i for i, r in enumerate(rows)}
    i = at[20110104]
    assert (round(k[i], 4), round(d[i], 4), round(j[i], 4)) == pytest.approx((60.5263, 53.5087, 74.5614), abs=1e-3)
    k3, d3, j3 = ind.kdj([r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows], n=3)
    i = at[20110120]  # stockstats' test_column_kdjk: kdjk_3, a 3-bar RSV window
    assert (k3[i], d3[i], j3[i]) == pytest.approx((31.2133, 43.1347, 7.37), abs=1e-3)


def test_reproduces_stockstats_published_boll() -> None:
    rows = _slice(_stockstats_csv("987654.csv"), 20140930, 20141211)
    mid, up, lo = ind.boll([r[4] for r in rows])
    i = [r[0] for r in rows].index(20141103)
    assert (mid[i], up[i], lo[i]) == pytest.approx((9.8035, 10.1310, 9.4759), abs=1e-3)


def test_reproduces_stockstats_published_rsi() -> None:
    rows = _stockstats_csv("002032.csv")
    close = [r[4] for r in rows]
    i = [r[0] for r in rows].index(20160817)
    got = tuple(ind.rsi(close, n)[i] for n in (6, 12, 24))
    assert got == pytest.approx((71.3114, 63.1125, 61.3064), abs=1e-3)


def test_conventions() -> None:
    assert ind.ema([10.0, 20.0], 3) == [10.0, 15.0]  # seeded with the first value, alpha 2/(N+1)
    assert ind.sma_cn([30.0], 3, 1, seed=60.0) == [50.0]  # (1 x 30 + 2 x 60) / 3
    dif, dea, bar = ind.macd([10.0, 11.0, 12.0, 11.5])
    assert bar[-1] == pytest.approx(2 * (dif[-1] - dea[-1]))
    _mid, up, _ = ind.boll([1.0, 2.0, 3.0], n=3, k=1, ddof=1)
    assert up[-1] == pytest.approx(3.0)  # sample std of 1,2,3 is 1
    assert ind.boll([1.0, 2.0, 3.0], n=3, k=1, ddof=0)[1][-1] == pytest.approx(2 + (2 / 3) ** 0.5)


def test_kdj_k_and_d_start_from_50() -> None:
    """The seed of 50 shows on the first bars (later it fades out geometrically, so the real-price
    comparison after warm-up cannot see it): RSV 75 -> K = (75 + 2 x 50) / 3, D = (K + 2 x 50) / 3."""
    k, d, j = ind.kdj([10.0, 11.0], [8.0, 9.0], [9.5, 10.5])
    assert (k[0], d[0]) == pytest.approx((175 / 3, 475 / 9))
    assert j[0] == pytest.approx(3 * 175 / 3 - 2 * 475 / 9)
    rsv1 = (10.5 - 8.0) / (11.0 - 8.0) * 100  # the 9-bar window holds both bars
    assert k[1] == pytest.approx((rsv1 + 2 * k[0]) / 3) and d[1] == pytest.approx((k[1] + 2 * d[0]) / 3)


def test_series_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        ind.kdj([10.0, 11.0], [8.0, 9.0], [9.5])
    with pytest.raises(ValueError):
        ind.kdj([10.0], [8.0, 9.0], [9.5, 10.0])


def test_flat_window_rsv_is_neutral() -> None:
    # a one-price limit day carried over a whole window (suspension, limit-down): RSV 0/0 -> 50
    k, _d, j = ind.kdj([5.0] * 12, [5.0] * 12, [5.0] * 12)
    assert k[-1] == pytest.approx(50.0) and j[-1] == pytest.approx(50.0)


GOLDEN = Path(__file__).parent / "golden" / "technicals_2026-01-19.json"
REPORT_PRICE_DAY = dt.date(2026, 1, 19)  # the close the report quotes (51.07); it was published the day after


def test_report_date_values_are_frozen(ws, update_golden) -> None:
    """Regression: every derived technical fact of the five stocks on the report's date.

    Produced by: python -m pytest tests/test_indicators.py --update-golden
    """
    out = {}
    for symbol in ws.symbols():
        sf = ws.symbol_facts(symbol, as_of=REPORT_PRICE_DAY)
        out[symbol] = {p: c.value.value for p, c in sorted(sf.chosen.items())
                       if c.value.source == "prices"}
    check_golden(GOLDEN, json.dumps(out, indent=1, sort_keys=True) + "\n", update_golden)
    nre = out["600111.SH"]
    assert nre["stock.close"] == 51.07 and nre["stock.kdj_j"] == pytest.approx(58.75, abs=0.01)
    assert nre["stock.range_low"] == 48.15 and nre["stock.range_high"] == 52.48


def test_moving_average_starts_after_a_full_window() -> None:
    assert ind.ma([1.0, 2.0, 3.0, 4.0], 3) == [None, None, 2.0, 3.0]
    assert ind.ma([1.0, 2.0], 3) == [None, None]


def test_rsi_on_the_shortest_and_on_flat_series() -> None:
    assert ind.rsi([10.0], 6) == [None]
    up = ind.rsi([10.0, 11.0], 6)  # two closes: one change, all of it up
    assert up[0] is None and up[1] == pytest.approx(100.0)
    assert ind.rsi([5.0, 5.0, 5.0], 6) == [None, 50.0, 50.0]  # no movement at all: neutral, not 0/0


def test_a_cross_is_seen_from_the_second_bar_on_and_only_against_the_bar_before() -> None:
    dif, dea = [1.0, 3.0, 1.0, 0.5, 2.0], [2.0, 2.0, 2.0, 1.0, 1.0]
    assert ind.crossed_above(dif, dea, 1) is True  # bar 1: was below on bar 0, above now
    assert ind.crossed_above(dif, dea, 0) is False  # nothing before bar 0
    assert ind.crossed_above(dif, dea, 2) is False  # falls below
    assert ind.crossed_above(dif, dea, 4) is True  # bar 3 below, bar 4 above (bar 2 says nothing)
    assert ind.crossed_above([1.0, None, 3.0], [2.0, 2.0, 2.0], 2) is False  # an unknown bar: no cross
