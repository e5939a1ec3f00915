"""Backtest: rate a universe as of each date with only what was known then, and measure what followed.

For every rating date every symbol is evaluated point in time (facts known on or before the date,
bars up to its close); where the prices cannot support a rating (not listed yet, no recent bar,
too short a history) the reason is kept instead. Workers (local processes, Dask or Ray, see
executors.py) return only the rating and score per date, never a rendered trace. The parent then
measures forward returns after each date (forward.py), the benchmark's over the same windows
(benchmark.py) and the statistics (btstats.py), and writes JSON, CSV and charts.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from . import btstats, forward
from .benchmark import Benchmark, equal_weight
from .errors import Location, LookupFailure, Problem, VerdictError
from .executors import ExecutorSpec, Lost, WorkspaceSpec, run
from .pipeline import Workspace

# Forward-return windows in trading days (the CLI's --horizons and the JSON's `horizons`), not an
# entry's short/medium/long horizon (model.HORIZONS).
DEFAULT_RETURN_DAYS = (20, 60, 120)
LOCAL = ExecutorSpec()


# ----------------------------------------------------------------------------- in the workers


@dataclass(frozen=True)
class RatingJob:
    """What every worker needs besides the workspace: the dates, and the price tests before rating."""

    dates: tuple[dt.date, ...]
    max_price_age: int | None
    min_bars: int
    detail: bool = False  # also keep the medium-term entry range (single-symbol charts)


@dataclass
class SymbolRatings:
    """One symbol's ratings on every date: status '' (rated) or why not, rating, score."""

    symbol: str
    status: list[str]
    rating: list[str]
    score: list[float]
    entries: list[tuple[float, float] | None] | None = None
    error: str = ""


def rating_paths(ws: Workspace) -> frozenset[str] | None:
    """The fact paths the rules and valuations read (all a rating needs), unless one of them is a
    cross-sectional formula: that one needs every symbol's value on the date, which only the full
    resolution gathers."""
    # and the facts the packs' valuation methods read: a target (and its upside) is what a Buy needs
    paths = frozenset(p for p, _, _ in ws.compiled.read_fields) | {p for v in ws.book.valuations for p in v.paths}
    formulas = ws.deriver.formulas
    if any((f := formulas.items.get(p)) is not None and f.kind == "cross" for p in formulas.closure(paths)):
        return None
    return paths


def rate_symbol(ws: Workspace, job: RatingJob, symbol: str) -> SymbolRatings:
    """Rate one symbol as of each date of the job (a task: runs in a worker process).

    Only the facts the rules read are resolved (derive.symbol_facts with `paths`), with the price
    formulas computed once over the symbol's series and read per date; the rating and score are the
    ones a full evaluation gives (a test compares them date by date)."""
    from .derive import symbol_facts

    stock = ws.facts.find(symbol)
    paths = None if job.detail else rating_paths(ws)
    bar_dates = [b.date for b in stock.series.bars] if stock.series is not None else []
    out = SymbolRatings(stock.file.symbol, [], [], [], [] if job.detail else None)
    for day in job.dates:
        status = forward.price_status(bar_dates, day, job.max_price_age, job.min_bars)
        rating, score, entry = "", math.nan, None
        if status == forward.RATED:
            try:
                sf = symbol_facts(ws.facts, stock, ws.book.policy, day, ws.deriver, paths=paths) \
                    if paths is not None else ws.symbol_facts(symbol, day)
                if job.detail:
                    r = ws.run_facts(sf, run_id=f"backtest-{day}")
                    rating, score = r.rating, r.score
                    medium = next((e for e in r.resolution.entries if e.horizon == "medium"), None)
                    if medium is not None and medium.low is not None and medium.high is not None:
                        entry = (medium.low, medium.high)
                else:
                    rating, score = ws.rate(sf)
            except Exception as exc:  # one date's defect is reported with the rest, not fatal
                status = forward.FAILED
                msg = exc.render() if isinstance(exc, VerdictError) else f"{type(exc).__name__}: {exc}"
                out.error = out.error or f"{day}: {msg}"
        out.status.append(status)
        out.rating.append(rating)
        out.score.append(score)
        if out.entries is not None:
            out.entries.append(entry)
    return out


# ------------------------------------------------------------------------------- in the parent


