"""Measure the analyst's workbench: a what-if grid for one symbol, and what a screen's filter costs.

    python bench/workbench.py                  # section "workbench" of bench/RESULTS.md
    python bench/workbench.py --runs 5 --symbols 1000 --out quick.md

1. `verdict what-if 600111 --grid ... --grid ...` (7 x 5 = 35 cells) start to finish, each run a new
   process, with and without the heat map (`--chart`), and the grid alone in-process (per cell).
2. A screen of the synthetic universe of bench/bench.py (5,000 symbols x 200 rules), not recorded,
   printed as CSV: without a filter, and with `--where` + `--columns` + `--sort` (the filter and the
   columns are evaluated in the workers on the unrendered outcomes); and a recorded `--top 20` screen,
   which renders and records the traces of the 20 symbols it keeps only.
Timings move with the shared machine's load: the load average and the calibration loop of bench.py
are written beside them. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GRID = ["--grid", "stock.earnings_growth_low_pct=60:120:10", "--grid", "stock.pe_ttm=30:70:10"]  # 7 x 5


def _verdict() -> list[str]:
    exe = Path(sys.executable).with_name("verdict")
    return [str(exe)] if exe.exists() else [shutil.which("verdict") or "verdict"]


def _times(cmd: list[str], runs: int, cwd: Path, env: dict[str, str] | None = None) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        out.append(time.perf_counter() - t0)
    return sorted(out)


def _row(label: str, times: list[float]) -> str:
    return (f"| {label} | {len(times)} | **{statistics.median(times):.2f} s** | {times[0]:.2f} s | "
            f"{times[int(len(times) * 0.9)]:.2f} s |")


def grid_figures(runs: int) -> list[str]:
    from engine.pipeline import Workspace
    from engine.scenarios import grid, parse_axis

    rows = []
    with tempfile.TemporaryDirectory(prefix="verdict-grid-") as tmp:
        rows.append(_row("`what-if 600111` 7 x 5 grid, table", _times([*_verdict(), "what-if", "600111", *GRID],
                                                                      runs, ROOT)))
        rows.append(_row("the same with `--chart grid.png`", _times(
            [*_verdict(), "what-if", "600111", *GRID, "--chart", str(Path(tmp) / "g.png")], runs, ROOT)))
    ws = Workspace.open(ROOT / "rules", ROOT / "facts")
    axes = [parse_axis(GRID[1], ws), parse_axis(GRID[3], ws)]
    best = 1e9
    for _ in range(runs):
        t0 = time.perf_counter()
        g = grid(ws, "600111", axes)
        best = min(best, time.perf_counter() - t0)
    cells = sum(len(r) for r in g.cells)
    return [*rows, f"| grid alone, in-process (best of {runs}) | {cells} cells | **{best:.3f} s** | "
                   f"{best / cells * 1000:.1f} ms a cell | |"]


def screen_figures(symbols: int, runs: int) -> list[str]:
    from bench import write_universe

    rows = []
    with tempfile.TemporaryDirectory(prefix="verdict-screen-") as tmp:
        root = Path(tmp)
        write_universe(root, symbols, 200, 20260119)
        env = {**os.environ, "VERDICT_CACHE_DIR": str(root / "cache")}
        base = [*_verdict(), "evaluate", "--all", "--no-record", "--format", "csv"]
        subprocess.run(base, cwd=root, check=True, stdout=subprocess.DEVNULL, env=env)  # warm the parse cache
        rows.append(_row(f"`evaluate --all --no-record -f csv`, {symbols} symbols x 200 rules",
                         _times(base, runs, root, env)))
        screen = [*base, "--where", "score > 0 and stock.f01 < 50", "--columns", "rating,score,f01,f02,upside,warning",
                  "--sort", "f01:asc"]
        rows.append(_row("the same with `--where` + `--columns` + `--sort`", _times(screen, runs, root, env)))
        recorded = [*_verdict(), "evaluate", "--all", "--format", "csv", "--audit-db", str(root / "audit.db")]
        rows.append(_row("recorded (traces rendered), `--top 20`: 20 traces", _times(
            [*recorded, "--top", "20"], runs, root, env)))
    return rows


def main() -> int:
    from sections import update

    from bench import calibrate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--screen-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args()
    before, load_before = calibrate(), os.getloadavg()
    grid_rows = grid_figures(args.runs)
    screen_rows = screen_figures(args.symbols, args.screen_runs)
    after, load_after = calibrate(), os.getloadavg()
    body = "\n".join([
        "## Workbench: a what-if grid, and what a screen's filter costs", "",
        f"Command: `{' '.join(['python bench/workbench.py', *sys.argv[1:]])}`",
        "",
        "| what | runs | median | fastest | p90 |", "|---|---|---|---|---|",
        *grid_rows, *screen_rows, "",
        f"Load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (2 cores); calibration loop "
        f"{before:.3f} s before, {after:.3f} s after (bench.py's scale). The grid's 35 cells are rated without "
        "a trace (rating and score are all a cell shows); a process start and the workspace load are most "
        "of its time.", ""])
    update(args.out, "workbench", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
