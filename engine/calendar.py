"""The exchange calendar: which days the Shanghai and Shenzhen exchanges traded.

A day missing from a price history is a suspension only if the exchange was open that day; a row on
a day it was closed is an error of the data. The bundled list (engine/data/trading_days_cn.txt) is a
copy of the one the akshare wheel ships, with its source named in the file; a facts directory may
carry a newer one as calendar.txt (same format: ISO dates, one a line, # comments), and the two are
joined. Beyond the last listed day nothing is known, and callers say so rather than guess.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

BUNDLED = Path(__file__).parent / "data" / "trading_days_cn.txt"
FACTS_FILE = "calendar.txt"


@dataclass(frozen=True)
class TradingCalendar:
    days: tuple[dt.date, ...]  # ascending
    sources: tuple[str, ...]
    _set: frozenset[dt.date] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def of(cls, days: set[dt.date], sources: tuple[str, ...]) -> TradingCalendar:
        return cls(tuple(sorted(days)), sources, frozenset(days))

    @property
    def first(self) -> dt.date:
        return self.days[0]

    @property
    def last(self) -> dt.date:
        return self.days[-1]

    def covers(self, day: dt.date) -> bool:
        return self.first <= day <= self.last

    def is_open(self, day: dt.date) -> bool:
        return day in self._set

    def closed_among(self, days: set[dt.date]) -> set[dt.date]:
        """Those of `days` within the calendar's span on which the exchange was closed."""
        out = days - self._set
        return {d for d in out if self.first <= d <= self.last} if out else out

    def between(self, first: dt.date, last: dt.date) -> tuple[dt.date, ...]:
        """Trading days from `first` to `last`, both included."""
        lo = bisect.bisect_left(self.days, first)
        hi = bisect.bisect_right(self.days, last)
        return self.days[lo:hi]

    def count(self, first: dt.date, last: dt.date) -> int:
        return bisect.bisect_right(self.days, last) - bisect.bisect_left(self.days, first)


def parse_days(text: str, shown: str) -> set[dt.date]:
    days: set[dt.date] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            days.add(dt.date.fromisoformat(line))
        except ValueError as exc:
            raise ValueError(f"{shown}:{n}: '{line}' is not a date (YYYY-MM-DD)") from exc
    return days


@cache
def _bundled() -> frozenset[dt.date]:
    return frozenset(parse_days(BUNDLED.read_text(encoding="utf-8"), str(BUNDLED.name)))


def exchange_calendar(facts_root: Path | None = None) -> TradingCalendar:
    """The bundled SSE/SZSE calendar, joined with FACTS_DIR/calendar.txt when there is one."""
    days = set(_bundled())
    sources: tuple[str, ...] = ("bundled SSE/SZSE calendar (akshare 1.19.5 file_fold/calendar.json)",)
    extra = facts_root / FACTS_FILE if facts_root is not None else None
    if facts_root is not None and extra is not None and extra.is_file():
        days |= parse_days(extra.read_text(encoding="utf-8"), f"{facts_root.name}/{FACTS_FILE}")
        sources += (f"{facts_root.name}/{FACTS_FILE}",)
    return TradingCalendar.of(days, sources)