@dataclass
class BacktestRun:
    symbols: list[str]
    names: dict[str, str]
    dates: list[dt.date]
    every: int
    horizons: list[int]
    scale: list[str]
    benchmark: Benchmark
    executor: str
    ratings: list[SymbolRatings]
    forward: dict[int, list[array[float]]]  # horizon -> per symbol, per date (%; NaN unknown)
    bench: dict[int, array[float]]  # horizon -> per date
    closes: list[list[float | None]]  # per symbol, per date: the close the rating saw
    calendar: list[dt.date]
    date_index: list[int]
    later_bars: int = 0  # stocks with bars after the prices' end (not used)
    stats: dict[int, dict[str, Any]] = field(default_factory=dict)
    turnover: dict[str, Any] = field(default_factory=dict)
    promises: dict[str, Any] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    rating_s: float = 0.0  # from the workers being ready to the last rating in
    phases: dict[str, float] = field(default_factory=dict)  # seconds: start, rating, returns, statistics (, load)
    policy_horizon: str = ""
    rules_hash: str = ""

    @property
    def evaluations(self) -> int:
        return sum(1 for r in self.ratings for s in r.status if s in (forward.RATED, forward.FAILED))

    def panel(self) -> btstats.Panel:
        index = {name: i for i, name in enumerate(self.scale)}
        rating = [array("b", (index[x] if s == forward.RATED else -1 for s, x in zip(r.status, r.rating, strict=True)))
                  for r in self.ratings]
        score = [array("d", r.score) for r in self.ratings]
        return btstats.Panel(self.dates, self.scale, self.symbols, rating, score, self.forward, self.bench, self.every)

    @cached_property
    def coverage(self) -> list[dict[str, Any]]:
        """Per date: how many symbols were rated, with each rating, and why the others were not."""
        rows = []
        for t, day in enumerate(self.dates):
            row: dict[str, Any] = {"date": day.isoformat(), "rated": 0}
            row.update({name: 0 for name in self.scale})
            row.update({reason: 0 for reason in forward.REASONS})
            for r in self.ratings:
                s = r.status[t]
                if s == forward.RATED:
                    row["rated"] += 1
                    row[r.rating[t]] += 1
                else:
                    row[s] += 1
            for h in self.horizons:
                b = self.bench[h][t]
                row[f"benchmark_{h}d_pct"] = None if math.isnan(b) else round(b, 3)
            rows.append(row)
        return rows

    @cached_property
    def cumulative(self) -> dict[str, list[Any]]:
        """Cumulative excess return (%) of each rating's equal-weight portfolio over the benchmark, rebalanced on
        every rating date: bought at the next open, sold at the open after the next rating date, where the next
        portfolio is bought. Starts at 0 on the first rating date; each later point is the day a period ended.
        A rating with no member in a period stays flat (in the benchmark). `benchmark`: its own return."""
        h = self.every
        levels = {name: 1.0 for name in self.scale}
        bench_level = 1.0
        out: dict[str, list[Any]] = {"dates": [self.dates[0].isoformat()]}
        out.update({name: [0.0] for name in [*self.scale, "benchmark"]})
        for t in range(len(self.dates)):
            b = self.bench[h][t]
            if math.isnan(b):
                break  # the periods that run past the last price
            bench_level *= 1 + b / 100
            out["dates"].append(self.calendar[self.date_index[t] + 1 + h].isoformat())
            out["benchmark"].append(round((bench_level - 1) * 100, 3))
            for name in self.scale:
                rets = [f for s, r in enumerate(self.ratings)
                        if r.status[t] == forward.RATED and r.rating[t] == name
                        and not math.isnan(f := self.forward[h][s][t])]
                if rets:
                    levels[name] *= (1 + statistics.fmean(rets) / 100) / (1 + b / 100)
                out[name].append(round((levels[name] - 1) * 100, 3))
        return out

    def honesty(self) -> list[str]:
        cov = self.coverage
        none = [t for t, c in enumerate(cov) if c["rated"] == 0]
        runs: list[list[int]] = []
        for t in none:  # consecutive rating dates without any rating, as ranges
            if runs and runs[-1][-1] == t - 1:
                runs[-1].append(t)
            else:
                runs.append([t])
        shown = "; ".join(cov[r[0]]["date"] + (f" .. {cov[r[-1]]['date']}" if len(r) > 1 else "") for r in runs[:6])
        totals = {reason: sum(c[reason] for c in cov) for reason in forward.REASONS}
        stopped = sum(1 for r in self.ratings if r.status and r.status[-1] == forward.NO_RECENT_PRICE)
        end = self.calendar[-1]
        lags = {h: btstats.overlap_lags(h, self.every) for h in self.horizons}
        notes = [
            "Survivorship: the universe is the stocks whose prices are in the facts directory. A download made "
            "after the period lacks the stocks delisted during it, so the losers that left the market are missing "
            "and returns are biased upward (for every rating and for an equal-weight benchmark alike; a published "
            f"index is not). {stopped} of {len(self.symbols)} stocks have no recent price on the last rating date "
            "(suspended, or stopped trading); a stock that stops trading is valued at its last close from then on: "
            "counted, not dropped.",
            f"Overlapping horizons: ratings every {self.every} trading days with horizons "
            f"{', '.join(str(h) for h in self.horizons)} days overlap "
            f"({', '.join(f'{h}d: {lags[h] + 1} windows share days' for h in self.horizons)}). Each t-statistic is on "
            "the per-date series with Newey-West standard errors at "
            f"{', '.join(f'{lags[h]} lag(s) for {h}d' for h in self.horizons)}; the IC also has a t-statistic on "
            "non-overlapping dates alone.",
            f"Dates where no rating could be formed: {len(none)} of {len(self.dates)}"
            + (f" ({shown}{' ...' if len(runs) > 6 else ''})" if none else "") + "; symbol-dates without a rating by "
            "reason: "
            + (", ".join(f"{k} {v}" for k, v in totals.items() if v) or "none") + ". 'short price history' is fewer "
            "bars than the policy's technicals.min_bars; 'no recent price' is a last bar older than the prices "
            "freshness limit.",
            f"Benchmark: {self.benchmark.description}",
            "Execution: a rating on day D is acted on at the next trading day's open and each h-day return runs to the "
            "open h trading days later; no costs, taxes or price-limit fills are modelled (a stock at its limit at the "
            f"open could not be bought or sold there). The prices end on {end}, the day most of the stocks' histories "
            f"end (the download's end): windows that run past it have no return, and the bars {self.later_bars} "
            "stock(s) have after it are not used.",
        ]
        if self.lost:
            notes.append(f"Lost to worker failures: {len(self.lost)} symbol(s): {', '.join(self.lost[:10])}.")
        return notes

    def as_dict(self) -> dict[str, Any]:
        return {
            "universe": {"symbols": len(self.symbols), "from": self.dates[0].isoformat(),
                         "to": self.dates[-1].isoformat(), "every": self.every, "rating_dates": len(self.dates),
                         "horizons": self.horizons, "prices_end": self.calendar[-1].isoformat(),
                         "rules_hash": self.rules_hash},
            "benchmark": {"name": self.benchmark.name, "kind": self.benchmark.kind,
                          "description": self.benchmark.description, "source": self.benchmark.source},
            "run": {"executor": self.executor, "evaluations": self.evaluations,
                    "rating_seconds": round(self.rating_s, 2),
                    "evaluations_per_second": round(self.evaluations / self.rating_s, 1) if self.rating_s else None,
                    "wall_seconds": round(self.elapsed_s, 2),
                    "phases_seconds": {k: round(v, 2) for k, v in self.phases.items()}},
            "statistics": {str(h): {k: v for k, v in s.items() if k != "ic_series"} for h, s in self.stats.items()},
            "turnover": self.turnover,
            "promises": self.promises,
            "honesty": self.honesty(),
            "failures": [{"symbol": r.symbol, "error": r.error} for r in self.ratings if r.error],
            "lost": self.lost,
        }


