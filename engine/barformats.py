"""Daily-bar files as users have them: recognise the format by its header and read it into one form.

Formats (columns matched case-insensitively; other columns are ignored):
- csv: date, open, high, low, close, volume[, amount] (the shared folders and verdict's own files;
  Tushare units: volume in lots of 100 shares, amount in RMB thousands);
- tushare: a `daily` or `pro_bar` export, ts_code, trade_date (YYYYMMDD), open, high, low, close, vol[,
  amount], newest first (vol in lots, amount in RMB thousands);
- akshare: `stock_zh_a_hist`, 日期[, 股票代码], 开盘, 收盘, 最高, 最低, 成交量, 成交额[, 换手率] (成交量 in
  lots, 成交额 in RMB; headers with units such as `成交量(手)` are accepted). Its turnover rate is kept
  as a daily indicator.

Every row is checked; a bad row (unreadable, a non-numeric or non-positive price, negative volume, high
below open/close, low above them, a date given twice) is a problem with file:line, never dropped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from dataclasses import dataclass, field

from .errors import Problem, problem


@dataclass(frozen=True)
class Format:
    name: str
    columns: dict[str, tuple[str, ...]]  # field -> accepted headers (lower case)
    required: tuple[str, ...]
    amount_to_krmb: float  # factor from the file's amount unit to RMB thousands
    publisher: str


FORMATS = (
    Format("tushare", {"code": ("ts_code",), "date": ("trade_date",), "open": ("open",), "high": ("high",),
                       "low": ("low",), "close": ("close",), "volume": ("vol",), "amount": ("amount",)},
           ("date", "open", "high", "low", "close", "volume"), 1.0, "Tushare (daily / pro_bar export)"),
    Format("akshare", {"code": ("股票代码",), "date": ("日期",), "open": ("开盘",), "high": ("最高",),
                       "low": ("最低",), "close": ("收盘",), "volume": ("成交量", "成交量(手)"),
                       "amount": ("成交额", "成交额(元)"), "turnover_rate": ("换手率", "换手率(%)")},
           ("date", "open", "high", "low", "close", "volume"), 0.001, "akshare stock_zh_a_hist (Eastmoney)"),
    Format("csv", {"code": ("code", "symbol"), "date": ("date",), "open": ("open",), "high": ("high",),
                   "low": ("low",), "close": ("close",), "volume": ("volume",), "amount": ("amount",)},
           ("date", "open", "high", "low", "close", "volume"), 1.0, "daily bars (CSV)"),
)
BY_NAME = {f.name: f for f in FORMATS}


@dataclass(frozen=True)
class Row:
    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float  # lots
    amount: float | None  # RMB thousands
    line: int


@dataclass
class BarFile:
    shown: str
    format: Format | None
    code: str | None  # from a code column, when the file has one
    rows: list[Row] = field(default_factory=list)
    extra: dict[str, dict[dt.date, float]] = field(default_factory=dict)  # e.g. turnover_rate
    problems: list[Problem] = field(default_factory=list)


def detect(header: list[str]) -> tuple[Format | None, dict[str, int]]:
    cols = [h.strip().lstrip("\ufeff").lower() for h in header]
    for fmt in FORMATS:
        idx: dict[str, int] = {}
        for key, names in fmt.columns.items():
            hit = next((cols.index(n) for n in names if n in cols), None)
            if hit is not None:
                idx[key] = hit
        if all(k in idx for k in fmt.required):
            return fmt, idx
    return None, {}


def parse_date(text: str) -> dt.date:
    t = text.strip()
    if len(t) == 10 and t[4] == "-":
        return dt.date.fromisoformat(t)
    if t.endswith(".0"):  # 20110104.0, as some exports write numeric dates
        t = t[:-2]
    if len(t) == 8 and t.isdigit():
        return dt.date(int(t[:4]), int(t[4:6]), int(t[6:]))
    if len(t) >= 10 and t[4] in "-/":  # 2022/01/04, 2022-01-04 00:00:00
        return dt.date(int(t[:4]), int(t[5:7]), int(t[8:10]))
    raise ValueError(f"'{text}' is not a date")


def _number(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} '{text}' is not a finite number")
    return x


_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def code_of(text: str) -> str | None:
    m = _CODE.search(text)
    return m.group(1) if m else None


def read_bars(text: str, shown: str) -> BarFile:
    """Rows of one file in its own order, every bad row a problem with its line."""
    lines = text.splitlines()
    if not lines:
        return BarFile(shown, None, None, problems=[problem(shown, 1, 1, "bars-empty", "the file is empty.", "")])
    header = lines[0].split(",")
    fmt, idx = detect(header)
    if fmt is None:
        return BarFile(shown, None, None, problems=[problem(
            shown, 1, 1, "bars-format", f"unknown columns: {lines[0][:120]}.",
            "Give date, open, high, low, close, volume (or a Tushare daily/pro_bar or akshare stock_zh_a_hist "
            "export).")])
    out = BarFile(shown, fmt, None)
    i_date, i_open, i_high, i_low, i_close, i_vol = (idx[k] for k in ("date", "open", "high", "low", "close",
                                                                      "volume"))
    i_amount, i_code, i_turn = idx.get("amount"), idx.get("code"), idx.get("turnover_rate")
    width = max(idx.values()) + 1
    codes: set[str] = set()
    turnover: dict[dt.date, float] = {}
    seen: dict[dt.date, int] = {}
    scale = fmt.amount_to_krmb
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if '"' in line:
            import csv

            cells = next(csv.reader([line]))
        if len(cells) < width:
            out.problems.append(problem(shown, n, 1, "bars-row", f"unreadable row: {len(cells)} field(s), the "
                                        f"header has {len(header)}.", "Each row needs every column."))
            continue
        try:
            day = parse_date(cells[i_date])
            o, h, lo, c = (_number(cells[i], name) for i, name in ((i_open, "open"), (i_high, "high"),
                                                                   (i_low, "low"), (i_close, "close")))
            v = _number(cells[i_vol], "volume")
            a = cells[i_amount].strip() if i_amount is not None else ""
            amount = _number(a, "amount") * scale if a else None
        except ValueError as exc:
            out.problems.append(problem(shown, n, 1, "bars-row", f"unreadable row: {exc}.",
                                        "Dates as YYYY-MM-DD or YYYYMMDD, prices and volume as numbers."))
            continue
        bad = []
        if min(o, h, lo, c) <= 0:
            bad.append("prices must be positive")
        if v < 0:
            bad.append(f"volume {cells[i_vol].strip()} is negative")
        if h < max(o, c, lo):
            bad.append(f"high {h:g} is below open/close/low")
        if lo > min(o, c):
            bad.append(f"low {lo:g} is above open/close")
        if day in seen:
            bad.append(f"date {day} is given twice (also on line {seen[day]})")
        if bad:
            out.problems.append(problem(shown, n, 1, "bars-row", "; ".join(bad) + ".",
                                        "Correct the row from the data source; rows are never dropped silently."))
            continue
        seen[day] = n
        out.rows.append(Row(day, o, h, lo, c, v, amount, n))
        if i_code is not None:
            codes.add(cells[i_code].strip())
        if i_turn is not None and cells[i_turn].strip():
            with contextlib.suppress(ValueError):
                turnover[day] = _number(cells[i_turn], "turnover rate")
    if len(codes) > 1:
        out.problems.append(problem(shown, 2, 1, "bars-codes", f"the file mixes codes: {', '.join(sorted(codes))}.",
                                    "One symbol per file."))
    elif codes:
        out.code = next(iter(codes))
    if turnover:
        out.extra["turnover_rate"] = turnover
    return out


def exchange_of(code: str) -> tuple[str, str] | None:
    """(exchange, board) of an A-share code by its prefix; None for codes that are not A/B shares."""
    p3 = code[:3]
    if p3 in ("600", "601", "603", "605", "900"):
        return "SH", "main"
    if p3 in ("688", "689"):
        return "SH", "star"
    if p3 in ("000", "001", "002", "003", "004", "200"):
        return "SZ", "main"
    if p3 in ("300", "301", "302"):
        return "SZ", "chinext"
    if code[:2] in ("43", "83", "87", "88", "92"):
        return "BJ", "bse"
    return None


def canonical_symbol(text: str) -> str:
    """A symbol as the facts and the audit log write it: 600111 -> 600111.SH (the exchange by the code's
    prefix, as exchange_of says), 600111.sh -> 600111.SH; other text upper-cased (a name is the caller's
    to look up)."""
    t = text.strip()
    if len(t) == 6 and t.isdigit():
        known = exchange_of(t)
        return f"{t}.{known[0]}" if known else t
    return t.upper()


def symbol_of(stem: str, code_column: str | None) -> tuple[str, str, str] | str:
    """(code, exchange, board) from a file name such as 600111, 600111.SH, sh600111 and a code column;
    else a message saying why not."""
    code = code_of(code_column) if code_column else None
    from_name = code_of(stem)
    if code and from_name and code != from_name:
        return f"the file name says {from_name} but its code column says {code_column}"
    code = code or from_name
    if code is None:
        return "no 6-digit code in the file name or a code column"
    suffix = (code_column or "") + " " + stem
    m = re.search(r"(?i)(?<![a-z])(sh|ss|sz|bj)(?![a-z])", suffix)
    known = exchange_of(code)
    if known is None:
        return f"{code} is not an A-share code (SH 60x/688, SZ 00x/30x, BJ 4x/8x/92x)"
    exchange, board = known
    if m:
        stated = {"ss": "SH"}.get(m.group(1).lower(), m.group(1).upper())
        if stated != exchange:
            return f"{code} is a {exchange} code but the file names {stated}"
    return code, exchange, board
