"""What-if like a spreadsheet's data table: named scenarios side by side, and one- or two-way grids.

A scenario sets some facts (and may move the share price, with the facts the catalog links to it);
each is evaluated in full and compared with the baseline: rating, score, target, entries, warnings,
the rules that newly fire or stop. A grid evaluates the rating and score at every combination of
one or two facts' values (no trace: only what a cell shows), for a table and a heat map.
Nothing here matches rules: every evaluation is the pipeline's.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .derive import SymbolFacts, check_override, given_value, with_overrides
from .errors import Location, LookupFailure, Problem, RuleError, did_you_mean
from .model import Evaluation, FactValue, ScenarioFile, ScenarioSpec
from .pipeline import Workspace
from .rulediff import describe_changes

MAX_AXIS = 201  # values on one axis of a grid
MAX_CELLS = 10_000


@dataclass
class Scenario:
    """A named set of changes: facts set explicitly, and optionally the share price moved."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)  # path -> value or bound, as given
    price: float | None = None
    note: str = ""

    def label(self) -> str:
        parts = [f"{p}={_shown(v)}" for p, v in self.values.items()]
        if self.price is not None:
            parts.insert(0, f"price {_shown(self.price)}")
        return ", ".join(parts) or "nothing set"


def _shown(v: Any) -> str:
    if isinstance(v, dict):
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        return " and ".join(f"{sym[k]}{_shown(x)}" for k, x in v.items())
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass
class ScenarioResult:
    scenario: Scenario
    evaluation: Evaluation
    moved: dict[str, tuple[Any, Any]]  # facts the price moved: path -> (before, after)
    changes: list[str]
    newly_fired: list[str]
    stopped_firing: list[str]

    def as_dict(self) -> dict[str, Any]:
        ev = self.evaluation
        return {"name": self.scenario.name, "note": self.scenario.note, "set": self.scenario.values,
                "price": self.scenario.price, "moved": {p: {"from": a, "to": b} for p, (a, b) in self.moved.items()},
                "rating": ev.rating, "score": ev.score, "decided_by": ev.rating_info.decided_by,
                "target": None if ev.target is None else ev.target.model_dump(),
                "entries": [e.model_dump() for e in ev.entries],
                "warnings": [w.model_dump() for w in ev.warnings],
                "changes": self.changes, "newly_fired": self.newly_fired, "stopped_firing": self.stopped_firing}


@dataclass
class Comparison:
    """The baseline and each scenario, in the order given."""

    baseline: Evaluation
    results: list[ScenarioResult]
    facts: dict[str, Any]  # the baseline's value of every fact a scenario sets or moves

    def as_dict(self) -> dict[str, Any]:
        b = self.baseline
        return {"symbol": b.symbol, "name": b.name, "as_of": b.as_of.isoformat() if b.as_of else None,
                "baseline": {"rating": b.rating, "score": b.score, "facts": self.facts,
                             "target": None if b.target is None else b.target.model_dump(),
                             "entries": [e.model_dump() for e in b.entries],
                             "warnings": [w.model_dump() for w in b.warnings]},
                "scenarios": [r.as_dict() for r in self.results]}


# ------------------------------------------------------------------------------ scenario files