def resolve_symbols(ws: Workspace, wanted: Sequence[str] | None) -> list[str]:
    """Canonical symbols: the named ones (by code, symbol, name or alias), or every stock with prices.
    Unknown names are reported together, in one problem."""
    if wanted is None:
        return [s for s in ws.symbols() if (series := ws.facts.stocks[s].series) is not None and series.bars]
    out, seen, unknown = [], set(), []
    for q in wanted:
        try:
            symbol = ws.facts.find(q).file.symbol
        except LookupFailure:
            unknown.append(q)
            continue
        if symbol not in seen:
            seen.add(symbol)
            out.append(symbol)
    if unknown and len(wanted) == 1:
        ws.facts.find(unknown[0])  # the usual error, with its did-you-mean
    if unknown:
        raise LookupFailure([Problem(Location(str(ws.facts_dir)), "unknown-symbol",
                                     f"{len(unknown)} of the {len(wanted)} symbols have no facts in "
                                     f"{ws.facts_dir}: {', '.join(unknown[:12])}{' ...' if len(unknown) > 12 else ''}.",
                                     "Import them (verdict data import) or remove them from the list.")])
    return out


def backtest(ws: Workspace, symbols: Sequence[str] | None = None, *, start: dt.date | None = None,
             end: dt.date | None = None, every: int = 5, horizons: Sequence[int] = DEFAULT_RETURN_DAYS,
             benchmark: str | Path | Benchmark | None = None, executor: str | ExecutorSpec = "local", jobs: int = 0,
             quantiles: int = 5, progress: Callable[[int, int, int], None] | None = None,
             started: Callable[[str], None] | None = None) -> BacktestRun:
    """`verdict backtest` as a function: rate `symbols` (None: every symbol with facts) every `every` trading
    days from `start` to `end` (default: the prices' span) with only what was known on each date, and
    measure what followed against `benchmark`: a CSV or benchmarks/*.yaml file, "equal-weight", a loaded
    Benchmark, or None for the policy's benchmark if the facts carry it. `output.backtest.write(result, folder)`
    writes the files the command writes; `result.as_dict()` is backtest.json."""
    from .benchmark import choose

    wanted = resolve_symbols(ws, symbols)
    bench = benchmark if isinstance(benchmark, Benchmark) else choose(ws.facts_dir, ws.book.policy.scale.benchmark,
                                                                       benchmark)
    spec = executor if isinstance(executor, ExecutorSpec) else ExecutorSpec.parse(executor)
    return backtest_universe(ws, WorkspaceSpec.of(ws.rules_dir, ws.facts_dir, partial=True), wanted, start, end, every,
                             horizons, bench, executor=spec, workers=jobs, quantiles=quantiles,
                             detail=len(wanted) == 1, progress=progress, started=started)


