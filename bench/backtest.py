"""The universe backtest as a user runs it: wall time, evaluations per second, and what it would take at scale.

    python bench/backtest.py                          # the shared 2,570-stock universe, weekly, 2022-2025
    python bench/backtest.py --facts universe/        # an already imported FACTS_DIR
    python bench/backtest.py --symbols 200 --out quick.md

Without --facts, the universe is built in a temporary directory with the real import command (a copy of
the bundled facts/ plus `verdict data import` of ../shared/data/market/ashare_universe_2022_2025 with its
names list); nothing generated is kept in the repository. Then `verdict backtest --all` runs with the
bundled rules (weekly ratings, horizons 20/60/120), timed from the outside, and its own phases are read
from backtest.json. The section "backtest" of RESULTS.md gets the figures and an estimate, from the
measured evaluations per second, of 5,000 stocks x 10 years of daily ratings on 1, 8 and 64 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKET = ROOT.parent / "shared" / "data" / "market"


def verdict() -> str:
    exe = shutil.which("verdict", path=str(Path(sys.executable).parent)) or shutil.which("verdict")
    if not exe:
        raise SystemExit("the verdict command is not installed: pip install -e '.[dask,charts]'")
    return exe


def build_universe(where: Path) -> tuple[Path, float]:
    facts = where / "facts"
    shutil.copytree(ROOT / "facts", facts)
    t0 = time.perf_counter()
    out = subprocess.run([verdict(), "data", "import", str(MARKET / "ashare_universe_2022_2025"), "--facts", str(facts),
                          "--names", str(MARKET / "ashare_universe_2022_2025_stocklist.csv")],
                         capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"import failed:\n{out.stderr[-3000:]}")
    print(out.stdout[-2000:], flush=True)
    return facts, time.perf_counter() - t0


def tree_rss_mb(pid: int) -> float:
    """Memory of the command and its workers: proportional set size (forked workers share the parent's pages,
    which plain RSS would count once per process)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return total / 2**20


def run_backtest(facts: Path, out: Path, args: argparse.Namespace) -> tuple[dict, float, float]:
    cmd = [verdict(), "backtest", "--facts", str(facts), "--from", args.start, "--to", args.end, "--every",
           str(args.every), "--horizons", args.horizons, "--executor", args.executor, "--out", str(out)]
    if args.symbols:
        names = sorted(p.stem for p in (facts / "stocks").glob("*.yaml"))[:args.symbols]
        listing = out.parent / "universe.txt"
        listing.write_text("\n".join(names) + "\n", encoding="utf-8")
        cmd += ["--universe", str(listing)]
    else:
        cmd += ["--all"]
    print(" ".join(cmd), flush=True)
    peak = [0.0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def watch() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"backtest failed ({proc.returncode}):\n{stderr[-3000:]}")
    print(stdout, flush=True)
    return json.loads((out / "backtest.json").read_text(encoding="utf-8")), wall, peak[0]


def estimate(per_eval_s: float, load_s: float, post_per_symbol_date_s: float, workers: int) -> float:
    """Wall seconds of 5,000 stocks x 10 years of daily ratings: evaluations spread over the workers (their
    time per evaluation as measured), plus what does not spread: loading (in the parent, and on a cluster
    once more in every worker, side by side) and the parent's returns and statistics, which grow with
    symbol-dates."""
    evaluations = 5000 * 242 * 10
    loads = 1 if workers <= (os.cpu_count() or 1) else 2  # forked local workers share the parent's load
    return evaluations * per_eval_s / workers + loads * load_s + evaluations * post_per_symbol_date_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facts", type=Path, help="an imported FACTS_DIR (default: import the shared universe)")
    ap.add_argument("--symbols", type=int, default=0, help="only the first N stocks (0: all)")
    ap.add_argument("--from", dest="start", default="2022-01-04")
    ap.add_argument("--to", dest="end", default="2025-09-03")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--horizons", default="20,60,120")
    ap.add_argument("--executor", default="local")
    ap.add_argument("--keep", type=Path, help="keep the backtest outputs here")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="verdict-bench-backtest-") as tmp:
        facts, import_s = (args.facts, 0.0) if args.facts else build_universe(Path(tmp))
        out = args.keep or Path(tmp) / "out"
        doc, wall, peak = run_backtest(facts, out, args)
    load_after = os.getloadavg()
    run, uni = doc["run"], doc["universe"]
    phases = run["phases_seconds"]
    workers = os.cpu_count() or 1  # local and a local Dask cluster: one worker per core
    evaluations = run["evaluations"]
    per_eval = phases["rating"] * workers / evaluations  # worker CPU seconds per evaluation
    symbol_dates = uni["symbols"] * uni["rating_dates"]
    post = (phases["returns"] + phases["statistics"]) / symbol_dates
    load_scaled = phases["load"] * 5000 * 2420 / (uni["symbols"] * 890)  # loading grows with bars
    rows = [(w, estimate(per_eval, load_scaled, post, w)) for w in (1, 8, 64)]

    def hm(s: float) -> str:
        return f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.1f} min"

    text = [f"## Universe backtest: {uni['symbols']:,} stocks, {uni['from']} .. {uni['to']}, every {uni['every']} "
            f"trading days, horizons {', '.join(map(str, uni['horizons']))}", "",
            f"`python bench/backtest.py {' '.join(sys.argv[1:])}`".replace("``", "`(defaults)`") + f" on "
            f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (the shared host's other work competes for "
            "the same cores).", "",
            "| measure | value |", "|---|---|",
            f"| wall time of `verdict backtest --all` (start to exit, outputs and charts written) | **{wall:.0f} s "
            f"({wall / 60:.1f} min)** |",
            f"| evaluations (symbol-dates rated) | {evaluations:,} of {symbol_dates:,} symbol-dates |",
            f"| evaluations per second, rating phase ({run['executor']}, {workers} workers) | "
            f"{run['evaluations_per_second']:,} |",
            f"| evaluations per second, whole run | {evaluations / wall:,.0f} |",
            "| phases: load / workers ready / rating / returns / statistics | "
            + " / ".join(f"{phases[k]:.1f}" for k in ("load", "start", "rating", "returns", "statistics")) + " s |",
            f"| peak memory, all processes | {peak:,.0f} MB |"]
    if import_s:
        text.append(f"| building the universe first (`verdict data import`, not in the wall time above) | "
                    f"{import_s:.0f} s |")
    text += ["", "Estimate for 5,000 stocks x 10 years of daily ratings (12.1 million evaluations), from the "
             f"figures above: {per_eval * 1000:.2f} ms of worker time per evaluation, spread over the workers; "
             f"loading scaled to 5,000 x 10 years of bars ({load_scaled:.0f} s; on a cluster once in the parent and "
             "once in every worker, side by side), and the parent's returns and statistics "
             f"({post * 1e6:.1f} us per symbol-date), which do not spread:", "",
             "| workers | estimated wall time |", "|---|---|"]
    text += [f"| {w} | {hm(s)} |" for w, s in rows]
    text += ["", "Assumes a worker's time per evaluation stays as measured (indicators are computed once per "
             "symbol, so a longer history adds per symbol, not per date), workers on machines of this speed, and "
             "a cluster (Dask, `--executor dask:ADDRESS`) for 8 and 64; at 64 the single parent's share "
             "(loading, returns, statistics) dominates."]
    sys.path.insert(0, str(Path(__file__).parent))
    from sections import update

    update(args.out, "backtest", "\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