def load_scenarios(path: Path, ws: Workspace) -> list[Scenario]:
    """Read a scenarios file; every problem (YAML, schema, unknown or mistyped fact) with file:line:col."""
    from .load import read_mapping, validate

    if not path.is_file():
        raise LookupFailure([Problem(Location(str(path)), "no-file", f"the scenarios file '{path}' does not exist.",
                                     "Write one (see README, 'What would change the rating').")])
    problems: list[Problem] = []
    doc = read_mapping(path, None, problems)
    if doc is None:
        raise RuleError(problems)
    items = doc.data.get("scenarios")
    if not isinstance(items, dict) or not items:  # the file's shape; each scenario is checked on its own below
        _, errs = validate(ScenarioFile, doc)
        raise RuleError(problems + errs or [Problem(doc.at(()), "no-scenarios", "`scenarios:` must name at least "
                                                    "one scenario.", "See README, 'What would change the rating'.")])
    _, errs = validate(ScenarioFile, doc, data={**doc.data, "scenarios": {"x": {}}})
    problems += errs
    specs = []
    for name, item in items.items():
        spec, errs = validate(ScenarioSpec, doc, ("scenarios", name), item if item is not None else {})
        problems += errs
        if spec is not None:
            specs.append((str(name), spec))
    out: list[Scenario] = []
    for name, spec in specs:
        if name == "baseline":
            problems.append(Problem(doc.key_at(("scenarios", name)), "reserved-name", "'baseline' names the facts "
                                    "as they are; a scenario cannot take that name.", "Call it 'base' or 'current'."))
        for p, value in spec.set.items():
            problem = check_override(ws.facts.catalog, p, given_value(value, dt.date(2000, 1, 1), "scenario"))
            if problem:
                problems.append(Problem(doc.key_at(("scenarios", name, "set", p)), "bad-set", problem,
                                        "Fact paths are listed in facts/catalog.yaml." if "unknown" in problem
                                        else ""))
        if spec.price is not None and "stock.price" in spec.set:
            problems.append(Problem(doc.key_at(("scenarios", name, "price")), "price-twice", "the scenario sets "
                                    "stock.price and `price`.", "Give the price once: `price:` also moves the "
                                    "facts linked to it, `set: {stock.price: ...}` moves nothing else."))
        out.append(Scenario(name, dict(spec.set), spec.price, spec.note))
    if problems:
        raise RuleError(sorted(problems, key=lambda p: (p.loc.line, p.loc.col)))
    return out


# ------------------------------------------------------------------------------ evaluation


def _overrides(ws: Workspace, sf: SymbolFacts, scenario: Scenario, what: str, common: dict[str, Any]
               ) -> tuple[dict[str, FactValue], dict[str, tuple[Any, Any]]]:
    """The facts a scenario replaces (those its price moves, then those it sets), and what the price moved.
    `common`: the values that came from --set (named so in errors)."""
    as_of = sf.as_of or dt.date(2000, 1, 1)
    out: dict[str, FactValue] = {}
    moved: dict[str, tuple[Any, Any]] = {}
    if scenario.price is not None:
        from .whatif import price_overrides

        if "stock.price" not in sf.chosen or not sf.chosen["stock.price"].value.is_point:
            raise LookupFailure([Problem(Location(), "no-price", f"{what}: {sf.stock.file.symbol} has no stated "
                                         "share price (stock.price) to move.", "Set the facts instead, with `set:`.")])
        for p, fv in price_overrides(ws, sf, scenario.price).items():
            out[p] = fv
            if p != "stock.price":
                moved[p] = (sf.chosen[p].value.value, fv.value)
    for p, value in scenario.values.items():
        fv = given_value(value, as_of, "what-if")
        problem = check_override(ws.facts.catalog, p, fv)
        if problem:
            where = f"--set {p}" if p in common else what
            raise LookupFailure([Problem(Location(), "bad-set", f"{where}: {problem}",
                                         "Fact paths are listed in facts/catalog.yaml." if "unknown" in problem
                                         else "")])
        out[p] = fv
        moved.pop(p, None)
    return out, moved


def compare_scenarios(ws: Workspace, query: str, scenarios: list[Scenario], common: dict[str, Any] | None = None,
                      as_of: dt.date | None = None, from_set: bool = False) -> Comparison:
    """Evaluate the baseline and every scenario (with `common` set in each), and what each changes.
    `from_set`: the scenarios' values came from --set (errors name it)."""
    sf = ws.symbol_facts(query, as_of)
    base = ws.evaluate_facts(sf, run_id="baseline")
    results = []
    shown: dict[str, Any] = {}
    for sc in scenarios:
        clash = sorted(set(common or {}) & set(sc.values))
        if clash:
            raise LookupFailure([Problem(Location(), "repeated-set", f"{', '.join(clash)} is set both by --set and "
                                         f"by scenario '{sc.name}'.", "Set each fact in one place.")])
        merged = Scenario(sc.name, {**(common or {}), **sc.values}, sc.price, sc.note)
        named_set = {**(common or {}), **(sc.values if from_set else {})}
        overrides, moved = _overrides(ws, sf, merged, f"scenario '{sc.name}'", named_set)
        ev = ws.evaluate_facts(with_overrides(sf, ws.facts.catalog, overrides), run_id="baseline")
        fa, fb = {f.rule for f in base.fired}, {f.rule for f in ev.fired}
        results.append(ScenarioResult(merged, ev, moved, describe_changes(base, ev), sorted(fb - fa),
                                      sorted(fa - fb)))
        for p in [*overrides]:
            c = sf.chosen.get(p)
            shown[p] = None if c is None else (c.value.value if c.value.is_point else c.value.describe())
    return Comparison(base, results, shown)


