"""Renderers of the analyst's workbench: a screen's rows in every format (table, CSV, JSON lines,
JSON, Markdown) and what-if scenarios side by side. Pure text from outcomes; no evaluation here, and
nothing the report or another front end could not reuse.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from . import expr
from .explain import text_table
from .model import Outcome, Summary
from .screen import Column


def _cell(v: Any) -> str:
    """A value as people read it: numbers to 4 decimals at most, true/false, empty when absent."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return expr.fmt_num(round(v, 4))
    return str(v)


def _data(v: Any) -> Any:
    """A value for machines: floats to 6 decimals (what the JSON of an evaluation carries)."""
    return round(v, 6) if isinstance(v, float) else v


def _value(o: Outcome, c: Column) -> Any:
    return o.row.get(c.key)


def _csv_cell(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = repr(round(v, 6))  # every digit the JSON carries, not the 4 a table shows
        return text[:-2] if text.endswith(".0") else text
    return "" if v is None else v


def screen_title(shown: int, *, where: str = "", left_out: int = 0, top: int | None = None) -> str:
    text = f"verdict: {shown} symbol(s)"
    if where:
        text += f" where {where}"
    notes = []
    if left_out:
        notes.append(f"{left_out} left out by --where")
    if top is not None:
        notes.append(f"--top {top}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _footer(outcomes: Sequence[Outcome]) -> str:
    if not outcomes:
        return ""
    r = outcomes[0].summary.rating_info
    return f"Ratings on the {r.scale} (benchmark {r.benchmark}, horizon {r.horizon}). {outcomes[0].summary.disclaimer}"


def screen_table(outcomes: Sequence[Outcome], columns: Sequence[Column], title: str, width: int | None = None) -> str:
    rows = [[_cell(_value(o, c)) for c in columns] for o in outcomes]
    right = frozenset(i for i, c in enumerate(columns) if c.type == "number")
    fold = next((i for i, c in enumerate(columns) if c.key == "warning"), None)
    out = [text_table(title, [c.header for c in columns], rows, right=right, fold=fold, width=width)]
    footer = _footer(outcomes)
    return "\n".join([*out, footer] if footer else out)


def screen_csv(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.header for c in columns])
    for o in outcomes:
        w.writerow([_csv_cell(_value(o, c)) for c in columns])
    return buf.getvalue()


def screen_records(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> list[dict[str, Any]]:
    return [{c.header: _data(_value(o, c)) for c in columns} for o in outcomes]


def screen_jsonl(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in screen_records(outcomes, columns))


def screen_json(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> str:
    return json.dumps(screen_records(outcomes, columns), ensure_ascii=False, indent=2) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def screen_markdown(outcomes: Sequence[Outcome], columns: Sequence[Column], title: str) -> str:
    """A screen as one Markdown table (not a report per stock)."""
    out = [f"**{_md(title)}**", "", "| " + " | ".join(_md(c.header) for c in columns) + " |",
           "|" + "|".join("---:" if c.type == "number" else "---" for c in columns) + "|"]
    out += ["| " + " | ".join(_md(_cell(_value(o, c))) for c in columns) + " |" for o in outcomes]
    footer = _footer(outcomes)
    if footer:
        out += ["", f"_{_md(footer)}_"]
    return "\n".join(out) + "\n"


def summary_csv(summaries: Sequence[Summary]) -> str:
    """A screen as CSV when no --columns are chosen: the fixed columns of earlier versions."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["symbol", "name", "as_of", "rating", "score", "target_low", "target_high", "medium_entry_low",
                "medium_entry_high", "warnings", "run_id"])
    for e in summaries:
        med = next((x for x in e.entries if x.horizon == "medium"), None)
        w.writerow([e.symbol, e.name, e.as_of, e.rating, f"{e.score:g}", e.target.low if e.target else "",
                    e.target.high if e.target else "", med.low if med and med.low is not None else "",
                    med.high if med and med.high is not None else "", len(e.warnings), e.run_id])
    return buf.getvalue()
