"""Import the shared universe (2,570 files) into a copy of facts/, re-import it, load it, screen it.

    python bench/import_universe.py [--keep DIR] [--jobs N] [--out bench/RESULTS.md]

Prints the import summary, the timings (with the load average), the counts of the data README
recomputed independently from the raw files (union calendar, as the README measured them), and the
ratings `verdict evaluate --all --no-record` gives over the imported directory, and writes them to the
section "import" of RESULTS.md (the other bench scripts keep it). Nothing is timed in tests.
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKET = ROOT.parent / "shared" / "data" / "market"
UNIVERSE = MARKET / "ashare_universe_2022_2025"
NAMES = MARKET / "ashare_universe_2022_2025_stocklist.csv"
sys.path.insert(0, str(ROOT))


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def readme_counts() -> dict[str, int]:
    """The data README's measures, recomputed on this folder from the raw files (union of their dates)."""
    dates: dict[str, list[str]] = {}
    for p in sorted(UNIVERSE.glob("*.csv")):
        with p.open() as f:
            dates[p.stem] = [row[0] for row in csv.reader(f)][1:]
    union = sorted({d for ds in dates.values() for d in ds})
    pos = {d: i for i, d in enumerate(union)}
    gaps = files_gapped = 0
    for ds in dates.values():
        idx = [pos[d] for d in ds]
        n = sum(1 for a, b in itertools.pairwise(idx) if b - a > 1)
        gaps += n
        files_gapped += n > 0
    return {"files": len(dates), "dates": len(union), "complete": sum(len(ds) == len(union) for ds in dates.values()),
            "start_late": sum(ds[0] > union[0] for ds in dates.values()),
            "end_early": sum(ds[-1] < union[-1] for ds in dates.values()),
            "files_with_gaps": files_gapped, "gaps": gaps}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=Path, help="build the facts directory here and keep it")
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    from engine.dataimport import import_folder
    from engine.load import load_facts
    from engine.parsecache import ParseCache

    work = args.keep or Path(tempfile.mkdtemp(prefix="verdict-universe-"))
    facts = work / "facts"
    if facts.exists():
        shutil.rmtree(facts)
    shutil.copytree(ROOT / "facts", facts)
    os.environ.setdefault("VERDICT_CACHE_DIR", str(work / "cache"))
    print(f"load average before: {load_avg()}  ({os.cpu_count()} cores)")
    t = time.perf_counter()
    s = import_folder(UNIVERSE, facts, NAMES, jobs=args.jobs or None)
    first = time.perf_counter() - t
    print(s.render())
    print(f"import:    {first:.1f} s (load average {load_avg()})")
    rows.append(("import of 2,570 files into a copy of facts/", f"{first:.1f} s (load average {load_avg()})"))
    before = tree(facts)
    t = time.perf_counter()
    again = import_folder(UNIVERSE, facts, NAMES, jobs=args.jobs or None)
    second = time.perf_counter() - t
    same = tree(facts) == before
    print(f"re-import: {second:.1f} s, {again.count('unchanged')} unchanged, files byte-identical: {same} "
          f"(load average {load_avg()})")
    rows.append(("re-import of the unchanged folder", f"{second:.1f} s, {again.count('unchanged'):,} unchanged, "
                 f"every file byte-identical: {same} (load average {load_avg()})"))
    for label in ("load (cold parse cache)", "load (warm parse cache)"):
        t = time.perf_counter()
        base = load_facts(facts, cache=ParseCache.default(facts))  # as Workspace.open loads it
        took = time.perf_counter() - t
        print(f"{label}: {took:.1f} s, {len(base.stocks)} stocks (load average {load_avg()})")
        rows.append((f"loading the {len(base.stocks):,} stocks, {label[6:-1]}", f"{took:.1f} s (load average "
                     f"{load_avg()})"))
    counts = readme_counts()
    print("data README measures, recomputed on this folder:", counts)
    d = s.as_dict()
    mine = {k: d[k] for k in ("files", "imported", "complete", "start_late", "end_early", "files_with_gaps", "gaps",
                              "suspended_days", "bad")}
    print("import summary counts:", mine)
    rows.append(("README's measures recomputed from the raw files (union calendar)",
                 ", ".join(f"{k} {v:,}" for k, v in counts.items())))
    rows.append(("the import's summary", ", ".join(f"{k} {v:,}" for k, v in mine.items())))
    for as_of in ([], ["--as-of", "2025-09-03"]):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", "evaluate", "--all",
                              "--no-record", "--format", "csv", "--facts", str(facts), "--rules", str(ROOT / "rules"),
                              *as_of], capture_output=True, text=True, cwd=ROOT)
        evaluated = rows_of(out.stdout)
        ratings = collections.Counter(r["rating"] for r in evaluated)
        report = {r["symbol"]: r["rating"] for r in evaluated if r["symbol"] in
                  ("600111.SH", "000831.SZ", "300748.SZ", "300224.SZ", "300127.SZ")}
        print(f"evaluate --all {' '.join(as_of) or '(base date)'}: exit {out.returncode}, {len(evaluated)} rows "
              f"in {time.perf_counter() - t:.1f} s (load average {load_avg()}); ratings {dict(ratings)}; "
              f"report stocks {report}")
        err = out.stderr.strip().splitlines()
        print(f"  stderr: {len(err)} line(s)" + (": " + " | ".join(err[:4]) if err else ""))
        when = " ".join(as_of) or "(as of facts/base.yaml)"
        rows.append((f"`verdict evaluate --all --no-record --format csv` {when}",
                     f"exit {out.returncode}, {len(evaluated):,} rows, {len(err)} stderr line(s), "
                     f"{time.perf_counter() - t:.0f} s (load average {load_avg()}); ratings "
                     + ", ".join(f"{k} {v:,}" for k, v in sorted(ratings.items())) + f"; report stocks {report}"))
    text = ["## Import of the shared universe (`bench/import_universe.py`)", "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, commit "
            f"{_commit()}. The machine is shared: the load average beside each figure says how busy it was.",
            "", "| what | figure |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows] + ["", NOTE]
    sys.path.insert(0, str(Path(__file__).parent))
    from sections import update

    update(args.out, "import", "\n".join(text))
    if not args.keep:
        shutil.rmtree(work)


NOTE = (
    "Reading it: the import's counts equal the data README's measures recomputed on these 2,570 files "
    "(the README's own figures, 2,348 complete, 283 late starts, 405 files with 611 gaps, are for the "
    "source's 3,020 files). As of the bundle's date (2026-01-20) no universe stock has a price bar within"
    " the 7-day freshness limit (the data ends 2025-09-03), so only the bundle's five are rated and the "
    'others are reported as having no fresh data; as of 2025-09-03 the bundled rules rate every stock '
    "with fresh prices on its price history alone (trend, momentum, volume and technical signals; the "
    "report's valuation and supply-demand facts are the five's only), so none reaches Buy (the ratings "
    'are in the table), and report the two whose data ended earlier (000627, 601989). CPU time is a '
    'fraction of these wall times on a shared host.'
)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