# ------------------------------------------------------------------------------ grids


@dataclass(frozen=True)
class Axis:
    path: str
    values: tuple[float, ...]


def parse_axis(text: str, ws: Workspace) -> Axis:
    """`stock.pe_ttm=30:90:10` -> 30, 40, ..., 90 (both ends included when the step reaches them)."""
    path, sep, spec = text.partition("=")
    path = path.strip()
    parts = spec.split(":")
    example = "Example: --grid stock.pe_ttm=30:90:10 (from 30 to 90 in steps of 10)."
    if not sep or len(parts) != 3:
        raise LookupFailure([Problem(Location(), "bad-grid", f"--grid '{text}' is not PATH=FROM:TO:STEP.", example)])
    spec_of = ws.facts.catalog.spec(path)
    if spec_of is None:
        raise LookupFailure([Problem(Location(), "bad-grid", f"--grid: unknown fact path '{path}'.",
                                     did_you_mean(path, ws.facts.catalog.paths()) or example)])
    if spec_of.type != "number":
        raise LookupFailure([Problem(Location(), "bad-grid", f"--grid: '{path}' is {spec_of.type}, not a number.",
                                     "A grid varies numeric facts; compare other values with --scenarios.")])
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise LookupFailure([Problem(Location(), "bad-grid", f"--grid '{text}': FROM, TO and STEP must be numbers.",
                                     example)]) from None
    if not all(math.isfinite(x) for x in (start, stop, step)) or step <= 0 or stop < start:
        raise LookupFailure([Problem(Location(), "bad-grid", f"--grid '{text}': needs FROM <= TO and a STEP above 0.",
                                     example)])
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_AXIS:
        raise LookupFailure([Problem(Location(), "bad-grid", f"--grid '{text}' has {count} values (at most "
                                     f"{MAX_AXIS} on one axis).", "Take a larger step.")])
    digits = max(0, -math.floor(math.log10(step)) + 6) if step < 1 else 6
    return Axis(path, tuple(round(start + i * step, digits) for i in range(count)))


@dataclass
class Grid:
    """Rating and score at every combination of the axes' values (rows: the first axis)."""

    symbol: str
    name: str
    as_of: dt.date | None
    rating: str
    score: float
    axes: list[Axis]
    now: list[Any]  # each axis' fact as it is
    cells: list[list[tuple[str, float]]]
    scale: list[str]
    common: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "name": self.name, "as_of": self.as_of.isoformat() if self.as_of else None,
                "baseline": {"rating": self.rating, "score": self.score}, "set": self.common,
                "axes": [{"path": a.path, "values": list(a.values), "now": n} for a, n in zip(self.axes, self.now,
                                                                                              strict=True)],
                "cells": [[{"rating": r, "score": s} for r, s in row] for row in self.cells]}


