"""Loading a universe: the warm `load_facts(..., partial=True)` of bench.py's seeded universe.

    python bench/load.py                                # 5,000 symbols, 3 rounds
    python bench/load.py --symbols 2000                 # quicker, while iterating
    python bench/load.py --against ../verdict-before    # the same rounds with another checkout's engine

Builds the universe with `bench.bench.write_universe` in a temporary folder, warms a parse cache per
engine kept there (VERDICT_CACHE_DIR points at it, so the user's own cache is untouched), then loads
it in a fresh process per round: CPU and wall time of opening the cache and `load_facts`, the
process's peak RSS, and the memory the loaded facts keep per symbol (RSS after, less RSS before, the
cache freed). With --against, the rounds alternate between the two engines, so both see the same
machine. Medians of the rounds; prints a Markdown table and the load average (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import machine, write_universe  # noqa: E402

# Run in a fresh interpreter with the engine of argv[1]: one warm load, its figures as JSON.
CHILD = r"""
import gc, json, os, resource, sys, time
engine_root, facts, cache_dir = sys.argv[1:4]
sys.path.insert(0, engine_root)
os.environ["VERDICT_CACHE_DIR"] = cache_dir
from pathlib import Path
import engine
from engine.load import load_facts
from engine.parsecache import ParseCache

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

root = Path(facts)
gc.collect()
before = rss()
cpu0, wall0 = time.process_time(), time.perf_counter()
cache = ParseCache.default(root)
base = load_facts(root, partial=True, cache=cache)
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
misses = cache.misses if cache is not None else -1
del cache
gc.collect()
print(json.dumps({"cpu": cpu, "wall": wall, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "kept_kb": (rss() - before) * 1024 / max(len(base.stocks), 1), "stocks": len(base.stocks),
                  "skipped": len(base.skipped_files), "misses": misses, "engine": engine.__file__}))
"""


def load_once(engine_root: Path, facts: Path, cache_dir: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(engine_root), str(facts), str(cache_dir)],
                         capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    if not Path(result["engine"]).is_relative_to(engine_root):
        raise SystemExit(f"the child loaded {result['engine']}, not the engine of {engine_root}")
    return result


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
    ap.add_argument("--against", type=Path, help="another checkout whose engine/ to measure in the same rounds")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--against-label", default="--against")
    args = ap.parse_args()
    engines = {args.label: ROOT}
    if args.against:
        engines[args.against_label] = args.against.resolve()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
    with tempfile.TemporaryDirectory(prefix="verdict-load-") as tmp:
        here = Path(tmp)
        write_universe(here, args.symbols, 25, args.seed)
        facts = here / "facts"
        caches = {name: here / f"cache-{i}" for i, name in enumerate(engines)}
        for name, root in engines.items():  # warm: every file parsed once by that engine's parser
            load_once(root, facts, caches[name])
        start = uptime()
        for _ in range(args.rounds):
            for name, root in engines.items():
                result = load_once(root, facts, caches[name])
                if result["misses"] != 0:
                    raise SystemExit(f"{name}: the parse cache was not warm ({result['misses']} misses)")
                runs[name].append(result)
        end = uptime()
    print(f"Machine: {machine()}")
    print(f"Load before: {start}")
    print(f"Load after:  {end}\n")
    print(f"| engine | symbols | CPU s (median of {args.rounds}) | wall s | symbols/s (CPU) | peak RSS MB | "
          "kept per symbol KB |")
    print("|---|---|---|---|---|---|---|")
    medians: dict[str, dict[str, float]] = {}
    for name, rs in runs.items():
        med = medians[name] = {k: statistics.median(r[k] for r in rs) for k in ("cpu", "wall", "peak", "kept_kb")}
        print(f"| {name} | {rs[0]['stocks']:,} | {med['cpu']:.2f} | {med['wall']:.2f} | "
              f"{rs[0]['stocks'] / med['cpu']:,.0f} | {med['peak']:.0f} | {med['kept_kb']:.1f} |")
    print()
    for name, rs in runs.items():
        print(f"{name}: CPU s per round " + ", ".join(f"{r['cpu']:.2f}" for r in rs))
    if args.against:
        ours, theirs = medians[args.label], medians[args.against_label]
        print(f"\n{args.against_label} / {args.label}: CPU {theirs['cpu'] / ours['cpu']:.2f}x, wall "
              f"{theirs['wall'] / ours['wall']:.2f}x, peak RSS {theirs['peak'] / ours['peak']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
