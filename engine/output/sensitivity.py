"""A sensitivity as people read it: per fact, the values below and above at which the rating changes
(or its JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import expr

if TYPE_CHECKING:
    from ..whatif import FactSensitivity, Flip, Sensitivity


def describe(s: FactSensitivity, f: Flip) -> str:
    """One flip in words: 'rating becomes Hold if PE (stock.pe_ttm) rises above 52.3 (+12.0%); from RULE'."""
    verb = "rises" if f.direction == "up" else "falls"
    edge = ("to" if f.inclusive else "above") if f.direction == "up" else ("to" if f.inclusive else "below")
    pct = f" ({f.change_pct:+.1f}%)" if f.change_pct is not None else ""
    return f"rating becomes {f.rating} if {s.label} ({s.path}) {verb} {edge} {expr.fmt_num(round(f.boundary, 6))}" \
           f"{pct}; from {f.rule}"


def sensitivity_output(result: Sensitivity, fmt: str, *, price: bool = False, chart: Path | None = None) -> str:
    """JSON (`fmt` json), else the text: a heading, a line a flip, and where the chart was written."""
    if fmt == "json":
        return json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n"
    lines = [f"{result.symbol} {result.name}: {result.rating} (score {result.score:g}); "
             f"{len(result.facts)} fact(s) can change the rating ({result.evaluations} re-evaluations)"]
    lines += [f"  {describe(s, f)}" for s in result.facts for f in (s.down, s.up) if f is not None]
    if not result.facts:
        lines.append("  no single fact within the rules' thresholds changes the rating.")
    if price:
        lines.append("  (PE, DCF-vs-price and return facts move with the price; entry ranges: verdict evaluate)")
    if chart is not None:
        lines.append(f"chart: {chart}")
    return "\n".join(lines) + "\n"
