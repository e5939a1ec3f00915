"""Renderers of the analyst's workbench: a screen's rows in every format (table, CSV, JSON lines,
JSON, Markdown) and what-if scenarios side by side. Pure text from outcomes; no evaluation here, and
nothing the report or another front end could not reuse.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import expr
from .explain import text_table
from .model import Evaluation, Outcome, Summary

if TYPE_CHECKING:
    from .scenarios import Comparison, Grid
    from .screening import Column


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


def _shown(o: Outcome, c: Column) -> str:
    """A cell of a table for people: percentages as percentages, other values as _cell writes them."""
    v = _value(o, c)
    if c.percent and isinstance(v, (int, float)) and not isinstance(v, bool):
        return c.percent.format(v)
    return _cell(v)


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
    out += ["| " + " | ".join(_md(_shown(o, c)) for c in columns) + " |" for o in outcomes]
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


# ------------------------------------------------------------------------------ what-if scenarios


def _entry(ev: Evaluation, horizon: str) -> str:
    e = next((x for x in ev.entries if x.horizon == horizon), None)
    if e is None:
        return "none"
    if e.low is None and e.high is None:
        return e.advice
    return f"{e.advice} {'' if e.low is None else f'{e.low:.2f}'}-{'' if e.high is None else f'{e.high:.2f}'}"


def _outcome_cells(ev: Evaluation) -> list[str]:
    return [f"{ev.rating} ({expr.fmt_num(ev.score)})",
            "none" if ev.target is None else f"{ev.target.low:.2f}-{ev.target.high:.2f}",
            *(_entry(ev, h) for h in ("short", "medium", "long")), str(len(ev.warnings))]


def scenario_grid(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table: a row per fact a scenario sets or moves (blank: as in the baseline), then
    rating (score), target, entries and the number of warnings."""
    header = ["", "baseline", *(r.scenario.name for r in c.results)]
    rows = []
    for path, now in c.facts.items():
        row = [path, _cell(now) if now is not None else "none"]
        for r in c.results:
            if path in r.scenario.values:
                row.append(_given(r.scenario.values[path]))
            elif path == "stock.price" and r.scenario.price is not None:
                row.append(_cell(r.scenario.price))
            elif path in r.moved:
                row.append(_cell(r.moved[path][1]) + " (price)")
            else:
                row.append("")
        rows.append(row)
    labels = ["rating (score)", "target", "short entry", "medium entry", "long entry", "warnings"]
    columns = [_outcome_cells(c.baseline), *(_outcome_cells(r.evaluation) for r in c.results)]
    rows += [[label, *(col[i] for col in columns)] for i, label in enumerate(labels)]
    return header, rows


def _given(v: Any) -> str:
    if isinstance(v, dict):
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        return " and ".join(f"{sym[k]} {_cell(x)}" for k, x in v.items())
    return _cell(v)


def _changes(c: Comparison) -> list[str]:
    out = []
    for r in c.results:
        sc = r.scenario
        head = f"{sc.name}" + (f" ({sc.note})" if sc.note else "") + (f" [{sc.label()}]" if sc.label() != sc.name
                                                                      else "")
        out.append(f"{head}: " + ("no change" if not (r.changes or r.newly_fired or r.stopped_firing) else ""))
        out += [f"    {line}" for line in r.changes]
        if r.moved:
            out.append("    moved with the price: " + ", ".join(f"{p} {_cell(a)} -> {_cell(b)}"
                                                                 for p, (a, b) in r.moved.items()))
        if r.newly_fired:
            out.append(f"    now fires: {', '.join(r.newly_fired)}")
        if r.stopped_firing:
            out.append(f"    no longer fires: {', '.join(r.stopped_firing)}")
    return out


def _title(c: Comparison) -> str:
    return f"{c.baseline.symbol} {c.baseline.name}, facts as of {c.baseline.as_of}"


def scenarios_table(c: Comparison, width: int | None = None) -> str:
    header, rows = scenario_grid(c)
    out = [text_table(_title(c), header, rows, width=width)]
    if c.results:
        out += ["", "Changes from the baseline", *(f"  {line}" for line in _changes(c))]
    return "\n".join(out)


def scenarios_markdown(c: Comparison) -> str:
    header, rows = scenario_grid(c)
    out = [f"**{_md(_title(c))}**", "", "| " + " | ".join(_md(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md(x) for x in row) + " |" for row in rows]
    if c.results:
        out += ["", "**Changes from the baseline**", ""]
        for line in _changes(c):
            out.append(f"  - {_md(line.strip())}" if line.startswith("    ") else f"- {_md(line)}")
    return "\n".join(out) + "\n"


def scenarios_csv(c: Comparison) -> str:
    header, rows = scenario_grid(c)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", *header[1:]])
    w.writerows(rows)
    return buf.getvalue()


# ------------------------------------------------------------------------------ grids


def _grid_rows(g: Grid) -> tuple[list[str], list[list[str]]]:
    two = len(g.axes) == 2
    header = [f"{g.axes[0].path} \\ {g.axes[1].path}", *(_cell(v) for v in g.axes[1].values)] if two else \
        [g.axes[0].path, "rating (score)"]
    rows = [[_cell(x), *(f"{r} ({expr.fmt_num(s)})" for r, s in row)] for x, row in zip(g.axes[0].values, g.cells,
                                                                                         strict=True)]
    return header, rows


def _grid_title(g: Grid) -> str:
    now = ", ".join(f"{a.path} {'none' if v is None else _cell(v)}" for a, v in zip(g.axes, g.now, strict=True))
    common = f" with {', '.join(f'{p}={_given(v)}' for p, v in g.common.items())}" if g.common else ""
    return f"{g.symbol} {g.name}, facts as of {g.as_of}{common}: {g.rating} ({expr.fmt_num(g.score)}) at {now}"


def grid_table(g: Grid) -> str:
    header, rows = _grid_rows(g)
    axes = f"rating (score) by {g.axes[0].path} (rows)" + (f" and {g.axes[1].path} (columns)" if len(g.axes) == 2
                                                           else "")
    return text_table(f"{_grid_title(g)}\n{axes}", header, rows, right=frozenset(range(1, len(header))))


def grid_markdown(g: Grid) -> str:
    header, rows = _grid_rows(g)
    out = [f"**{_md(_grid_title(g))}**", "", "| " + " | ".join(_md(h) for h in header) + " |",
           "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(_md(x) for x in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def grid_csv(g: Grid) -> str:
    """One line per cell: the axes' values, rating, score."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*(a.path for a in g.axes), "rating", "score"])
    cols = g.axes[1].values if len(g.axes) == 2 else (None,)
    for x, row in zip(g.axes[0].values, g.cells, strict=True):
        for y, (r, s) in zip(cols, row, strict=True):
            w.writerow([_csv_cell(x), *([] if y is None else [_csv_cell(y)]), r, _csv_cell(s)])
    return buf.getvalue()
