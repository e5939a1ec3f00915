"""Daily fact series: per-symbol CSV tables of dated facts (PE, PB, market value, turnover...).

A stock file names them under `indicators:`; each row is a trading day, each column a fact of the
catalog's stock namespace, in normalised units:

    date,pe_ttm,pb,ps_ttm,dv_ttm,turnover_rate,total_mv,circ_mv
    2026-01-20,86.1,9.2,12.3,0.35,2.1,1793.7,1793.2

pe_ttm, pb, ps_ttm in times; dv_ttm and turnover_rate in %; total_mv and circ_mv in RMB 100 million
(亿元; Tushare's daily_basic gives RMB 10 thousand, akshare RMB: both are converted on import). An
empty cell means not known that day. As of D a column's value is its latest row on or before D, known
on that row's trading day (the exchange publishes it after the close). Files are read on first use
and kept, so a universe of thousands loads without reading any of them; a bad row is a problem with
file:line when the symbol is evaluated. A table with a PE (TTM) column also gives the stock's own
history to value it against: `pe_hist_avg`, the average of its last three years of daily PE (TTM).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import FactError, Problem, problem
from .fsutil import write_if_changed
from .model import FactValue

COLUMNS = ("pe_ttm", "pe", "pb", "ps_ttm", "ps", "dv_ttm", "dv_ratio", "turnover_rate", "volume_ratio",
           "total_mv", "circ_mv")
UNITS = {"total_mv": "RMB 100m", "circ_mv": "RMB 100m", "turnover_rate": "%", "dv_ttm": "%", "dv_ratio": "%"}


# The stock's own history of PE (TTM): three years of daily rows, at least one year's worth.
PE_HISTORY = "pe_hist_avg"
HISTORY_DAYS = 1095  # three years: a cycle's worth, as the report's "historical average" is read
HISTORY_MIN_ROWS = 250  # a year of trading days; fewer is no history to compare with


@dataclass
class DailySeries:
    source: str
    file: str  # relative to the facts directory
    columns: dict[str, tuple[list[dt.date], list[float]]]  # fact name -> (dates, values) of rows with a value
    history: bool = False  # derive pe_hist_avg from the pe_ttm column (when the catalog declares it)

    def latest(self, day: dt.date) -> dict[str, tuple[dt.date, float]]:
        out = {}
        for name, (dates, values) in self.columns.items():
            i = bisect.bisect_right(dates, day) - 1
            if i >= 0:
                out[name] = (dates[i], values[i])
        return out

    def facts(self, day: dt.date) -> dict[str, FactValue]:
        """Each column's latest value on or before `day`, as a sourced fact known on its row's day; and, with
        a PE (TTM) column, the stock's own historical average PE (TTM) up to that row."""
        out = {name: FactValue(value=v, as_of=d, source=self.source, unit=UNITS.get(name, ""),
                               note=f"daily indicator table {self.file}")
               for name, (d, v) in self.latest(day).items()}
        if self.history:
            avg = self.pe_history(day)
            if avg is not None:
                out[PE_HISTORY] = avg
        return out

    def pe_history(self, day: dt.date) -> FactValue | None:
        """The average PE (TTM) of the HISTORY_DAYS up to the latest row on or before `day`, over the rows
        with a positive PE (a loss has none), when there are at least HISTORY_MIN_ROWS of them: what
        "PE against its own history" compares with (valuation.pe-stretched-vs-history)."""
        col = self.columns.get("pe_ttm")
        if col is None:
            return None
        dates, values = col
        end = bisect.bisect_right(dates, day)
        if end == 0:
            return None
        last = dates[end - 1]
        start = bisect.bisect_right(dates, last - dt.timedelta(days=HISTORY_DAYS), 0, end)
        window = [v for v in values[start:end] if v > 0]
        if len(window) < HISTORY_MIN_ROWS:
            return None
        return FactValue(value=round(math.fsum(window) / len(window), 4), as_of=last, source=self.source, unit="x",
                         note=f"average of {len(window)} daily PE (TTM) values from {dates[start]} to {last} "
                              f"(positive ones: a loss has no PE) in {self.file}")


