"""Backtest outputs: JSON and CSV beside the charts, one symbol's own table, and the text summary.

Every output names the benchmark (and says when it is the universe's equal-weight index, not a
published one). Rendering only: the numbers come from backtesting.py and btstats.py.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from .. import forward
from ..backtesting import BacktestRun


def _num(x: float | None, nd: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{round(x, nd)}"


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


def _blank(x: Any) -> Any:
    return "" if x is None else x


def write(result: BacktestRun, out: Path, charts: bool = True) -> list[Path]:
    """backtest.json, ratings.csv, by_rating.csv, by_quantile.csv, ic.csv, coverage.csv and the charts."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    doc = result.as_dict()
    doc["cumulative_excess_pct"] = {"what": "each rating's equal-weight portfolio, rebalanced on every rating date, "
                                            "relative to the benchmark; 'benchmark' is the benchmark's own return",
                                    **result.cumulative}
    path = out / "backtest.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)

    path = out / "ratings.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "symbol", "rating", "score", "status", "close",
                    *[f"{k}_{h}d_pct" for h in result.horizons for k in ("forward", "benchmark", "excess")]])
        for t, day in enumerate(result.dates):
            for s, r in enumerate(result.ratings):
                if r.status[t] in (forward.UNLISTED, forward.NO_PRICES):
                    continue
                row = [day.isoformat(), r.symbol, r.rating[t], _num(r.score[t], 6), r.status[t] or "rated",
                       _num(result.closes[s][t], 4)]
                for h in result.horizons:
                    f, b = result.forward[h][s][t], result.bench[h][t]
                    row += [_num(f), _num(b), _num(f - b)]
                w.writerow(row)
    written.append(path)

    path = out / "by_rating.csv"
    cols = ["count", "mean_excess_pct", "median_excess_pct", "hit_rate_pct", "mean_return_pct", "dates",
            "per_date_mean_excess_pct", "t_stat"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["benchmark", "horizon", "rating", *cols, "ci95_low_pct", "ci95_high_pct"])
        for h, st in result.stats.items():
            for row in st["by_rating"]:
                ci = row["ci95_pct"] or [None, None]
                w.writerow([result.benchmark.name, h, row["rating"], *[_blank(row[c]) for c in cols],
                            _blank(ci[0]), _blank(ci[1])])
    written.append(path)

    path = out / "by_quantile.csv"
    cols = ["count", "score_min", "score_max", "mean_excess_pct", "median_excess_pct", "hit_rate_pct"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["benchmark", "horizon", "quantile", *cols])
        for h, st in result.stats.items():
            for row in st["by_quantile"]:
                w.writerow([result.benchmark.name, h, row["quantile"], *[_blank(row[c]) for c in cols]])
    written.append(path)

    path = out / "ic.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["benchmark", "horizon", "date", "rank_ic"])
        for h, st in result.stats.items():
            for day, v in st["ic_series"]:
                w.writerow([result.benchmark.name, h, day, v])
    written.append(path)

    path = out / "coverage.csv"
    cov = result.coverage
    with path.open("w", newline="", encoding="utf-8") as fh:
        dw = csv.DictWriter(fh, fieldnames=list(cov[0]))
        dw.writeheader()
        dw.writerows(cov)
    written.append(path)

    if charts:
        from ..btcharts import cumulative_chart, ic_chart

        written.append(cumulative_chart(result, out / "cumulative_excess.png"))
        written.append(ic_chart(result, out / "ic.png"))
    return written


def symbol_points(result: BacktestRun, s: int) -> list[dict[str, Any]]:
    """One symbol's rating dates: status, rating, score, close, entry range, forward/benchmark/excess returns."""
    r = result.ratings[s]
    points = []
    for t, day in enumerate(result.dates):
        entry = r.entries[t] if r.entries else None
        points.append({"date": day.isoformat(), "status": r.status[t] or "rated", "rating": r.rating[t] or None,
                       "score": None if math.isnan(r.score[t]) else r.score[t], "close": result.closes[s][t],
                       "entry_low": entry[0] if entry else None, "entry_high": entry[1] if entry else None,
                       "forward": {str(h): _r(result.forward[h][s][t]) for h in result.horizons},
                       "benchmark": {str(h): _r(result.bench[h][t]) for h in result.horizons},
                       "excess": {str(h): _r(result.forward[h][s][t] - result.bench[h][t]) for h in result.horizons}})
    return points


