"""Backtest statistics: do higher ratings earn more than lower ones, by how much, how reliably?

Pure functions of a panel (rating dates x symbols: rating, score, forward return, benchmark return).
What a researcher expects from alphalens-style tear sheets, per horizon: mean and median excess
return by rating and by score quantile, hit rate against the benchmark, the rank IC of score against
forward excess return per date (its mean, t-statistic and share of positive dates), turnover, counts,
and whether each rating kept its label's promise.

Overlapping horizons: ratings every N trading days with an h-day horizon share ceil(h/N) - 1 of their
neighbours' days, so the per-date series are autocorrelated and a plain t-statistic overstates
significance. Every t-statistic here is on a per-date series (one value per rating date, which also
absorbs the cross-sectional correlation of stocks on one date) with Newey-West (Bartlett) standard
errors at ceil(h/N) - 1 lags; the IC also gets a t-statistic on non-overlapping dates only, as a check.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Z95 = 1.959964


@dataclass
class Panel:
    """Ratings and what followed them. `rating[s][t]` is an index into `scale` (-1: not rated);
    `excess[h][s][t]` and `forward[h][s][t]` are % returns (NaN where unknown)."""

    dates: list[dt.date]
    scale: list[str]
    symbols: list[str]
    rating: Sequence[Sequence[int]]
    score: Sequence[Sequence[float]]
    forward: Mapping[int, Sequence[Sequence[float]]]
    benchmark: Mapping[int, Sequence[float]]
    every: int

    def observations(self, h: int, t: int) -> list[tuple[int, float, float, float]]:
        """(rating, score, forward, excess) of every symbol rated on date t with a known h-day return."""
        out: list[tuple[int, float, float, float]] = []
        bench = self.benchmark[h][t]
        if math.isnan(bench):
            return out
        fwd = self.forward[h]
        for s in range(len(self.symbols)):
            r = self.rating[s][t]
            if r < 0:
                continue
            f = fwd[s][t]
            if not math.isnan(f):
                out.append((r, self.score[s][t], f, f - bench))
        return out


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else round(x, nd)


def newey_west(xs: Sequence[float], lags: int) -> tuple[float, float | None, float | None]:
    """Mean, Newey-West standard error (Bartlett weights) and t-statistic of a series."""
    n = len(xs)
    if n == 0:
        return math.nan, None, None
    m = statistics.fmean(xs)
    if n < 3 or n <= lags + 1:
        return m, None, None
    e = [x - m for x in xs]
    s = sum(v * v for v in e) / n
    for j in range(1, lags + 1):
        gamma = sum(e[t] * e[t - j] for t in range(j, n)) / n
        s += 2 * (1 - j / (lags + 1)) * gamma
    se = math.sqrt(s / n) if s > 0 else 0.0
    return m, se, (m / se if se > 0 else None)


def plain_t(xs: Sequence[float]) -> float | None:
    if len(xs) < 3:
        return None
    sd = statistics.stdev(xs)
    return statistics.fmean(xs) / (sd / math.sqrt(len(xs))) if sd > 0 else None


def ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(xs)), key=xs.__getitem__)
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = avg
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Rank correlation (Pearson on average ranks); None when either side is constant."""
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def quantile_of(scores: Sequence[float], q: int) -> list[int]:
    """Quantile 1..q of each score within one date (1 = lowest); tied scores share the quantile of their
    average rank, so with coarse scores some quantiles stay empty rather than splitting a tie."""
    n = len(scores)
    return [min(q, int((r - 0.5) / n * q) + 1) for r in ranks(scores)]


def overlap_lags(h: int, every: int) -> int:
    return max(0, math.ceil(h / max(every, 1)) - 1)


def _summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean_excess_pct": None, "median_excess_pct": None, "hit_rate_pct": None}
    return {"count": len(values), "mean_excess_pct": _r(statistics.fmean(values)),
            "median_excess_pct": _r(statistics.median(values)),
            "hit_rate_pct": _r(sum(1 for v in values if v > 0) / len(values) * 100, 1)}


