"""The pipeline and durable_rules itself on several Python versions, side by side.

    python bench/pythons.py .venv/bin/python .venv-3.13/bin/python        # 2,000 symbols x 200 rules
    python bench/pythons.py --symbols 5000 --rounds 3 PY1 PY2 ...

One seeded synthetic universe (bench/bench.py's generator) is written once; then, round after round,
each interpreter runs the same two loops in a fresh process: the pipeline (`Workspace.run` per
symbol, as a screen runs it) and "durable direct" (the same compiled rulesets driven on durable's
C engine with no trace, bench.py's loop). Rounds alternate the interpreters, so a shared host's load
drifts across all of them alike; CPU time is reported beside wall time because it moves less with
the load of other processes. Medians over rounds. Not part of the test suite.
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
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


def child(root: Path, n: int) -> dict[str, Any]:
    """One interpreter's measurements, in this process."""
    import platform

    import bench  # type: ignore[import-not-found]

    symbols = [f"{600000 + i:06d}.SH" for i in range(n)]
    out: dict[str, Any] = {"python": platform.python_version()}
    for name, run in (("pipeline", lambda: bench.run_pipeline(str(root), symbols, collect=True)),
                      ("direct", lambda: bench.run_durable_direct(str(root), symbols))):
        r = run()  # medians over its passes of the evaluation loop alone (loading is not timed)
        out[name] = {"per_s": n / r["eval_s"], "cpu_per_s": n / r["cpu_s"],
                     "fired": sum(len(v) for v in r["fired"].values())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pythons", nargs="*", help="interpreters to compare (each with verdict installed)")
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20260119)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.symbols)))
        return 0
    import bench

    with tempfile.TemporaryDirectory(prefix="verdict-pythons-") as tmp:
        root = Path(tmp)
        bench.write_universe(root, args.symbols, args.rules, args.seed)
        env = {**os.environ, "VERDICT_CACHE_DIR": "off"}
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.rounds):
            for py in args.pythons:
                proc = subprocess.run([py, __file__, "--child", str(root), "--symbols", str(args.symbols)],
                                      capture_output=True, text=True, env=env, check=True)
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                runs.setdefault(res["python"], []).append(res)
                print(f"round {r + 1}: {json.dumps(res)}", flush=True)
    fired = {v: {x["pipeline"]["fired"] for x in rs} | {x["direct"]["fired"] for x in rs} for v, rs in runs.items()}
    same = len({f for fs in fired.values() for f in fs}) == 1
    load = os.getloadavg()[0]
    print(f"\n{args.symbols} symbols x {args.rules} rules, {args.rounds} alternating rounds, load average "
          f"{load:.1f} at the end; same firings on every Python: {'yes' if same else 'NO'}\n")
    print("| Python | pipeline, wall | pipeline, CPU | durable direct, wall | durable direct, CPU "
          "| pipeline / direct (CPU) |")
    print("|---|---|---|---|---|---|")
    for v, rs in runs.items():
        def med(kind: str, key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(x[kind][key] for x in rs)
        print(f"| {v} | {med('pipeline', 'per_s'):,.0f} /s | {med('pipeline', 'cpu_per_s'):,.0f} /s "
              f"| {med('direct', 'per_s'):,.0f} /s | {med('direct', 'cpu_per_s'):,.0f} /s "
              f"| {med('direct', 'cpu_per_s') / med('pipeline', 'cpu_per_s'):.2f}x |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