def write_symbol(result: BacktestRun, s: int, out: Path, charts: bool = True) -> list[Path]:
    """backtest_<code>.json (every rating date of the symbol) and backtest_<code>.png."""
    code = result.symbols[s].split(".")[0]
    path = out / f"backtest_{code}.json"
    doc = {"symbol": result.symbols[s], "name": result.names.get(result.symbols[s], ""),
           "benchmark": result.benchmark.description, "points": symbol_points(result, s),
           "statistics": {str(h): {"by_rating": st["by_rating"]} for h, st in result.stats.items()}}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written = [path]
    if charts:
        from ..btcharts import symbol_chart

        written.append(symbol_chart(result, s, out / f"backtest_{code}.png"))
    return written


def _f(x: float | None, spec: str = "+.2f") -> str:
    return "-" if x is None else format(x, spec)


def summary_text(result: BacktestRun) -> str:
    """What a researcher reads first: per horizon, excess return by rating, the IC, then turnover and promises."""
    d = result.as_dict()
    u, run = d["universe"], d["run"]
    lines = [f"{u['symbols']} symbol(s), {u['rating_dates']} rating dates {u['from']} .. {u['to']} every {u['every']} "
             f"trading days; {run['evaluations']} evaluations in {run['rating_seconds']} s "
             f"({run['evaluations_per_second']}/s, {run['executor']})",
             f"benchmark: {result.benchmark.description}",
             "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items())]
    for h, st in result.stats.items():
        ic = st["ic"]
        lines.append(f"\n{h}-day forward excess return vs {result.benchmark.name} ({st['observations']} observations "
                     f"on {st['dates_with_returns']} dates; benchmark mean {_f(st['benchmark_mean_pct'])}%)")
        lines.append(f"  {'rating':<10} {'n':>7} {'mean %':>8} {'median %':>9} {'hit %':>6} {'t (NW)':>7}")
        for row in st["by_rating"]:
            if row["count"]:
                lines.append(f"  {row['rating']:<10} {row['count']:>7} {_f(row['mean_excess_pct']):>8} "
                             f"{_f(row['median_excess_pct']):>9} {_f(row['hit_rate_pct'], '.1f'):>6} "
                             f"{_f(row['t_stat']):>7}")
        if ic["dates"]:
            lines.append(f"  rank IC: mean {_f(ic['mean'], '+.4f')}, t {_f(ic['t_stat'])} (Newey-West, "
                         f"{st['newey_west_lags']} lags; non-overlapping dates {_f(ic['t_stat_non_overlapping'])}), "
                         f"positive on {_f(ic['positive_pct'], '.1f')}% of {ic['dates']} dates")
        else:
            lines.append("  rank IC: not defined (it needs at least 5 rated stocks with different scores on a date)")
    to = result.turnover
    lines.append(f"\nturnover: {_f(to['rating_changed_pct'], '.1f')}% of ratings change from one rating date to "
                 "the next")
    pr = result.promises
    if pr.get("checked"):
        lines.append(f"promises ({pr['horizon']}, measured at {pr['horizon_used']} trading days):")
        for row in pr["ratings"]:
            if row.get("met") is None:
                lines.append(f"  {row['rating']:<10} not checked: {row.get('why', '')}")
            else:
                rng = row["range_pct"]
                want = ("> " + f"{rng[0]:g}%" if rng[1] is None else "<= " + f"{rng[1]:g}%" if rng[0] is None
                        else f"{rng[0]:g}% .. {rng[1]:g}%")
                lines.append(f"  {row['rating']:<10} promised excess {want}: mean {_f(row['mean_excess_pct'])}% "
                             f"-> {'met' if row['met'] else 'NOT met'} ({row['confident']})")
    else:
        lines.append(f"promises not checked: {pr.get('why', '')}")
    lines.append("")
    lines += [f"note: {n}" for n in result.honesty()]
    return "\n".join(lines)
