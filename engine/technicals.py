"""Technical facts derived from a symbol's price history, each with its provenance.

Indicators are computed on the whole series up to the evaluation date (never sliced first: EMA seeds
would differ) and read on its last bar. Every fact records the indicator, its parameters, the price
basis, the number of bars and the last date used, so the trace shows exactly how it was obtained.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import indicators as ind
from .model import FactValue, TechnicalParams
from .prices import PriceSeries

DERIVED_SOURCE = "prices"


@dataclass(frozen=True)
class Derived:
    path: str
    value: FactValue
    how: str


def derive(series: PriceSeries, p: TechnicalParams) -> tuple[list[Derived], list[str]]:
    """Technical facts on the series' last bar, and warnings about the series (short history)."""
    bars = series.bars
    if not bars:
        return [], []
    day = bars[-1].date
    n = len(bars)
    close = [b.close for b in bars]
    high = [b.high for b in bars]
    low = [b.low for b in bars]
    on = f"{n} {series.basis} daily bars to {day} ({', '.join(series.sources)})"
    out: list[Derived] = []
    warnings: list[str] = []
    if n < p.min_bars:
        warnings.append(f"{series.symbol}: only {n} bars of price history before {day}; EMA- and SMA-based "
                        f"indicators (MACD, KDJ, RSI) need at least {p.min_bars} to be reliable.")

    def add(name: str, value: float | bool | None, how: str, unit: str = "") -> None:
        if value is None:
            return
        v: float | bool = value if isinstance(value, bool) else round(float(value), 6)
        fv = FactValue(value=v, as_of=day, source=DERIVED_SOURCE, unit=unit, basis=series.basis, note=how)
        out.append(Derived(f"stock.{name}", fv, f"{how}, on {on}"))

    f, s, sig = p.macd
    dif, dea, bar = ind.macd(close, f, s, sig)
    add("close", close[-1], "last close", "RMB")
    add("macd_dif", dif[-1], f"MACD({f},{s},{sig}) DIF = EMA{f} - EMA{s} of close")
    add("macd_dea", dea[-1], f"MACD({f},{s},{sig}) DEA = EMA{sig} of DIF")
    add("macd_bar", bar[-1], f"MACD({f},{s},{sig}) bar = 2 x (DIF - DEA)")
    add("macd_dif_pct", dif[-1] / close[-1] * 100, f"MACD({f},{s},{sig}) DIF as % of close", "%")
    add("macd_near_zero_axis", abs(dif[-1]) / close[-1] * 100 < p.near_zero_axis_pct
        and abs(dea[-1]) / close[-1] * 100 < p.near_zero_axis_pct,
        f"|DIF| and |DEA| below {p.near_zero_axis_pct:g}% of close (MACD {f},{s},{sig})")
    add("macd_golden_cross", ind.crossed_above(dif, dea, n - 1), "DIF crossed above DEA on the last bar")
    add("macd_death_cross", ind.crossed_above(dea, dif, n - 1), "DIF crossed below DEA on the last bar")

    kn, m1, m2 = p.kdj
    k, d, j = ind.kdj(high, low, close, kn, m1, m2)
    kdj_how = f"KDJ({kn},{m1},{m2}), K and D seeded at 50, flat-window RSV 50"
    add("kdj_k", k[-1], kdj_how + ": K")
    add("kdj_d", d[-1], kdj_how + ": D")
    add("kdj_j", j[-1], kdj_how + ": J = 3K - 2D")
    w = min(p.recent_days, n)
    add("kdj_j_max_recent", max(j[-w:]), kdj_how + f": highest J of the last {w} bars")
    for period in p.rsi:
        add(f"rsi_{period}", ind.rsi(close, period)[-1], f"RSI({period}), Wilder smoothing")
    for period in p.ma:
        add(f"ma_{period}", ind.ma(close, period)[-1], f"MA({period}) of close", "RMB")
    mid, up, lo = ind.boll(close, p.boll_n, p.boll_k, p.boll_ddof)
    boll_how = f"BOLL({p.boll_n},{p.boll_k:g}), {'sample' if p.boll_ddof == 1 else 'population'} std"
    add("boll_mid", mid[-1], boll_how + ": mid = MA", "RMB")
    add("boll_upper", up[-1], boll_how + ": upper", "RMB")
    add("boll_lower", lo[-1], boll_how + ": lower", "RMB")
    year = [b for b in bars if b.date > day - dt.timedelta(days=365)]
    add("high_52w", max(b.high for b in year), "highest high of the last 52 weeks", "RMB")
    add("low_52w", min(b.low for b in year), "lowest low of the last 52 weeks", "RMB")
    rd = min(p.range_days, n)
    add("range_low", min(close[-rd:]), f"trading range: lowest close of the last {rd} bars", "RMB")
    add("range_high", max(close[-rd:]), f"trading range: highest close of the last {rd} bars", "RMB")
    ld = min(p.level_days, n)
    add("resistance", max(close[-ld:]), f"resistance: highest close of the last {ld} bars (swing high)", "RMB")
    add("support", min(close[-ld:]), f"support: lowest close of the last {ld} bars (swing low)", "RMB")
    return out, warnings
