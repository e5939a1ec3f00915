"""Derived facts: the cost of 10 declared price-history formulas over a real universe, and how it scales.

    python bench/derived.py                        # the shared 2,570-stock universe, every date
    python bench/derived.py --symbols 300 --out quick.md

Each formula is computed once over each symbol's whole series (engine/series.py) and then read on any
date. The script measures, on the daily bars of ../shared/data/market/ashare_universe_2022_2025:
1. computing the 10 formulas over every bar of every symbol, and reading all of them on every date;
2. what computing per date would cost instead (a sample, extrapolated): what a backtest did before;
3. a backtest's indicator cost against its number of dates (flat) and of bars (linear);
4. the same through the pipeline: every catalog formula of the bundle, weekly, via Deriver.price_facts.
It writes its figures with the machine's load to the "derived" section of bench/RESULTS.md (or --out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import expr  # noqa: E402
from engine.errors import Problem  # noqa: E402
from engine.formulas import GRAMMAR, Deriver, for_catalog  # noqa: E402
from engine.load import StockFacts, load_facts  # noqa: E402
from engine.model import StockFile  # noqa: E402
from engine.prices import PriceSeries, read_csv  # noqa: E402
from engine.series import SymbolSeries  # noqa: E402

MARKET = ROOT.parent / "shared" / "data" / "market" / "ashare_universe_2022_2025"
FORMULAS = ["ma(close, 20)", "ema(close, 12)", "avg(volume, 20) / avg(volume, 60)", "highest(high, 20)",
            "lowest(low, 20)", "ret(close, 20)", "volatility(close, 20, 250)", "rsi(6)", "kdj_j(9, 3, 3)",
            "macd_bar(12, 26, 9)"]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def load_universe(limit: int | None) -> list[PriceSeries]:
    out = []
    for path in sorted(MARKET.glob("*.csv"))[:limit]:
        problems: list[Problem] = []
        rows = read_csv(path, path.name, problems)
        if rows and not problems:
            out.append(PriceSeries(path.stem, "qfq", [b for _, b in rows], ["tushare"], [path.name], None))
    return out


def compute_all(universe: list[PriceSeries], nodes: list[expr.Node]) -> tuple[float, list[SymbolSeries], int]:
    t0 = time.perf_counter()
    done = []
    for s in universe:
        ss = SymbolSeries(s)
        for node in nodes:
            ss.values(node)
        done.append(ss)
    return time.perf_counter() - t0, done, sum(ss.computations for ss in done)


def read_every_date(done: list[SymbolSeries], nodes: list[expr.Node]) -> tuple[float, int]:
    t0 = time.perf_counter()
    reads = 0
    for ss in done:
        for day in ss.dates:
            i = ss.index(day)
            assert i is not None
            for node in nodes:
                ss.at(node, i)
            reads += len(nodes)
    return time.perf_counter() - t0, reads


def per_date(series: PriceSeries, nodes: list[expr.Node], days: list[dt.date]) -> float:
    """The cost without the cache: every date computes every formula on the series cut there."""
    t0 = time.perf_counter()
    for day in days:
        cut = series.until(day)
        ss = SymbolSeries(cut)
        for node in nodes:
            ss.at(node, len(cut.bars) - 1)
    return time.perf_counter() - t0


def weekly(dates: list[dt.date], every: int = 5) -> list[dt.date]:
    return dates[::every]


def scaling(sample: list[PriceSeries], nodes: list[expr.Node]) -> tuple[list[tuple[int, float, float]],
                                                                          list[tuple[int, float]]]:
    """(dates, cached s, per-date s) for growing date counts; (bars, cached s) for growing histories."""
    by_dates = []
    for n_dates in (10, 50, 178):
        cached = 0.0
        naive = 0.0
        for s in sample:
            days = weekly([b.date for b in s.bars])[-n_dates:]
            t0 = time.perf_counter()
            ss = SymbolSeries(s)
            for day in days:
                i = ss.index(day)
                assert i is not None
                for node in nodes:
                    ss.at(node, i)
            cached += time.perf_counter() - t0
            naive += per_date(s, nodes, days)
        by_dates.append((n_dates, cached, naive))
    by_bars = []
    for n_bars in (222, 445, 890):
        t0 = time.perf_counter()
        for s in sample:
            cut = PriceSeries(s.symbol, s.adjust, s.bars[:n_bars], s.sources, s.files, s.anchor)
            ss = SymbolSeries(cut)
            for day in weekly([b.date for b in cut.bars]):
                i = ss.index(day)
                assert i is not None
                for node in nodes:
                    ss.at(node, i)
        by_bars.append((n_bars, time.perf_counter() - t0))
    return by_dates, by_bars


def pipeline(universe: list[PriceSeries]) -> tuple[float, int, int, int, int]:
    """Every formula of the bundled catalog, on every symbol, weekly, through Deriver.price_facts (what
    Workspace.symbol_facts calls for each date of a backtest)."""
    base = load_facts(ROOT / "facts")
    deriver = Deriver(for_catalog(base.catalog, None), base, None)
    stocks = [StockFacts(StockFile(symbol=f"{s.symbol}.{'SH' if s.symbol.startswith('6') else 'SZ'}", name=s.symbol,
                                   sector="x", exchange="SH" if s.symbol.startswith("6") else "SZ"),
                         s.symbol, {}, None, s) for s in universe]
    t0 = time.perf_counter()
    values = evaluations = 0
    for stock in stocks:  # symbol by symbol, as a backtest's workers go
        assert stock.series is not None
        for day in weekly([b.date for b in stock.series.bars]):
            derived, _, _ = deriver.price_facts(stock, day)
            values += len(derived)
            evaluations += 1
    return time.perf_counter() - t0, evaluations, values, deriver.cache.built, len(deriver.formulas.prices())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=None, help="only the first N symbols (default: all)")
    ap.add_argument("--sample", type=int, default=20, help="symbols for the per-date and scaling runs")
    ap.add_argument("--out", type=Path, default=None, help="write the report here instead of bench/RESULTS.md")
    args = ap.parse_args()
    if not MARKET.is_dir():
        raise SystemExit(f"the shared universe is not at {MARKET}")
    load_before = load_average()
    nodes = [expr.parse(f, GRAMMAR) for f in FORMULAS]
    t0 = time.perf_counter()
    universe = load_universe(args.symbols)
    t_load = time.perf_counter() - t0
    bars = sum(len(s.bars) for s in universe)
    print(f"{len(universe)} symbols, {bars:,} bars loaded in {t_load:.1f} s", flush=True)

    t_compute, done, computations = compute_all(universe, nodes)
    print(f"computed {len(nodes)} formulas over every bar in {t_compute:.1f} s ({computations:,} computations)",
          flush=True)
    t_read, reads = read_every_date(done, nodes)
    print(f"read all of them on every date ({reads:,} values) in {t_read:.1f} s", flush=True)
    del done

    sample = [s for s in universe if len(s.bars) == 890][:args.sample]
    days_all = [weekly([b.date for b in s.bars]) for s in sample]
    naive = [per_date(s, nodes, d) for s, d in zip(sample, days_all, strict=True)]
    per_symbol_naive = statistics.fmean(naive)
    weekly_dates = statistics.fmean(len(d) for d in days_all)
    daily_naive_estimate = per_symbol_naive / weekly_dates * (bars / len(universe)) * len(universe)
    print(f"per-date computation: {per_symbol_naive:.2f} s per symbol for {weekly_dates:.0f} weekly dates", flush=True)

    by_dates, by_bars = scaling(sample, nodes)
    print("scaling done", flush=True)
    t_pipe, evaluations, values, built, n_formulas = pipeline(universe)
    print(f"pipeline: {evaluations:,} symbol-dates, {values:,} values in {t_pipe:.1f} s", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_after = load_average()

    lines = [
        "## Derived facts: 10 price-history formulas over the universe (`python bench/derived.py`)",
        "",
        f"{dt.date.today()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, one process; load average (1, 5, 15 min) {load_before} before, {load_after} "
        "after (a shared machine: compare runs at similar load).",
        "",
        f"Universe: {len(universe):,} symbols of ../shared/data/market/ashare_universe_2022_2025, {bars:,} daily "
        f"bars (read from CSV in {t_load:.1f} s). Formulas: `" + "`, `".join(FORMULAS) + "`.",
        "",
        "| what | time | per unit |",
        "|---|---|---|",
        f"| compute the 10 formulas over every bar of every symbol (once) | {t_compute:.1f} s | "
        f"{t_compute / (bars * len(nodes)) * 1e6:.2f} us per bar and formula; {computations:,} whole-series "
        f"computations |",
        f"| read all 10 on every date of every symbol ({reads:,} values) | {t_read:.1f} s | "
        f"{t_read / reads * 1e9:.0f} ns per value |",
        f"| the same computed per date instead (each date on the series cut there), weekly dates, "
        f"{len(sample)} symbols | {sum(naive):.1f} s | {per_symbol_naive:.2f} s per symbol for "
        f"{weekly_dates:.0f} dates |",
        f"| ... extrapolated to every date of the universe | ~{daily_naive_estimate / 3600:.1f} h | "
        f"~{daily_naive_estimate / max(t_compute + t_read, 1e-9):,.0f} x the compute-once cost |",
        f"| through the pipeline: the bundled catalog's {n_formulas} price formulas, every symbol, weekly "
        f"(Deriver.price_facts, as ws.symbol_facts per date) | {t_pipe:.1f} s | {evaluations:,} symbol-dates, "
        f"{t_pipe / evaluations * 1e3:.2f} ms each; {values:,} values; {built:,} series computed (one per "
        "symbol) |",
        "",
        f"Peak memory (max RSS) {peak_mb:,.0f} MB: the first two rows keep every symbol's bars and 10 computed "
        "series at once, to time the reads apart; the pipeline keeps the series of 16 symbols "
        "(Deriver(max_symbols=16)), as a backtest going symbol by symbol needs.",
        "",
        f"A backtest's indicator cost against its dates and its bars ({len(sample)} symbols of 890 bars, the 10 "
        "formulas; 'cached' is compute once + read each date, 'per date' computes on the series cut at each date):",
        "",
        "| dates (weekly) | cached | per date | ratio |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {c:.2f} s | {p:.2f} s | {p / c:.0f} x |" for n, c, p in by_dates]
    lines += ["", "| bars of history (weekly dates over them) | cached |", "|---|---|"]
    lines += [f"| {n} | {c:.2f} s |" for n, c in by_bars]
    lines += ["", "With the cache the cost follows the bars (each formula once over the series) and hardly moves "
                  "with the number of dates (a list index per date); computed per date it follows bars x dates."]
    body = "\n".join(lines) + "\n"
    print(body)
    if args.out:
        args.out.write_text(body, encoding="utf-8")
    else:
        from sections import update

        update(ROOT / "bench" / "RESULTS.md", "derived", body)


if __name__ == "__main__":
    main()
