"""Backtest: evaluate a symbol as of each date in a range, then measure what followed each rating.

Every evaluation is point-in-time (only facts and prices dated on or before its date); the forward
20- and 60-bar returns are measured afterwards from the price history and compared with holding
the stock over the same dates. The chart draws the close, each rating and the medium-term entry
range the rules gave on that date.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import Location, LookupFailure, Problem
from .pipeline import Workspace

HORIZONS = (20, 60)


@dataclass
class Point:
    date: dt.date
    rating: str
    score: float
    close: float
    entry_low: float | None
    entry_high: float | None
    forward: dict[int, float | None]


@dataclass
class RatingStats:
    rating: str
    count: int
    mean_forward: dict[int, float | None]
    hit_rate: dict[int, float | None]


@dataclass
class BacktestResult:
    symbol: str
    name: str
    start: dt.date
    end: dt.date
    every: int
    points: list[Point]
    by_rating: list[RatingStats]
    buy_and_hold: dict[int, float | None]
    total_return_pct: float | None
    scale: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for p in d["points"]:
            p["date"] = p["date"].isoformat()
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 3) if xs else None


def backtest(ws: Workspace, query: str, start: dt.date, end: dt.date, every: int) -> BacktestResult:
    stock = ws.facts.find(query)
    series = stock.series
    if series is None or not series.bars:
        raise LookupFailure([Problem(Location(stock.path), "no-prices",
                                     f"{stock.file.symbol} has no price history to backtest on.",
                                     "Add `prices:` with OHLCV segments to its stock file.")])
    bars = series.bars
    index = [i for i, b in enumerate(bars) if start <= b.date <= end]
    if not index:
        raise LookupFailure([Problem(Location(stock.path), "no-dates",
                                     f"no trading day of {stock.file.symbol} between {start} and {end} "
                                     f"(its prices run {bars[0].date} .. {bars[-1].date}).",
                                     "Choose --from/--to inside the price history.")])
    points: list[Point] = []
    for i in index[::max(every, 1)]:
        day = bars[i].date
        ev = ws.evaluate(stock.file.symbol, run_id=f"backtest-{day}", as_of=day)
        medium = next((e for e in ev.entries if e.horizon == "medium"), None)
        fwd = {h: (round((bars[i + h].close / bars[i].close - 1) * 100, 3) if i + h < len(bars) else None)
               for h in HORIZONS}
        points.append(Point(day, ev.rating, ev.score, bars[i].close, medium.low if medium else None,
                            medium.high if medium else None, fwd))
    scale = ws.book.policy.scale.names()
    stats = []
    for rating in scale:
        group = [p for p in points if p.rating == rating]
        if not group:
            continue
        stats.append(RatingStats(
            rating, len(group),
            {h: _mean([p.forward[h] for p in group if p.forward[h] is not None]) for h in HORIZONS},  # type: ignore[misc]
            {h: (round(sum(1 for p in group if (p.forward[h] or 0) > 0) /
                       max(1, sum(1 for p in group if p.forward[h] is not None)) * 100, 1)
                 if any(p.forward[h] is not None for p in group) else None) for h in HORIZONS}))
    hold = {h: _mean([p.forward[h] for p in points if p.forward[h] is not None]) for h in HORIZONS}  # type: ignore[misc]
    total = round((points[-1].close / points[0].close - 1) * 100, 3) if len(points) > 1 else None
    return BacktestResult(stock.file.symbol, stock.file.name, start, end, every, points, stats, hold, total, scale)


def chart(result: BacktestResult, path: Path) -> Path:
    """A PNG of the close with each rating and the medium-term entry range drawn on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    colors = ["#1a9850", "#91cf60", "#fdae61", "#d73027", "#7f0000"]
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    def x(day: dt.date) -> float:
        return float(mdates.date2num(day))

    ax.plot([x(p.date) for p in result.points], [p.close for p in result.points], color="#333333", linewidth=1.2,
            label="close (evaluation dates)")
    for i, rating in enumerate(result.scale):
        pts = [p for p in result.points if p.rating == rating]
        if pts:
            ax.scatter([x(p.date) for p in pts], [p.close for p in pts], s=22, zorder=3,
                       color=colors[i % len(colors)], label=rating)
    ranges = [(x(p.date), p.entry_low, p.entry_high) for p in result.points
              if p.entry_low is not None and p.entry_high is not None]
    if ranges:
        ax.vlines([r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges], color="#4575b4",
                  alpha=0.45, linewidth=3, label="medium-term entry range")
    ax.xaxis_date()
    ax.set_title(f"{result.name} ({result.symbol}): ratings as of each date, every {result.every} bars")
    ax.set_ylabel("RMB (price-history basis)")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
