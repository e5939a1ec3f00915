"""Loading a universe: the warm `load_facts(..., partial=True)` of bench.py's seeded universe.

    python bench/load.py                   # 5,000 symbols, 3 rounds
    python bench/load.py --symbols 2000    # quicker, while iterating

Builds the universe with `bench.bench.write_universe` in a temporary folder, warms a parse cache
kept beside it (VERDICT_CACHE_DIR points there, so the user's own cache is untouched), then loads it
in a fresh process per round: CPU and wall time of opening the cache and `load_facts`, the process's
peak RSS and what the loaded facts hold per symbol. Medians of the rounds; prints a Markdown table
with the machine's load average (`uptime`).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import fresh, machine, peak_rss_mb, rss_mb, write_universe  # noqa: E402


def load_once(facts: str, cache_dir: str) -> dict[str, Any]:
    """One warm load in this (fresh) process: times, peak RSS, memory the loaded facts keep."""
    os.environ["VERDICT_CACHE_DIR"] = cache_dir
    from engine.load import load_facts
    from engine.parsecache import ParseCache

    root = Path(facts)
    gc.collect()
    before = rss_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    cache = ParseCache.default(root)
    base = load_facts(root, partial=True, cache=cache)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert cache is not None and cache.misses == 0, "the parse cache was not warm"
    del cache
    gc.collect()
    kept = rss_mb() - before
    return {"cpu": cpu, "wall": wall, "peak": peak_rss_mb(), "kept_kb": kept * 1024 / max(len(base.stocks), 1),
            "stocks": len(base.stocks), "skipped": len(base.skipped_files)}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--label", default="", help="names the row (e.g. before, after)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="verdict-load-") as tmp:
        here = Path(tmp)
        write_universe(here, args.symbols, 25, args.seed)
        facts, cache_dir = str(here / "facts"), str(here / "cache")
        _warm(facts, cache_dir)
        start = uptime()
        runs = [fresh(load_once, facts, cache_dir) for _ in range(args.rounds)]
        end = uptime()
    med = {k: statistics.median(r[k] for r in runs) for k in ("cpu", "wall", "peak", "kept_kb")}
    label = args.label or "load_facts"
    print(f"Machine: {machine()}")
    print(f"Load before: {start}")
    print(f"Load after:  {end}\n")
    print(f"| run | symbols | CPU s (median of {args.rounds}) | wall s | symbols/s (CPU) | peak RSS MB | "
          "kept per symbol KB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {label} | {runs[0]['stocks']:,} | {med['cpu']:.2f} | {med['wall']:.2f} | "
          f"{runs[0]['stocks'] / med['cpu']:,.0f} | {med['peak']:.0f} | {med['kept_kb']:.1f} |")
    print("\nrounds (CPU s): " + ", ".join(f"{r['cpu']:.2f}" for r in runs))
    return 0


def _warm(facts: str, cache_dir: str) -> None:
    """Parse every file once so the measured loads find the cache warm (a cold load misses every file)."""
    fresh(_fill, facts, cache_dir)


def _fill(facts: str, cache_dir: str) -> int:
    os.environ["VERDICT_CACHE_DIR"] = cache_dir
    from engine.load import load_facts
    from engine.parsecache import ParseCache

    cache = ParseCache.default(Path(facts))
    assert cache is not None, "no parse cache could be kept in the temporary folder"
    return len(load_facts(Path(facts), partial=True, cache=cache).stocks)


if __name__ == "__main__":
    raise SystemExit(main())
