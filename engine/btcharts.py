"""Backtest charts (PNG): cumulative excess return by rating, the rank IC over time, one symbol's ratings.

matplotlib comes with the `charts` extra (`pip install 'verdict[charts]'`); without it the backtest
still writes its JSON and CSV and says the charts were skipped. Never imported on an evaluation's path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .charts import available, pyplot

if TYPE_CHECKING:
    from .backtesting import BacktestRun

COLORS = ["#1a9850", "#91cf60", "#fdae61", "#d73027", "#7f0000", "#542788"]


__all__ = ["available", "cumulative_chart", "ic_chart", "symbol_chart"]


def _plt() -> Any:
    return pyplot()


def _x(day: dt.date) -> float:
    import matplotlib.dates as mdates

    return float(mdates.date2num(day))


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def cumulative_chart(result: BacktestRun, path: Path) -> Path:
    """Each rating's equal-weight portfolio, rebalanced on every rating date, relative to the benchmark."""
    plt = _plt()
    cum = result.cumulative
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 7.5), dpi=100, sharex=True, height_ratios=[3, 1])
    xs = [_x(dt.date.fromisoformat(d)) for d in cum["dates"]]
    given = {x for r in result.ratings for x in r.rating if x}
    for i, name in enumerate(result.scale):
        ys = cum[name]
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        if pts and name in given:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[i % len(COLORS)], linewidth=1.6, label=name)
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.set_ylabel("cumulative excess return, %")
    ax.set_title(f"Cumulative excess return by rating vs {result.benchmark.name} "
                 f"({len(result.symbols)} stock(s), rebalanced every {result.every} trading days)", fontsize=11)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.25)
    bpts = [(x, y) for x, y in zip(xs, cum["benchmark"], strict=True) if y is not None]
    ax2.plot([p[0] for p in bpts], [p[1] for p in bpts], color="#333333", linewidth=1.2)
    ax2.axhline(0, color="#555555", linewidth=0.8)
    ax2.set_ylabel("benchmark, %")
    ax2.set_title(result.benchmark.description, fontsize=8, loc="left")
    ax2.grid(alpha=0.25)
    ax2.xaxis_date()
    fig.autofmt_xdate()
    out = _save(fig, path)
    plt.close(fig)
    return out


def ic_chart(result: BacktestRun, path: Path) -> Path:
    """Rank IC of score vs forward excess return on each date, one panel per horizon, with a rolling mean."""
    plt = _plt()
    hs = list(result.stats)
    fig, axes = plt.subplots(len(hs), 1, figsize=(12, 2.6 * len(hs) + 0.8), dpi=100, sharex=True, squeeze=False)
    for ax, h in zip(axes[:, 0], hs, strict=True):
        st = result.stats[h]
        series = [(dt.date.fromisoformat(d), v) for d, v in st["ic_series"]]
        if series:
            xs = [_x(d) for d, _ in series]
            ys = [v for _, v in series]
            ax.bar(xs, ys, width=max(1.0, result.every * 1.2), color=["#1a9850" if v > 0 else "#d73027" for v in ys],
                   alpha=0.55)
            w = max(1, round(60 / result.every))  # about a quarter of trading days
            roll = [sum(ys[max(0, i - w + 1):i + 1]) / len(ys[max(0, i - w + 1):i + 1]) for i in range(len(ys))]
            ax.plot(xs, roll, color="#333333", linewidth=1.3, label=f"rolling mean ({w} dates)")
            ax.legend(loc="upper left", fontsize=8)
        ic = st["ic"]
        ax.axhline(0, color="#555555", linewidth=0.8)
        ax.set_ylabel(f"IC, {h}d")
        ax.set_title(f"{h}-day: mean IC {ic['mean']}, t {ic['t_stat']} (Newey-West, {st['newey_west_lags']} lags), "
                     f"positive on {ic['positive_pct']}% of {ic['dates']} dates", fontsize=9, loc="left")
        ax.grid(alpha=0.25)
    axes[-1, 0].xaxis_date()
    fig.suptitle(f"Rank IC of score vs forward excess return ({len(result.symbols)} stock(s), vs "
                 f"{result.benchmark.name})", fontsize=11)
    fig.autofmt_xdate()
    out = _save(fig, path)
    plt.close(fig)
    return out


def symbol_chart(result: BacktestRun, s: int, path: Path) -> Path:
    """A PNG of one symbol's close with each rating and the medium-term entry range drawn on it."""
    plt = _plt()
    from .output.backtest import symbol_points

    points = [p for p in symbol_points(result, s) if p["close"] is not None]
    symbol = result.symbols[s]
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    days = [dt.date.fromisoformat(p["date"]) for p in points]
    ax.plot([_x(d) for d in days], [p["close"] for p in points], color="#333333", linewidth=1.2,
            label="close (rating dates)")
    for i, rating in enumerate(result.scale):
        pts = [(d, p) for d, p in zip(days, points, strict=True) if p["rating"] == rating]
        if pts:
            ax.scatter([_x(d) for d, _ in pts], [p["close"] for _, p in pts], s=22, zorder=3,
                       color=COLORS[i % len(COLORS)], label=rating)
    ranges = [(_x(d), p["entry_low"], p["entry_high"]) for d, p in zip(days, points, strict=True)
              if p["entry_low"] is not None and p["entry_high"] is not None]
    if ranges:
        ax.vlines([r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges], color="#4575b4",
                  alpha=0.45, linewidth=3, label="medium-term entry range")
    ax.xaxis_date()
    ax.set_title(f"{result.names.get(symbol, symbol)} ({symbol}): ratings as of each date, every {result.every} "
                 "trading days")
    ax.set_ylabel("RMB (price-history basis)")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    out = _save(fig, path)
    plt.close(fig)
    return out
