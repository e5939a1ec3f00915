"""A screen in every format: its rows (table, CSV, JSON lines, JSON, Markdown, for the --columns
chosen), full evaluations (JSON, JSON lines, derivation trees) and the fixed CSV of earlier versions.
Pure text from outcomes: which symbols and in what order is screening.py's (the library's) decision."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..model import Outcome, Summary
from .cells import cell, csv_cell, data, md
from .tables import text_table

if TYPE_CHECKING:
    from ..screening import Column, Screen


def _value(o: Outcome, c: Column) -> Any:
    return o.row.get(c.key)


def _shown(o: Outcome, c: Column) -> str:
    """A cell of a table for people: percentages as percentages, other values as cell() writes them."""
    v = _value(o, c)
    if c.percent and isinstance(v, (int, float)) and not isinstance(v, bool):
        return c.percent.format(v)
    return cell(v)


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
    rows = [[_shown(o, c) for c in columns] for o in outcomes]
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
        w.writerow([csv_cell(_value(o, c)) for c in columns])
    return buf.getvalue()


def screen_records(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> list[dict[str, Any]]:
    return [{c.header: data(_value(o, c)) for c in columns} for o in outcomes]


def screen_jsonl(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in screen_records(outcomes, columns))


def screen_json(outcomes: Sequence[Outcome], columns: Sequence[Column]) -> str:
    return json.dumps(screen_records(outcomes, columns), ensure_ascii=False, indent=2) + "\n"


def screen_markdown(outcomes: Sequence[Outcome], columns: Sequence[Column], title: str) -> str:
    """A screen as one Markdown table (not a report per stock)."""
    out = [f"**{md(title)}**", "", "| " + " | ".join(md(c.header) for c in columns) + " |",
           "|" + "|".join("---:" if c.type == "number" else "---" for c in columns) + "|"]
    out += ["| " + " | ".join(md(_shown(o, c)) for c in columns) + " |" for o in outcomes]
    footer = _footer(outcomes)
    if footer:
        out += ["", f"_{md(footer)}_"]
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


def screen_output(outcomes: Sequence[Outcome], screen: Screen, fmt: str, *, explain: bool = False,
                  depth: int | None = None, left_out: int = 0, width: int | None = None) -> str:
    """A screen in the format asked for: its rows when columns were chosen, else full evaluations (JSON,
    JSON lines), the fixed CSV, or with `explain` each derivation tree."""
    from .evaluation import render_tree

    cols = screen.columns
    if explain and fmt not in ("json", "jsonl", "csv"):
        return "".join(render_tree(o.evaluation(), depth) + "\n" for o in outcomes)
    if fmt == "json":
        return screen_json(outcomes, cols) if cols else \
            json.dumps([json.loads(o.json()) for o in outcomes], ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return screen_jsonl(outcomes, cols) if cols else "".join(o.json() + "\n" for o in outcomes)
    if fmt == "csv":
        return screen_csv(outcomes, cols) if cols else summary_csv([o.summary for o in outcomes])
    title = screen_title(len(outcomes), where=screen.where_text, left_out=left_out, top=screen.top)
    if fmt == "markdown":
        return screen_markdown(outcomes, cols, title)
    return screen_table(outcomes, cols, title, width) + "\n"


class DocumentWriter:
    """Writes full evaluations to stdout one at a time: JSON lines, or a JSON array whose elements
    are indented as `json.dumps(..., indent=2)` indents them (each worker indents its own: jsontext.indented)."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.array = fmt == "json"
        self.count = 0
        self.out = out

    def add(self, o: Any) -> None:
        text = o.json()
        if self.array:
            head = "[\n  " if self.count == 0 else ",\n  "
            self.out.write(head + text.replace("\n", "\n  "))
        else:
            self.out.write(text + "\n")
        self.count += 1

    def close(self) -> None:
        if self.array:
            self.out.write("\n]\n" if self.count else "[]\n")
        self.out.flush()
