"""Concurrent writers on one audit log: N processes x M evaluations, then verify the chain.

    python bench/audit_stress.py --db audit-stress.sqlite3 --procs 8 --runs 50

Each worker loads the bundled rules and facts once, then evaluates and records M times. The parent
checks that every record landed, the hash chain is valid and no worker saw "database is locked".
Used by tests/test_audit.py; run it by hand with larger numbers to stress a machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ["600111", "000831", "300748", "300224", "300127"]


def worker(db: str, runs: int, index: int) -> str:
    sys.path.insert(0, str(ROOT))
    from engine.audit import AuditLog
    from engine.pipeline import Workspace

    ws = Workspace.open(ROOT / "rules", ROOT / "facts")
    log = AuditLog(db)
    try:
        for i in range(runs):
            ev = ws.evaluate(SYMBOLS[(index + i) % len(SYMBOLS)])
            log.append(run_id=ev.run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
                       engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files)
    except Exception as exc:  # reported to the parent, which fails the run
        return f"worker {index}: {type(exc).__name__}: {exc}"
    finally:
        log.close()
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    start = time.perf_counter()
    # A worker that dies (a crash, the OOM killer) breaks the executor at once; a Pool would wait forever.
    with ProcessPoolExecutor(args.procs, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(worker, args.db, args.runs, i) for i in range(args.procs)]
        errors = []
        for i, future in enumerate(futures):
            try:
                errors.append(future.result())
            except BrokenProcessPool as exc:
                errors.append(f"worker {i}: died ({exc})")
        errors = [e for e in errors if e]
    elapsed = time.perf_counter() - start
    sys.path.insert(0, str(ROOT))
    from engine.audit import AuditLog

    log = AuditLog(args.db)
    result = log.verify()
    print(f"records={result.records} expected={args.procs * args.runs} chain_valid={result.ok} "
          f"errors={len(errors)} seconds={elapsed:.1f}")
    for e in errors:
        print(e)
    if result.problem:
        print(result.problem)
    return 0 if result.ok and not errors and result.records == args.procs * args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
