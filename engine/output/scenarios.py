"""What-if scenarios side by side and grids of ratings, as a table, Markdown, CSV or JSON: pure text
from a Comparison or a Grid (scenarios.py evaluates them)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from .. import expr
from ..model import HORIZONS, Evaluation
from .cells import cell, csv_cell, given, md
from .tables import text_table

if TYPE_CHECKING:
    from ..scenarios import Comparison, Grid


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
            *(_entry(ev, h) for h in HORIZONS), str(len(ev.warnings))]


def scenario_grid(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table: a row per fact a scenario sets or moves (blank: as in the baseline), then
    rating (score), target, entries and the number of warnings."""
    header = ["", "baseline", *(r.scenario.name for r in c.results)]
    rows = []
    for path, now in c.facts.items():
        row = [path, cell(now) if now is not None else "none"]
        for r in c.results:
            if path in r.scenario.values:
                row.append(given(r.scenario.values[path]))
            elif path == "stock.price" and r.scenario.price is not None:
                row.append(cell(r.scenario.price))
            elif path in r.moved:
                row.append(cell(r.moved[path][1]) + " (price)")
            else:
                row.append("")
        rows.append(row)
    labels = ["rating (score)", "target", "short entry", "medium entry", "long entry", "warnings"]
    columns = [_outcome_cells(c.baseline), *(_outcome_cells(r.evaluation) for r in c.results)]
    rows += [[label, *(col[i] for col in columns)] for i, label in enumerate(labels)]
    return header, rows


def _changes(c: Comparison) -> list[str]:
    out = []
    for r in c.results:
        sc = r.scenario
        head = f"{sc.name}" + (f" ({sc.note})" if sc.note else "") + (f" [{sc.label()}]" if sc.label() != sc.name
                                                                      else "")
        out.append(f"{head}: " + ("no change" if not (r.changes or r.newly_fired or r.stopped_firing) else ""))
        out += [f"    {line}" for line in r.changes]
        if r.moved:
            out.append("    moved with the price: " + ", ".join(f"{p} {cell(a)} -> {cell(b)}"
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
    out = [f"**{md(_title(c))}**", "", "| " + " | ".join(md(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(md(x) for x in row) + " |" for row in rows]
    if c.results:
        out += ["", "**Changes from the baseline**", ""]
        for line in _changes(c):
            out.append(f"  - {md(line.strip())}" if line.startswith("    ") else f"- {md(line)}")
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
    header = [f"{g.axes[0].path} \\ {g.axes[1].path}", *(cell(v) for v in g.axes[1].values)] if two else \
        [g.axes[0].path, "rating (score)"]
    rows = [[cell(x), *(f"{r} ({expr.fmt_num(s)})" for r, s in row)] for x, row in zip(g.axes[0].values, g.cells,
                                                                                         strict=True)]
    return header, rows


def _grid_title(g: Grid) -> str:
    now = ", ".join(f"{a.path} {'none' if v is None else cell(v)}" for a, v in zip(g.axes, g.now, strict=True))
    common = f" with {', '.join(f'{p}={given(v)}' for p, v in g.common.items())}" if g.common else ""
    return f"{g.symbol} {g.name}, facts as of {g.as_of}{common}: {g.rating} ({expr.fmt_num(g.score)}) at {now}"


def grid_table(g: Grid) -> str:
    header, rows = _grid_rows(g)
    axes = f"rating (score) by {g.axes[0].path} (rows)" + (f" and {g.axes[1].path} (columns)" if len(g.axes) == 2
                                                           else "")
    return text_table(f"{_grid_title(g)}\n{axes}", header, rows, right=frozenset(range(1, len(header))))


def grid_markdown(g: Grid) -> str:
    header, rows = _grid_rows(g)
    out = [f"**{md(_grid_title(g))}**", "", "| " + " | ".join(md(h) for h in header) + " |",
           "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(md(x) for x in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def grid_csv(g: Grid) -> str:
    """One line per cell: the axes' values, rating, score."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*(a.path for a in g.axes), "rating", "score"])
    cols = g.axes[1].values if len(g.axes) == 2 else (None,)
    for x, row in zip(g.axes[0].values, g.cells, strict=True):
        for y, (r, s) in zip(cols, row, strict=True):
            w.writerow([csv_cell(x), *([] if y is None else [csv_cell(y)]), r, csv_cell(s)])
    return buf.getvalue()


def grid_output(g: Grid, fmt: str) -> str:
    """A grid in the format asked for (the JSON is the grid's own dict), ending with a newline."""
    if fmt in ("json", "jsonl"):
        return json.dumps(g.as_dict(), indent=2 if fmt == "json" else None, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return grid_csv(g)
    if fmt == "markdown":
        return grid_markdown(g)
    return grid_table(g) + "\n"


def comparison_output(c: Comparison, fmt: str, *, overrides: dict[str, Any] | None = None,
                      width: int | None = None) -> str:
    """Scenarios beside the baseline in the format asked for, ending with a newline. `overrides`: the
    values of a single --set what-if, whose JSON also carries the keys it had before scenarios existed."""
    if fmt in ("json", "jsonl"):
        d = c.as_dict()
        if overrides is not None and c.results:
            r = c.results[0]
            d.update(overrides=overrides, changes=r.changes, newly_fired=r.newly_fired,
                     stopped_firing=r.stopped_firing, scenario={"rating": r.evaluation.rating,
                                                                "score": r.evaluation.score})
        return json.dumps(d, indent=None if fmt == "jsonl" else 2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        text = scenarios_csv(c)
    elif fmt == "markdown":
        text = scenarios_markdown(c)
    else:
        text = scenarios_table(c, width) + "\n"
    return text + ("" if c.results else "no overrides given: no change.\n")
