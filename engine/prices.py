"""Daily OHLCV history: read, validate with line numbers, join segments on one price basis.

Bad rows are errors, never dropped: dates must ascend without repeats, high >= max(open, close),
low <= min(open, close), volume >= 0, and a trading day missing from the series must fall inside a
declared suspension. Segments from different fetches are joined only when they agree on their
overlap; adjusted prices from different anchors differ by a constant factor there and are refused.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
from array import array
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

from . import limits
from .calendar import TradingCalendar
from .errors import FactError, Problem, problem
from .model import PriceSeriesSpec
from .parsecache import ParseCache
from .readfile import read_file

REQUIRED = ("date", "open", "high", "low", "close", "volume")
OVERLAP_TOLERANCE = 0.0051  # two sources rounding to 0.01 can differ by one tick


class Bar(NamedTuple):
    """One trading day (a tuple: a universe holds millions, and a tuple is built ten times faster)."""

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass
class PriceSeries:
    symbol: str
    adjust: str
    bars: list[Bar]
    sources: list[str]
    files: list[str]
    anchor: dt.date | None
    suspensions: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    def until(self, day: dt.date) -> PriceSeries:
        """Only the bars on or before `day`: nothing later may reach an as-of evaluation."""
        return PriceSeries(self.symbol, self.adjust, [b for b in self.bars if b.date <= day], self.sources,
                           self.files, self.anchor, self.suspensions)

    def dates_after(self, day: dt.date) -> list[dt.date]:
        i = bisect.bisect_right(self.bars, day, key=lambda b: b.date)
        return [b.date for b in self.bars[i:]]

    def bar_on(self, day: dt.date) -> Bar | None:
        """The bar of that trading day, if the series has one."""
        i = bisect.bisect_left(self.bars, day, key=lambda b: b.date)
        return self.bars[i] if i < len(self.bars) and self.bars[i].date == day else None

    @property
    def basis(self) -> str:
        return self.adjust + (f" anchored {self.anchor}" if self.anchor and self.adjust != "raw" else "")


def _date(text: str) -> dt.date:
    if len(text) == 10 and text[4] == "-":
        return dt.date.fromisoformat(text)
    text = text.strip()
    if len(text) == 8 and text.isdigit():
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return dt.date.fromisoformat(text)


def read_csv(path: Path, shown: str, problems: list[Problem], cache: ParseCache | None = None
             ) -> list[tuple[int, Bar]]:
    """Rows of one file with their line numbers; every bad row becomes a problem. A file that parsed
    without problems before (same bytes) comes from the parse cache."""
    content = read_file(path, shown, problems, limits.MAX_CSV_BYTES)
    if content is None:
        return []
    if cache is not None:
        packed = cache.parse(content, _clean_rows)
        if isinstance(packed, tuple) and len(packed) == 7 and all(isinstance(p, bytes) for p in packed):
            return _unpack(packed)
    return parse_rows(content.decode("utf-8", errors="replace"), shown, problems)


def _clean_rows(text: str) -> tuple[bytes, ...] | None:
    """A file with no problem, packed by column (what the cache keeps: a few bytes objects load at memory
    speed, where millions of pickled tuples took seconds), else None."""
    problems: list[Problem] = []
    rows = parse_rows(text, "", problems)
    if problems:
        return None
    lines = array("i", (n for n, _ in rows))
    days = array("i", (b.date.toordinal() for _, b in rows))
    bars = [b for _, b in rows]
    cols = [array("d", (b.open for b in bars)), array("d", (b.high for b in bars)), array("d", (b.low for b in bars)),
            array("d", (b.close for b in bars)), array("d", (b.volume for b in bars))]
    return (lines.tobytes(), days.tobytes(), *(c.tobytes() for c in cols))


def _unpack(packed: tuple[bytes, ...]) -> list[tuple[int, Bar]]:
    lines, days = array("i"), array("i")
    lines.frombytes(packed[0])
    days.frombytes(packed[1])
    cols = []
    for raw in packed[2:]:
        c = array("d")
        c.frombytes(raw)
        cols.append(c)
    # tuple.__new__ builds each Bar in C (calling Bar() runs a Python-level __new__ per bar: 10x slower)
    bars = map(tuple.__new__, repeat(Bar), zip(map(dt.date.fromordinal, days), *cols, strict=True))
    return list(zip(lines, bars, strict=True))


def parse_rows(text: str, shown: str, problems: list[Problem]) -> list[tuple[int, Bar]]:
    out: list[tuple[int, Bar]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    cols = [c.strip().lower() for c in next(reader, [])]
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        problems.append(problem(shown, 1, 1, "price-columns", f"missing column(s): {', '.join(missing)}.",
                                f"A price file needs the columns {', '.join(REQUIRED)}."))
        return out
    i_date, i_open, i_high, i_low, i_close, i_vol = (cols.index(c) for c in REQUIRED)
    prev: dt.date | None = None
    for lineno, row in enumerate(reader, start=2):
        try:
            bar = Bar(_date(row[i_date]), float(row[i_open]), float(row[i_high]), float(row[i_low]),
                      float(row[i_close]), float(row[i_vol]))
        except (ValueError, IndexError) as exc:
            problems.append(problem(shown, lineno, 1, "price-row", f"unreadable row ({exc}).",
                                    "Dates as YYYY-MM-DD, prices and volume as numbers."))
            continue
        bad = _out_of_range(bar)
        if bad:
            problems.append(problem(shown, lineno, 1, "price-row", "; ".join(bad) + ".",
                                    "Correct the row from the data source; rows are never dropped silently."))
            continue
        if prev is not None and bar.date <= prev:
            bad.append(f"date {bar.date} is not after the previous row's {prev}")
        if bar.high < max(bar.open, bar.close) or bar.high < bar.low:
            bad.append(f"high {bar.high} is below open/close/low")
        if bar.low > min(bar.open, bar.close):
            bad.append(f"low {bar.low} is above open/close")
        if bad:
            problems.append(problem(shown, lineno, 1, "price-row", "; ".join(bad) + ".",
                                    "Correct the row from the data source; rows are never dropped silently."))
            continue
        prev = bar.date
        out.append((lineno, bar))
    return out


def _out_of_range(bar: Bar) -> list[str]:
    """Non-finite, negative or absurd numbers (limits.py): checked before any comparison, which NaN defeats."""
    bad = []
    for name in ("open", "high", "low", "close"):
        v = getattr(bar, name)
        why = limits.number_problem(v, limits.MIN_PRICE, limits.MAX_PRICE)
        if why:
            bad.append(f"{name} {why} for a price")
    why = limits.number_problem(bar.volume, 0, limits.MAX_VOLUME)
    if why:
        bad.append(f"volume {why}")
    return bad


def load_series(symbol: str, spec: PriceSeriesSpec, root: Path, shown_root: str, where: str,
                cache: ParseCache | None = None) -> PriceSeries:
    """Join the segments of one symbol's series; raise FactError with every problem found."""
    problems: list[Problem] = []
    merged: dict[dt.date, Bar] = {}
    if len(spec.segments) == 1:  # one file, ascending by its own check: nothing to join (most of a universe)
        seg = spec.segments[0]
        rows = read_csv(root / seg.file, f"{shown_root}/{seg.file}", problems, cache)
        if problems:
            raise FactError(problems)
        return PriceSeries(symbol, spec.adjust, [b for _, b in rows], [seg.source], [f"{shown_root}/{seg.file}"],
                           seg.anchor, list(spec.suspensions))
    for seg in spec.segments:
        shown = f"{shown_root}/{seg.file}"
        rows = read_csv(root / seg.file, shown, problems, cache)
        ratios = []
        for _lineno, bar in rows:
            old = merged.get(bar.date)
            if old is None:
                merged[bar.date] = bar
                continue
            if abs(old.close - bar.close) > OVERLAP_TOLERANCE:
                ratios.append(bar.close / old.close)
        if ratios:
            problems.append(problem(shown, 1, 1, "price-basis",
                                    f"this segment disagrees with the one before it on {len(ratios)} overlapping "
                                    f"day(s) (close ratio {min(ratios):.5f}..{max(ratios):.5f}): the two were "
                                    "adjusted on different bases (a qfq anchor across an ex-dividend date).",
                                    "Use segments fetched on the same basis, or only one of them; series of "
                                    f"different basis are never mixed ({where})."))
    if problems:
        raise FactError(problems)
    bars = [merged[d] for d in sorted(merged)]
    anchors = [s.anchor for s in spec.segments if s.anchor]
    return PriceSeries(symbol, spec.adjust, bars, [s.source for s in spec.segments],
                       [f"{shown_root}/{s.file}" for s in spec.segments], max(anchors) if anchors else None,
                       list(spec.suspensions))