def horizon_stats(p: Panel, h: int, quantiles: int = 5, min_ic_names: int = 5) -> dict[str, Any]:
    """Every statistic of one horizon (see the module note for the t-statistics)."""
    lags = overlap_lags(h, p.every)
    k = len(p.scale)
    pooled: list[list[float]] = [[] for _ in range(k)]
    pooled_fwd: list[list[float]] = [[] for _ in range(k)]
    per_date: list[list[float]] = [[] for _ in range(k)]  # one mean excess per date on which the rating exists
    q_pooled: list[list[float]] = [[] for _ in range(quantiles)]
    q_scores: list[list[float]] = [[] for _ in range(quantiles)]
    spread: list[float] = []
    ic_series: list[tuple[int, float]] = []
    ic_undefined = 0
    dates_with = 0
    bench_values: list[float] = []
    for t in range(len(p.dates)):
        obs = p.observations(h, t)
        if not obs:
            continue
        dates_with += 1
        bench_values.append(p.benchmark[h][t])
        groups: list[list[float]] = [[] for _ in range(k)]
        for r, _score, f, x in obs:
            groups[r].append(x)
            pooled[r].append(x)
            pooled_fwd[r].append(f)
        for r in range(k):
            if groups[r]:
                per_date[r].append(statistics.fmean(groups[r]))
        present = [r for r in range(k) if groups[r]]
        if len(present) >= 2:
            spread.append(statistics.fmean(groups[present[0]]) - statistics.fmean(groups[present[-1]]))
        scores = [o[1] for o in obs]
        excess = [o[3] for o in obs]
        ic = spearman(scores, excess) if len(obs) >= min_ic_names else None
        if ic is None:
            ic_undefined += 1
        else:
            ic_series.append((t, ic))
        for qi, (_, score, _, x) in zip(quantile_of(scores, quantiles), obs, strict=True):
            q_pooled[qi - 1].append(x)
            q_scores[qi - 1].append(score)
    by_rating = []
    for r, name in enumerate(p.scale):
        m, se, t_nw = newey_west(per_date[r], lags)
        row = {"rating": name, **_summary(pooled[r]),
               "mean_return_pct": _r(statistics.fmean(pooled_fwd[r])) if pooled_fwd[r] else None,
               "dates": len(per_date[r]), "per_date_mean_excess_pct": _r(m),
               "ci95_pct": [_r(m - Z95 * se), _r(m + Z95 * se)] if se is not None else None,
               "t_stat": _r(t_nw, 2)}
        by_rating.append(row)
    by_quantile = [{"quantile": i + 1, **_summary(q_pooled[i]),
                    "score_min": min(q_scores[i]) if q_scores[i] else None,
                    "score_max": max(q_scores[i]) if q_scores[i] else None} for i in range(quantiles)]
    ics = [v for _, v in ic_series]
    ic_mean, _ic_se, ic_t = newey_west(ics, lags)
    step = lags + 1
    sub = ics[::step]
    sm, _, st = newey_west(spread, lags)
    return {
        "horizon": h,
        "dates_with_returns": dates_with,
        "observations": sum(len(x) for x in pooled),
        "benchmark_mean_pct": _r(statistics.fmean(bench_values)) if bench_values else None,
        "newey_west_lags": lags,
        "by_rating": by_rating,
        "by_quantile": by_quantile,
        "ic": {"mean": _r(ic_mean, 4), "std": _r(statistics.stdev(ics), 4) if len(ics) > 1 else None,
               "t_stat": _r(ic_t, 2), "t_stat_non_overlapping": _r(plain_t(sub), 2),
               "non_overlapping_dates": len(sub), "positive_pct": _r(sum(1 for v in ics if v > 0) / len(ics) * 100, 1)
               if ics else None, "dates": len(ics), "dates_undefined": ic_undefined},
        "spread": {"what": "per-date mean excess of the best rating present minus the worst present",
                   "mean_pct": _r(sm), "t_stat": _r(st, 2), "dates": len(spread)},
        "ic_series": [(p.dates[t].isoformat(), round(v, 4)) for t, v in ic_series],
    }


def turnover(p: Panel) -> dict[str, Any]:
    """How often ratings change between consecutive rating dates (symbols rated on both), and per rating
    the share of its members that were not in it on the date before."""
    changed: list[float] = []
    entrants: list[list[float]] = [[] for _ in p.scale]
    for t in range(1, len(p.dates)):
        both = same = 0
        members = [0] * len(p.scale)
        new = [0] * len(p.scale)
        for s in range(len(p.symbols)):
            a, b = p.rating[s][t - 1], p.rating[s][t]
            if b >= 0:
                members[b] += 1
                if a != b:
                    new[b] += 1
            if a >= 0 and b >= 0:
                both += 1
                same += a == b
        if both:
            changed.append((both - same) / both * 100)
        for r in range(len(p.scale)):
            if members[r]:
                entrants[r].append(new[r] / members[r] * 100)
    return {"rating_changed_pct": _r(statistics.fmean(changed), 1) if changed else None,
            "pairs_of_dates": len(changed),
            "new_members_pct": {name: (_r(statistics.fmean(entrants[r]), 1) if entrants[r] else None)
                                for r, name in enumerate(p.scale)}}


