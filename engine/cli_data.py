"""`verdict data import | pull`: market data into a facts directory (a thin shell over engine/dataimport.py).

Kept apart from cli.py, and importing nothing heavy until a command runs, so `verdict evaluate` starts
as fast as before.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .dataimport import ImportSummary

data_app = typer.Typer(no_args_is_help=True,
                       help="Market data in: import a folder of daily bars or indicator tables, or pull them "
                            "through akshare.\n\n"
                            "Examples:\n$ verdict data import ~/downloads/ashare --facts my-facts\n"
                            "$ verdict data pull 600111 --facts my-facts")


class Adjust(StrEnum):
    qfq = "qfq"
    hfq = "hfq"
    raw = "raw"


class Out(StrEnum):
    text = "text"
    json = "json"


def _progress() -> object | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r  {done:,}/{total:,} files" + ("\n" if done == total else ""))
        sys.stderr.flush()

    return show


@data_app.command("import")
def data_import(
    folder: Annotated[Path, typer.Argument(help="Folder of per-symbol daily-bar CSV files (or daily indicator "
                                                "tables: Tushare daily_basic, per symbol or per date).")],
    facts: Annotated[Path, typer.Option("--facts", help="The facts directory to add the stocks to.")] = Path("facts"),
    names: Annotated[Path | None, typer.Option("--names", help="Names list (Tushare stock_basic CSV: ts_code, "
                                                               "name, industry[, list_date]).")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Source id for sources.yaml (default: from the "
                                                                "folder's name).")] = None,
    adjust: Annotated[Adjust, typer.Option("--adjust", help="Price basis of the files.")] = Adjust.qfq,
    replace: Annotated[bool, typer.Option("--replace", help="A newer download on another adjustment anchor "
                                                            "replaces this source's bars instead of being refused.")
                       ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (default: one per core).")] = 0,
    format: Annotated[Out, typer.Option("--format", "-f", help="Summary as text or JSON.")] = Out.text,
) -> None:
    """Add or update the stocks of FOLDER in FACTS_DIR: prices normalised into FACTS_DIR/prices/<source>/, gaps
    checked against the exchange calendar and recorded as suspensions, one summary. Exit 1 if some files were bad
    (the others are imported).

    Examples:
    $ verdict data import ~/downloads/ashare --facts my-facts --names stock_basic.csv
    $ verdict data import ~/downloads/daily_basic --facts my-facts
    """
    from .dataimport import import_folder, import_indicators, is_indicator_folder

    if is_indicator_folder(folder):
        summary = import_indicators(folder, facts, source=source)
    else:
        summary = import_folder(folder, facts, names, source, adjust.value, replace, jobs or None,
                                _progress())  # type: ignore[arg-type]
    _print_summary(summary, format)


@data_app.command("pull")
def data_pull(
    symbols: Annotated[list[str] | None, typer.Argument(help="Codes such as 600111 (or 600111.SH).")] = None,
    names: Annotated[Path | None, typer.Option("--names", help="Pull every code of this names list (Tushare "
                                                               "stock_basic CSV), and take names and industries "
                                                               "from it.")] = None,
    facts: Annotated[Path, typer.Option("--facts", help="The facts directory to add the stocks to.")] = Path("facts"),
    start: Annotated[str, typer.Option("--from", help="First date, YYYY-MM-DD.")] = "2022-01-01",
    end: Annotated[str | None, typer.Option("--to", help="Last date (default: today).")] = None,
    adjust: Annotated[Adjust, typer.Option("--adjust", help="Price basis to fetch.")] = Adjust.qfq,
    source: Annotated[str, typer.Option("--source", help="Source id for sources.yaml.")] = "akshare-em",
    calendar: Annotated[bool, typer.Option("--calendar/--no-calendar", help="Also write FACTS_DIR/calendar.txt, the "
                                                                            "exchange's trading days.")] = True,
    format: Annotated[Out, typer.Option("--format", "-f", help="Summary as text or JSON.")] = Out.text,
) -> None:
    """Fetch daily bars and indicators through akshare (pip install 'verdict[akshare]', and a network) and
    import them as `verdict data import` does. Exit 1 if some fetched files were bad.

    Examples:
    $ verdict data pull 600111 000831 --facts my-facts --from 2024-01-01
    $ verdict data pull --names stock_basic.csv --facts my-facts"""
    import datetime as dt

    from .datapull import pull
    from .errors import LookupFailure, problem

    for name, value in (("--from", start), ("--to", end)):
        try:
            if value:
                dt.date.fromisoformat(value)
        except ValueError:
            raise LookupFailure([problem(name, 0, 0, "bad-date", f"{name} '{value}' is not a date.",
                                         "Give it as YYYY-MM-DD.")]) from None
    summary = pull(symbols or [], names, facts, start, end, adjust.value, source, calendar)
    _print_summary(summary, format)


def _print_summary(summary: ImportSummary, format: Out) -> None:
    """An import's or a pull's summary as text or JSON; exit 1 when a file or a symbol was bad."""
    if format is Out.json:
        typer.echo(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(summary.render())
    if summary.bad:
        raise typer.Exit(1)