def grid(ws: Workspace, query: str, axes: list[Axis], common: dict[str, Any] | None = None,
         as_of: dt.date | None = None) -> Grid:
    """Evaluate every cell (rating and score only: no trace is rendered for a grid)."""
    if not 1 <= len(axes) <= 2:
        raise LookupFailure([Problem(Location(), "bad-grid", "give one or two --grid axes.",
                                     "Example: --grid stock.pe_ttm=30:90:10 --grid stock.price=40:60:5")])
    if len(axes) == 2 and axes[0].path == axes[1].path:
        raise LookupFailure([Problem(Location(), "repeated-set", f"--grid {axes[0].path} is given twice.",
                                     "Give two different facts, one per axis.")])
    clash = sorted({a.path for a in axes} & set(common or {}))
    if clash:
        raise LookupFailure([Problem(Location(), "repeated-set", f"{', '.join(clash)} is set by --set and varied by "
                                     "--grid.", "Drop one of them.")])
    cells_total = math.prod(len(a.values) for a in axes)
    if cells_total > MAX_CELLS:
        raise LookupFailure([Problem(Location(), "bad-grid", f"the grid has {cells_total} cells (at most "
                                     f"{MAX_CELLS}).", "Take larger steps.")])
    sf = ws.symbol_facts(query, as_of)
    base_overrides, _ = _overrides(ws, sf, Scenario("--set", dict(common or {})), "--set", common or {})
    sf = with_overrides(sf, ws.facts.catalog, base_overrides) if base_overrides else sf
    rating, score = ws.rate(sf)
    day = sf.as_of or dt.date(2000, 1, 1)
    rows = axes[0].values
    cols = axes[1].values if len(axes) == 2 else (None,)
    cells = []
    for x in rows:
        row = []
        for y in cols:
            ov = {axes[0].path: given_value(x, day, "grid")}
            if y is not None:
                ov[axes[1].path] = given_value(y, day, "grid")
            row.append(ws.rate(with_overrides(sf, ws.facts.catalog, ov)))
        cells.append(row)
    now = []
    for a in axes:
        c = sf.chosen.get(a.path)
        now.append(None if c is None else (c.value.value if c.value.is_point else c.value.describe()))
    file = sf.stock.file
    return Grid(file.symbol, file.name, sf.as_of, rating, score, axes, now, cells, ws.book.policy.scale.names(),
                dict(common or {}))


def _position(values: tuple[float, ...], v: Any) -> float | None:
    """Where `v` falls on an axis, in cell units (interpolated), or None if off the axis."""
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not values[0] <= v <= values[-1]:
        return None
    if len(values) == 1:
        return 0.0
    step = values[1] - values[0]
    return (float(v) - values[0]) / step


def heat_map(g: Grid, path: Path) -> Path:
    """The grid as a PNG: one colour per rating (best green to worst red), each cell labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    n = len(g.scale)
    palette = ["#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027"]
    colors = [palette[round(i * (len(palette) - 1) / max(1, n - 1))] for i in range(n)]  # best green, worst red
    data = [[g.scale.index(r) if r in g.scale else n - 1 for r, _ in row] for row in g.cells]
    rows, cols = len(g.cells), len(g.cells[0])
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * cols + 2.5), max(2.5, 0.5 * rows + 1.8)), dpi=110)
    ax.imshow(data, cmap=ListedColormap(colors), vmin=-0.5, vmax=n - 0.5, aspect="auto")
    for i, row in enumerate(g.cells):
        for j, (r, s) in enumerate(row):
            ax.text(j, i, f"{r}\n{s:g}", ha="center", va="center", fontsize=8)
    ax.set_yticks(range(rows), [_shown(v) for v in g.axes[0].values], fontsize=8)
    ax.set_ylabel(g.axes[0].path)
    if len(g.axes) == 2:
        ax.set_xticks(range(cols), [_shown(v) for v in g.axes[1].values], fontsize=8)
        ax.set_xlabel(g.axes[1].path)
    else:
        ax.set_xticks([])
    row_at = _position(g.axes[0].values, g.now[0])
    col_at = _position(g.axes[1].values, g.now[1]) if len(g.axes) == 2 else 0.0
    if row_at is not None and col_at is not None:  # where the facts are now
        ax.plot(col_at, row_at, marker="*", markersize=14, color="white", markeredgecolor="black",
                linestyle="none", label="now")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, framealpha=0.8)
    now = ", ".join(f"{a.path} {_shown(v)}" for a, v in zip(g.axes, g.now, strict=True))
    ax.set_title(f"{g.name} ({g.symbol}) as of {g.as_of}: {g.rating}, score {g.score:g} at {now}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