_MORE = re.compile(r"(outperform|underperform).*?by more than\s*(-?\d+(?:\.\d+)?)\s*%", re.I)
_RANGE = re.compile(r"(outperform|underperform).*?by\s*(-?\d+(?:\.\d+)?)\s*%\s*to\s*(-?\d+(?:\.\d+)?)\s*%", re.I)
_WITHIN = re.compile(r"within\s*(\d+(?:\.\d+)?)\s*%", re.I)
_MONTHS = re.compile(r"(\d+(?:\.\d+)?)\s*month", re.I)
TRADING_DAYS_PER_MONTH = 20  # about 242 A-share trading days a year


def promise_range(meaning: str) -> tuple[float | None, float | None] | None:
    """The excess return (in %) a rating's meaning promises, as (low, high); None if it is not stated in a
    form read here ("outperform X by more than 20%", "by 5% to 20%", "within 5% of X", "underperform ...")."""
    if m := _RANGE.search(meaning):
        lo, hi = float(m.group(2)), float(m.group(3))
        return (lo, hi) if m.group(1).lower() == "outperform" else (-hi, -lo)
    if m := _MORE.search(meaning):
        x = float(m.group(2))
        return (x, None) if m.group(1).lower() == "outperform" else (None, -x)
    if m := _WITHIN.search(meaning):
        x = float(m.group(1))
        return (-x, x)
    return None


def promise_horizon(horizon: str) -> int | None:
    """Trading days in the policy's horizon ("6 months" -> 120)."""
    m = _MONTHS.search(horizon)
    return round(float(m.group(1)) * TRADING_DAYS_PER_MONTH) if m else None


def promises(meanings: list[tuple[str, str]], policy_horizon: str, stats: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Whether each rating's mean excess return over the promised horizon lies in the promised range.

    `met` is the point estimate; `confident` says whether the 95% Newey-West interval lies wholly inside
    the range (met with confidence), wholly outside (missed with confidence), or straddles an edge.
    """
    days = promise_horizon(policy_horizon)
    if days is None or not stats:
        return {"horizon": policy_horizon, "checked": False,
                "why": f"the policy's horizon '{policy_horizon}' is not in months"}
    h = min(stats, key=lambda x: abs(x - days))
    if abs(h - days) > 0.25 * days:
        return {"horizon": policy_horizon, "checked": False,
                "why": f"no backtest horizon near {days} trading days ({policy_horizon}); add it to --horizons"}
    rows = []
    by_name = {row["rating"]: row for row in stats[h]["by_rating"]}
    for name, meaning in meanings:
        rng = promise_range(meaning)
        row = by_name.get(name)
        entry: dict[str, Any] = {"rating": name, "meaning": meaning,
                       "range_pct": list(rng) if rng else None}
        if rng is None:
            entry.update(met=None, why="the meaning states no excess return this check can read")
        elif row is None or row["per_date_mean_excess_pct"] is None:
            entry.update(met=None, why="never given in the backtest")
        else:
            lo, hi = rng
            m = row["per_date_mean_excess_pct"]
            inside = (lo is None or m > lo) and (hi is None or m <= hi)
            ci = row["ci95_pct"]
            verdict = "not enough dates for an interval"
            if ci and ci[0] is not None:
                if (lo is None or ci[0] > lo) and (hi is None or ci[1] <= hi):
                    verdict = "met with 95% confidence"
                elif (lo is not None and ci[1] <= lo) or (hi is not None and ci[0] > hi):
                    verdict = "missed with 95% confidence"
                else:
                    verdict = "the 95% interval straddles the promised range's edge"
            entry.update(met=inside, mean_excess_pct=m, ci95_pct=ci, confident=verdict)
        rows.append(entry)
    return {"horizon": policy_horizon, "checked": True, "trading_days": days, "horizon_used": h, "ratings": rows}