def backtest_universe(ws: Workspace, ws_spec: WorkspaceSpec, symbols: list[str], start: dt.date | None,
                      end: dt.date | None, every: int, horizons: Sequence[int], benchmark: Benchmark | None, *,
                      executor: ExecutorSpec = LOCAL, workers: int = 0, quantiles: int = 5,
                      detail: bool = False, progress: Callable[[int, int, int], None] | None = None,
                      started: Callable[[str], None] | None = None) -> BacktestRun:
    """Rate `symbols` every `every` trading days from `start` to `end`, then measure what followed.

    `benchmark` None: the equal-weight index of the universe. `progress(symbols done, total, evaluations)`.
    """
    t_start = time.perf_counter()
    horizons = sorted(set(horizons))
    stocks = [ws.facts.stocks[s] for s in symbols]
    series = [[b.date for b in s.series.bars] if s.series is not None else [] for s in stocks]
    data_end = prices_end([d[-1] for d in series if d])
    if data_end is None:
        raise LookupFailure([Problem(Location(str(ws.facts_dir)), "no-prices",
                                     "none of the symbols has a price history to backtest on.",
                                     "Import prices first (verdict data import) or name stocks that have them.")])
    cal = forward.trading_calendar([*series, benchmark.dates if benchmark else []], data_end)
    first, last = start or cal[0], end or cal[-1]
    dates = forward.rating_dates(cal, first, last, every)
    if not dates:
        raise LookupFailure([Problem(Location(), "no-dates", f"no trading day between {first} and {last} (the prices "
                                     f"run {cal[0]} .. {cal[-1]}).", "Choose --from/--to inside the price history.")])
    policy = ws.book.policy
    job = RatingJob(tuple(dates), policy.freshness.max_age_days.get("prices"), policy.technicals.min_bars, detail)
    results: list[SymbolRatings | None] = [None] * len(symbols)
    lost: list[str] = []
    evaluations = 0
    t_rate = time.perf_counter()
    ready = [t_rate]

    def on_ready(what: str) -> None:
        ready[0] = time.perf_counter()
        if started:
            started(what)

    tasks = run(executor, ws_spec, rate_symbol, job, symbols, workspace=ws, workers=workers, started=on_ready)
    for done, (i, res) in enumerate(tasks, 1):
        if isinstance(res, Lost):
            lost.append(symbols[i])
            res = SymbolRatings(symbols[i], [forward.FAILED] * len(dates), [""] * len(dates), [math.nan] * len(dates),
                                None, f"lost: {res.message}")
        results[i] = res
        evaluations += sum(1 for s in res.status if s in (forward.RATED, forward.FAILED))
        if progress:
            progress(done, len(symbols), evaluations)
    t_rated = time.perf_counter()
    rating_s = t_rated - ready[0]
    ratings = [r for r in results if r is not None]

    index = {d: i for i, d in enumerate(cal)}
    date_index = [index[d] for d in dates]
    measured = sorted({*horizons, every})
    fwd: dict[int, list[array[float]]] = {h: [] for h in measured}
    closes: list[list[float | None]] = []
    for s in stocks:
        bars = s.series.bars if s.series is not None else []
        a = forward.align(cal, [b.date for b in bars], [b.open for b in bars], [b.close for b in bars])
        for h, values in forward.forward_returns(a, date_index, measured).items():
            fwd[h].append(values)
        by_day = {b.date: b.close for b in bars}
        closes.append([by_day.get(d) for d in dates])
    if benchmark is None:
        bench_series = equal_weight(len(symbols))
        bench = {h: _equal_weight(ratings, fwd[h]) for h in measured}
    else:
        bench_series = benchmark
        a = forward.align(cal, benchmark.dates, benchmark.opens, benchmark.closes, carry=False)
        bench = forward.forward_returns(a, date_index, measured)
        if all(math.isnan(v) for v in bench[measured[0]]):
            raise LookupFailure([Problem(Location(), "benchmark-range",
                                         f"the benchmark ({benchmark.description}) has no level in any window after "
                                         f"{dates[0]} .. {dates[-1]}.",
                                         "Give a benchmark covering the backtest, or --benchmark equal-weight.")])
    result = BacktestRun(symbols, {s.file.symbol: s.file.name for s in stocks}, dates, every, list(horizons),
                         policy.scale.names(), bench_series, str(executor), ratings, fwd, bench, closes, cal,
                         date_index, later_bars=sum(1 for d in series if d and d[-1] > data_end), lost=lost,
                         rating_s=rating_s, policy_horizon=policy.scale.horizon,
                         rules_hash=ws.compiled.digest)
    t_returns = time.perf_counter()
    panel = result.panel()
    result.stats = {h: btstats.horizon_stats(panel, h, quantiles) for h in horizons}
    result.turnover = btstats.turnover(panel)
    result.promises = btstats.promises([(b.name, b.meaning) for b in policy.scale.ratings], policy.scale.horizon,
                                       result.stats)
    t_end = time.perf_counter()
    result.phases = {"start": ready[0] - t_rate, "rating": rating_s, "returns": t_returns - t_rated,
                     "statistics": t_end - t_returns}
    result.elapsed_s = t_end - t_start
    return result


def prices_end(last_days: list[dt.date]) -> dt.date | None:
    """Where the prices end: the day most stocks' histories end on (the download's end; the latest such day
    on a tie). A stock whose bars stop earlier stopped trading or is suspended (valued at its last close);
    bars of the few that go further are not used, so a stock is never taken for delisted because its file
    is older than another's."""
    if not last_days:
        return None
    counts = Counter(last_days)
    return max(counts, key=lambda d: (counts[d], d))


def _equal_weight(ratings: list[SymbolRatings], fwd: list[array[float]]) -> array[float]:
    """Per date, the mean forward return of every stock that could be priced on it (rated or not)."""
    priced = (forward.RATED, forward.SHORT_HISTORY, forward.FAILED)
    n_dates = len(ratings[0].status) if ratings else 0
    out = array("d")
    for t in range(n_dates):
        xs = [fwd[s][t] for s, r in enumerate(ratings) if r.status[t] in priced and not math.isnan(fwd[s][t])]
        out.append(statistics.fmean(xs) if xs else math.nan)
    return out