def parse(text: str, shown: str, source: str, file: str, known: set[str] | None = None) -> DailySeries:
    """Read one table; every bad row or unknown column is a problem (raised together as FactError)."""
    problems: list[Problem] = []
    lines = text.splitlines()
    head = [h.strip() for h in lines[0].split(",")] if lines else []
    if not head or head[0] != "date":
        raise FactError([problem(shown, 1, 1, "indicators-columns", "the first column must be `date`.",
                                 "Write it with verdict data import, or as date,pe_ttm,pb,... (see the README).")])
    names = head[1:]
    for i, n in enumerate(names, start=2):
        if known is not None and n not in known:
            problems.append(problem(shown, 1, i, "indicators-unknown", f"column '{n}' is not a stock fact of the "
                                    "catalog.", "Declare it in facts/catalog.yaml or drop the column."))
    cols: dict[str, tuple[list[dt.date], list[float]]] = {n: ([], []) for n in names}
    prev: dt.date | None = None
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            day = dt.date.fromisoformat(cells[0].strip())
            if len(cells) != len(head):
                raise ValueError(f"{len(cells)} fields, the header has {len(head)}")
            values = [None if not c.strip() else float(c) for c in cells[1:]]
            if any(v is not None and not math.isfinite(v) for v in values):
                raise ValueError("a value is not finite")
        except ValueError as exc:
            problems.append(problem(shown, lineno, 1, "indicators-row", f"unreadable row ({exc}).",
                                    "Dates as YYYY-MM-DD, values as numbers, empty where unknown."))
            continue
        if prev is not None and day <= prev:
            problems.append(problem(shown, lineno, 1, "indicators-row", f"date {day} is not after {prev}.",
                                    "Rows ascend by date, one per day."))
            continue
        prev = day
        for n, v in zip(names, values, strict=True):
            if v is not None:
                cols[n][0].append(day)
                cols[n][1].append(v)
    if problems:
        raise FactError(problems)
    return DailySeries(source, file, {n: c for n, c in cols.items() if c[0]})


def load(root: Path, shown_root: str, file: str, source: str, known: set[str] | None,
         files: dict[str, bytes] | None = None) -> DailySeries:
    path = root / file
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise FactError([problem(f"{shown_root}/{file}", 0, 0, "missing-file",
                                 f"cannot read indicator table: {exc.strerror}.",
                                 "Fix the `file:` of this entry under `indicators:`.")]) from None
    if files is not None:
        files[file] = content  # part of what the evaluation read (audit snapshots)
    table = parse(content.decode("utf-8", errors="replace"), f"{shown_root}/{file}", source, file, known)
    table.history = known is None or PE_HISTORY in known
    return table


# ----------------------------------------------------------------------------------- writing (import)


def _fmt(x: float) -> str:
    text = repr(round(x, 6))
    return text[:-2] if text.endswith(".0") else text


def render(columns: dict[str, dict[dt.date, float]]) -> bytes:
    names = [c for c in COLUMNS if c in columns] + sorted(c for c in columns if c not in COLUMNS)
    days = sorted({d for c in columns.values() for d in c})
    out = ["date," + ",".join(names) + "\n"]
    for d in days:
        out.append(d.isoformat() + "," + ",".join(_fmt(columns[n][d]) if d in columns[n] else "" for n in names)
                   + "\n")
    return "".join(out).encode()


def merge_file(path: Path, new: dict[str, dict[dt.date, float]]) -> int:
    """Add columns/rows to a table written before (new values win); returns the number of rows."""
    merged: dict[str, dict[dt.date, float]] = {}
    if path.is_file():
        old = parse(path.read_text(encoding="utf-8"), str(path), "", "")
        for name, (dates, values) in old.columns.items():
            merged[name] = dict(zip(dates, values, strict=True))
    for name, vals in new.items():
        merged.setdefault(name, {}).update(vals)
    write_if_changed(path, render(merged))
    return len({d for c in merged.values() for d in c})
