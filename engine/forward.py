"""What followed each rating: the trading calendar, whether a stock could be rated on a day, and
forward returns, all measured after the rating date.

Conventions (README, "Backtesting a universe"): a rating formed on day D (from facts known on D and
bars up to D's close) is acted on at the open of the next trading day; its h-day forward return runs
from that open to the open h trading days later, on the exchange calendar shared by every stock and
the benchmark. A stock that does not trade on a day (a suspension, or it stopped trading for good) is
valued at its last close, as index providers value it: it is counted, never dropped. Nothing here
reads a price dated on or before D to measure what followed D.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Why a symbol has no rating on a day (the empty string: it has one).
RATED = ""
UNLISTED = "not listed yet"
NO_RECENT_PRICE = "no recent price"  # suspended, or stopped trading
SHORT_HISTORY = "short price history"
FAILED = "evaluation failed"
NO_PRICES = "no price history"
REASONS = (UNLISTED, NO_RECENT_PRICE, SHORT_HISTORY, NO_PRICES, FAILED)


def price_status(bar_dates: Sequence[dt.date], day: dt.date, max_age_days: int | None, min_bars: int) -> str:
    """Whether the prices allow a rating on `day`: listed, a bar within the freshness limit, enough history.

    The same test decides which stocks the backtest rates and which make up an equal-weight index.
    """
    if not bar_dates:
        return NO_PRICES
    n = bisect.bisect_right(bar_dates, day)
    if n == 0:
        return UNLISTED
    if max_age_days is not None and (day - bar_dates[n - 1]).days > max_age_days:
        return NO_RECENT_PRICE
    if n < min_bars:
        return SHORT_HISTORY
    return RATED


def trading_calendar(series: Iterable[Sequence[dt.date]], end: dt.date | None = None) -> list[dt.date]:
    """Every day on which any of the series traded, up to `end` (the last day the prices cover)."""
    days: set[dt.date] = set()
    for dates in series:
        days.update(dates)
    return sorted(d for d in days if end is None or d <= end)


@dataclass
class Aligned:
    """One series' price at the open of every calendar day: its open if it traded, else its last close.

    `None` before its first bar, and after its last bar when `carry` is off (an index that ends early
    has no level there; a stock that stops trading keeps its last close).
    """

    open_at: list[float | None]

    def forward(self, t0: int, h: int) -> float:
        """Return in % bought at the open after calendar day t0 and sold at the open h days later (NaN if
        the window runs past the data or the series has no price at either end)."""
        e, x = t0 + 1, t0 + 1 + h
        if x >= len(self.open_at):
            return math.nan
        p0, p1 = self.open_at[e], self.open_at[x]
        if p0 is None or p1 is None:
            return math.nan
        return (p1 / p0 - 1.0) * 100.0


def align(calendar: Sequence[dt.date], dates: Sequence[dt.date], opens: Sequence[float] | None,
          closes: Sequence[float], carry: bool = True) -> Aligned:
    """Prices on the calendar. Without opens (an index published as closes only) a day's open is the
    previous close."""
    out: list[float | None] = []
    j, n = 0, len(dates)
    last_close: float | None = None
    for day in calendar:
        while j < n and dates[j] < day:  # a bar on a day outside the calendar (past its end) is skipped
            last_close = closes[j]
            j += 1
        if j < n and dates[j] == day:
            out.append(opens[j] if opens is not None else (last_close if last_close is not None else None))
            last_close = closes[j]
            j += 1
        elif j >= n and not carry:
            out.append(None)
        else:
            out.append(last_close)
    return Aligned(out)


def forward_returns(a: Aligned, date_index: Sequence[int], horizons: Sequence[int]) -> dict[int, array[float]]:
    """Forward returns in % for each rating date (by its calendar index) and horizon; NaN where unknown."""
    return {h: array("d", (a.forward(t0, h) for t0 in date_index)) for h in horizons}


def rating_dates(calendar: Sequence[dt.date], start: dt.date, end: dt.date, every: int) -> list[dt.date]:
    """Every `every`-th trading day from the first one on or after `start`, up to `end`."""
    days = [d for d in calendar if start <= d <= end]
    return days[::max(every, 1)]