def check_gaps(series: PriceSeries, calendar: TradingCalendar, shown: str,
               beyond: frozenset[dt.date] = frozenset()) -> list[Problem]:
    """Rows on days the exchange was closed, and trading days missing from the series outside its declared
    suspensions. Past the calendar's last day, `beyond` (the dates other series have there) stands in."""
    if not series.bars:
        return []
    have = {b.date for b in series.bars}
    first, last = series.bars[0].date, series.bars[-1].date
    out: list[Problem] = []
    closed = sorted(calendar.closed_among(have))
    if closed:
        out.append(problem(shown, 0, 0, "price-closed-day",
                           f"{series.symbol}: {len(closed)} row(s) on day(s) the exchange was closed: "
                           f"{_sample(closed)} ({', '.join(series.files)}).",
                           "Remove the rows (they are not trading days by the exchange calendar), or extend the "
                           "calendar with calendar.txt in the facts directory if it is out of date."))
    expected = set(calendar.between(first, min(last, calendar.last)))
    if last > calendar.last:
        expected |= {d for d in beyond if calendar.last < d <= last}
    absent = expected - have
    missing = sorted(d for d in absent if not any(a <= d <= b for a, b in series.suspensions)) if absent else []
    if missing:
        out.append(problem(shown, 0, 0, "price-gap",
                           f"{series.symbol}: {len(missing)} trading day(s) missing: {_sample(missing)}.",
                           "Declare suspensions under `prices: suspensions: [[first, last]]` (verdict data import "
                           "records them), or complete the data; gaps are never filled in."))
    return out


def _sample(days: list[dt.date]) -> str:
    return ", ".join(str(d) for d in days[:5]) + (" ..." if len(days) > 5 else "")
