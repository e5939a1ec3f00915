"""`verdict data pull`: daily bars and indicators fetched through akshare, then imported like any folder.

akshare is an optional extra (`pip install 'verdict[akshare]'`): it brings pandas, lxml, curl_cffi and a
JavaScript engine, which the core install does without. Nothing here is imported until the command runs.

What is fetched, per code (functions and columns as akshare 1.19.5 defines them):
- `stock_zh_a_hist(symbol, "daily", start, end, adjust)`: 日期, 股票代码, 开盘, 收盘, 最高, 最低, 成交量
  (lots), 成交额 (RMB), 振幅, 涨跌幅, 涨跌额, 换手率 (%): written as an akshare-format CSV into a staging
  folder and imported by engine/dataimport.py (the turnover rate becomes a daily indicator);
- `stock_value_em(symbol)`: 数据日期, 当日收盘价, 当日涨跌幅, 总市值, 流通市值 (RMB), 总股本, 流通股本,
  PE(TTM), PE(静), 市净率, PEG值, 市现率, 市销率: pe_ttm, pe, pb, ps_ttm, total_mv and circ_mv (RMB 100m) of
  the daily indicator table;
- names: `stock_info_a_code_name()` (code, name) when no names list is given;
- the exchange calendar: `tool_trade_date_hist_sina()` (trade_date) into FACTS_DIR/calendar.txt.

The fetcher is a parameter, so tests give recorded frames of these shapes and never reach the network.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol, cast

from .errors import LookupFailure, problem

VALUE_COLUMNS = {  # stock_value_em column -> (fact, factor to the catalog's unit)
    "PE(TTM)": ("pe_ttm", 1.0), "PE(静)": ("pe", 1.0), "市净率": ("pb", 1.0), "市销率": ("ps_ttm", 1.0),
    "总市值": ("total_mv", 1e-8), "流通市值": ("circ_mv", 1e-8),  # RMB -> RMB 100 million
}
HIST_COLUMNS = ["日期", "股票代码", "开盘", "收盘", "最高", "最低", "成交量", "成交额", "振幅", "涨跌幅", "涨跌额",
                "换手率"]


class Fetcher(Protocol):
    """The akshare functions pull uses (the module itself, or recorded frames in tests)."""

    def stock_zh_a_hist(self, symbol: str, period: str, start_date: str, end_date: str, adjust: str) -> Any: ...

    def stock_value_em(self, symbol: str) -> Any: ...

    def stock_info_a_code_name(self) -> Any: ...

    def tool_trade_date_hist_sina(self) -> Any: ...


def akshare_fetcher() -> Fetcher:
    try:
        import akshare  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise LookupFailure([problem("verdict data pull", 0, 0, "no-akshare",
                                     "pulling data needs the akshare package, which is not installed.",
                                     "Install the extra: pip install 'verdict[akshare]' (or import a folder of "
                                     "downloaded files with verdict data import).")]) from None
    return cast(Fetcher, akshare)  # the module itself: its functions are the protocol's


def _code(text: str) -> str:
    code = text.strip().partition(".")[0][-6:]
    if not (len(code) == 6 and code.isdigit()):
        raise LookupFailure([problem("verdict data pull", 0, 0, "bad-code", f"'{text}' is not a 6-digit code.",
                                     "Give codes such as 600111 or 600111.SH.")])
    return code


def _value_table(frame: Any) -> dict[str, dict[dt.date, float]]:
    out: dict[str, dict[dt.date, float]] = {}
    for row in frame.to_dict("records"):
        day = row.get("数据日期")
        if isinstance(day, dt.datetime):
            day = day.date()
        if not isinstance(day, dt.date):
            continue
        for col, (name, k) in VALUE_COLUMNS.items():
            v = row.get(col)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out.setdefault(name, {})[day] = float(v) * k
    return out


def pull(symbols: list[str], names: Path | None, facts: Path, start: str, end: str | None, adjust: str,
         source: str, calendar: bool = True, fetcher: Fetcher | None = None) -> Any:
    """Fetch, stage, import; returns the import's summary (with what was fetched for indicators and calendar)."""
    from .dailyfacts import merge_file
    from .dataimport import add_source, import_folder, link_indicators, read_names, scan_stocks

    ak = fetcher or akshare_fetcher()
    codes = [_code(s) for s in symbols]
    if names is not None:
        codes += [c for c in read_names(names) if c not in codes]
    if not codes:
        raise LookupFailure([problem("verdict data pull", 0, 0, "no-symbols", "no codes to pull.",
                                     "Name codes (verdict data pull 600111 000831) or give --names LIST.csv.")])
    first = dt.date.fromisoformat(start).strftime("%Y%m%d")
    last = (dt.date.fromisoformat(end) if end else dt.date.today()).strftime("%Y%m%d")
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=facts))  # same disk: nothing half-written in FACTS_DIR
    try:
        bars = staging / source
        bars.mkdir()
        for code in codes:
            frame = ak.stock_zh_a_hist(symbol=code, period="daily", start_date=first, end_date=last,
                                       adjust="" if adjust == "raw" else adjust)
            if frame is None or len(frame) == 0:
                continue
            frame[[c for c in HIST_COLUMNS if c in frame.columns]].to_csv(bars / f"{code}.csv", index=False)
        names_file = names
        if names_file is None:
            listing = ak.stock_info_a_code_name()
            names_file = staging / "names.csv"
            listing[["code", "name"]].to_csv(names_file, index=False)
        summary = import_folder(bars, facts, names_file, source, adjust)
        if calendar:
            days = ak.tool_trade_date_hist_sina()["trade_date"].tolist()
            text = "# Trading days from akshare tool_trade_date_hist_sina (verdict data pull)\n" + "".join(
                f"{d.isoformat() if hasattr(d, 'isoformat') else d}\n" for d in sorted(days))
            from .fsutil import write_if_changed

            write_if_changed(facts / "calendar.txt", text.encode())
        stocks = scan_stocks(facts)
        linked = 0
        for code in codes:
            table = _value_table(ak.stock_value_em(symbol=code))
            if not table:
                continue
            add_source(facts, source, bars, "akshare", adjust)
            rel = f"indicators/{source}/{code}.csv"
            merge_file(facts / rel, table)
            entry = stocks.get(code)
            if entry is None:
                continue
            named = any(isinstance(i, dict) and i.get("file") == rel for i in entry.data.get("indicators") or [])
            if entry.generated and not named:
                link_indicators(entry, rel, source)
                linked += 1
            elif not entry.generated and not named:
                summary.not_linked.append(f"{entry.path.relative_to(facts)} is yours: add `indicators: [{{file: {rel}, "
                                          f"source: {source}}}]` to use its daily indicators")
        summary.stock_files_written += linked
        summary.folder = f"akshare ({len(codes)} code(s))"
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)
