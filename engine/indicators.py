"""Technical indicators in the Chinese charting convention (Tongdaxin / Tonghuashun / Eastmoney).

Pure functions over lists of floats, one value per bar (None before a value exists). Conventions,
each chosen to match what A-share users see on their terminals (see README, "Indicators"):
- EMA(X,N):   Y = (2X + (N-1)Y') / (N+1), seeded with the first value (TA-Lib compatibility mode 1);
- SMA(X,N,M): Y = (M*X + (N-M)*Y') / N, the Chinese weighted average, not a simple mean;
- MACD(12,26,9): DIF = EMA12 - EMA26, DEA = EMA(DIF,9), bar = 2 x (DIF - DEA);
- KDJ(9,3,3): RSV over the 9-bar low/high (fewer at the start), K and D = SMA(.,3,1) from 50,
  J = 3K - 2D; a bar whose 9-bar high equals its low (one-price limit days) has RSV 50 (neutral);
- RSI(N) = SMA(max(dC,0),N,1) / SMA(|dC|,N,1) x 100, Wilder smoothing seeded with the first change;
- BOLL(20,2): MA20 +/- 2 x sample standard deviation (ddof=1, as Eastmoney and Tonghuashun draw it).
EMA-based values depend on how much history precedes them: compute on the full series, then slice.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Series = list[float | None]


def ema(xs: Sequence[float], n: int) -> list[float]:
    out: list[float] = []
    for i, x in enumerate(xs):
        out.append(x if i == 0 else (2 * x + (n - 1) * out[-1]) / (n + 1))
    return out


def sma_cn(xs: Sequence[float], n: int, m: int, seed: float | None = None) -> list[float]:
    out: list[float] = []
    for i, x in enumerate(xs):
        prev = (seed if seed is not None else x) if i == 0 else out[-1]
        out.append((m * x + (n - m) * prev) / n)
    return out


def ma(xs: Sequence[float], n: int) -> Series:
    out: Series = []
    total = 0.0
    for i, x in enumerate(xs):
        total += x
        if i >= n:
            total -= xs[i - n]
        out.append(total / n if i >= n - 1 else None)
    return out


def std(xs: Sequence[float], n: int, ddof: int = 1) -> Series:
    out: Series = []
    for i in range(len(xs)):
        if i < n - 1:
            out.append(None)
            continue
        window = xs[i - n + 1:i + 1]
        mean = sum(window) / n
        out.append(math.sqrt(sum((w - mean) ** 2 for w in window) / (n - ddof)))
    return out


def llv(xs: Sequence[float], n: int) -> list[float]:
    return [min(xs[max(0, i - n + 1):i + 1]) for i in range(len(xs))]


def hhv(xs: Sequence[float], n: int) -> list[float]:
    return [max(xs[max(0, i - n + 1):i + 1]) for i in range(len(xs))]


def macd(close: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9
         ) -> tuple[list[float], list[float], list[float]]:
    f, s = ema(close, fast), ema(close, slow)
    dif = [a - b for a, b in zip(f, s, strict=True)]
    dea = ema(dif, signal)
    bar = [2 * (a - b) for a, b in zip(dif, dea, strict=True)]
    return dif, dea, bar


def kdj(high: Sequence[float], low: Sequence[float], close: Sequence[float], n: int = 9, m1: int = 3, m2: int = 3,
        seed: float = 50.0, flat_rsv: float = 50.0) -> tuple[list[float], list[float], list[float]]:
    lo, hi = llv(low, n), hhv(high, n)
    rsv = [flat_rsv if h == lo_ else (c - lo_) / (h - lo_) * 100 for c, lo_, h in zip(close, lo, hi, strict=True)]
    k = sma_cn(rsv, m1, 1, seed)
    d = sma_cn(k, m2, 1, seed)
    j = [3 * a - 2 * b for a, b in zip(k, d, strict=True)]
    return k, d, j


def rsi(close: Sequence[float], n: int) -> Series:
    if len(close) < 2:
        return [None] * len(close)
    diffs = [b - a for a, b in itertools.pairwise(close)]
    up = sma_cn([max(d, 0.0) for d in diffs], n, 1)
    total = sma_cn([abs(d) for d in diffs], n, 1)
    return [None] + [(u / t * 100 if t else 50.0) for u, t in zip(up, total, strict=True)]


def boll(close: Sequence[float], n: int = 20, k: float = 2.0, ddof: int = 1) -> tuple[Series, Series, Series]:
    mid, sd = ma(close, n), std(close, n, ddof)
    upper = [None if m is None or s is None else m + k * s for m, s in zip(mid, sd, strict=True)]
    lower = [None if m is None or s is None else m - k * s for m, s in zip(mid, sd, strict=True)]
    return mid, upper, lower


def crossed_above(a: Sequence[float | None], b: Sequence[float | None], i: int) -> bool:
    """a crosses above b on bar i (was <= on bar i-1, is > on bar i)."""
    if i < 1 or None in (a[i], b[i], a[i - 1], b[i - 1]):
        return False
    return a[i - 1] <= b[i - 1] and a[i] > b[i]  # type: ignore[operator]
