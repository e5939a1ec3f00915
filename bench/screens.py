"""Benchmark: what a screen costs, end to end, against an honest floor. Not part of the test suite.

    python bench/screens.py                                  # 5,000 symbols x 200 rules, 3 rounds
    python bench/screens.py --symbols 5000 --rules 1000 --rounds 1 --only csv,recorded
    python bench/screens.py --symbols 1000 --rules 200 --rounds 1 --out quick.md

On bench/bench.py's seeded universe it measures, in CPU time and wall time:

- the floor: the rule book's compiled conditions as one generated Python function, one pass in
  dependency order (a rule consuming a signal comes after the rules producing it), facts read from
  a plain dict prepared beforehand. It is generated here, from the parsed conditions, for this
  measurement only; the engine never executes generated code (durable_rules does the matching);
- durable direct: the same compiled rulesets on durable_rules' engine, no trace (bench/bench.py);
- the pipeline: `Workspace.run` per symbol in one process (facts, durable, resolution, outcome);
- the screens as a user runs them, `verdict evaluate --all` in a subprocess, load, fork and
  collection included: unrecorded CSV, recorded CSV (the default: one audit record per symbol),
  `--format json` and `--format jsonl` unrecorded, and a JSON screen of rows (`--columns`). CPU time
  is the process's and its workers' (wait4), peak RSS is the largest single process's;
- the stages: what a `--format json` screen's worker spends per symbol on each part of its work
  (evaluating, the fragility checks, capturing the trace, rendering, indenting), in one process.

All three matchers must fire the same rules for every symbol (checked). Rounds are interleaved and
medians reported; the machine's load average (`uptime`) is written beside the figures, since a
loaded machine inflates wall time far more than CPU time.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import fresh, machine, run_durable_direct, write_universe  # noqa: E402

SCREENS = {
    "csv": ["--no-record", "--format", "csv"],
    "recorded": ["--format", "csv"],
    "json": ["--no-record", "--format", "json"],
    "jsonl": ["--no-record", "--format", "jsonl"],
    "json-rows": ["--no-record", "--format", "json", "--columns", "rating,score,fragile,upside,coverage"],
}
STAGES = ("evaluate", "score edges", "facts' fragility", "trace", "render", "indent")


# ------------------------------------------------------------------------------ the floor


def _py(node: Any, names: dict[str, str]) -> str:
    """A condition as a Python expression over `v` (fact values, None when missing) and `sig` (signals
    emitted). Only what the bench's generated rules use; anything else is refused."""
    from engine import expr

    if isinstance(node, expr.BoolOp):
        return "(" + f" {node.op} ".join(_py(i, names) for i in node.items) + ")"
    if isinstance(node, expr.Not):
        return f"(not {_py(node.item, names)})"
    if isinstance(node, (expr.SignalRef, expr.Truth)) and isinstance(getattr(node, "item", node), expr.SignalRef):
        ref = getattr(node, "item", node)
        return f"({ref.name!r} in sig)"
    if isinstance(node, expr.Cmp) and isinstance(node.left, expr.FactRef) and isinstance(node.right, expr.Const):
        var = names.setdefault(node.left.path, f"x{len(names)}")
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[node.op]
        return f"({var} is not None and {var} {op} {float(node.right.value)!r})"
    raise ValueError(f"the floor does not generate {type(node).__name__}")


def generated_rulebook(rules: list[Any], level: dict[str, int]) -> Any:
    """The rule book as one Python function `book(v) -> fired rule ids`, rules in dependency order."""
    names: dict[str, str] = {}
    body = []
    for r in sorted(rules, key=lambda r: level[r.id]):
        test = _py(r.cond, names)
        emits = "".join(f"; sig[{s.name!r}] = True" for s in r.rule.then.signals())
        body.append(f"    if {test}:\n        fired.append({r.id!r}){emits}")
    head = [f"    {var} = v.get({path!r})" for path, var in names.items()]
    source = "def book(v):\n    sig = {}\n    fired = []\n" + "\n".join(head + body) + "\n    return fired\n"
    scope: dict[str, Any] = {}
    exec(compile(source, "<generated rule book>", "exec"), scope)  # bench only: generated from parsed nodes
    return scope["book"]


def run_floor(root: str, symbols: list[str], passes: int = 3) -> dict[str, Any]:
    from engine.compile import strata
    from engine.pipeline import Workspace

    ws = Workspace.open(Path(root) / "rules", Path(root) / "facts")
    level, _ = strata(ws.book.rules)
    book = generated_rulebook(ws.book.rules, level)
    values = {s: {p: fv.value for p, fv in ws.symbol_facts(s).values().items() if fv.is_point} for s in symbols}
    fired: dict[str, list[str]] = {}
    walls, cpus = [], []
    for p in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in symbols:
            out = book(values[s])
            if p == 0:
                fired[s] = sorted(out)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "fired": fired}


def run_pipeline(root: str, symbols: list[str], passes: int = 3, budget: int | None = None) -> dict[str, Any]:
    """Workspace.run per symbol (what a screen's worker does), median CPU and wall of `passes`; `budget`
    overrides the compiler's condition-node budget per ruleset (bench/sessions.py's larger rulesets)."""
    import engine.compile
    from engine.pipeline import Workspace

    if budget is not None:
        engine.compile.NODE_BUDGET = budget
    ws = Workspace.open(Path(root) / "rules", Path(root) / "facts", cache=None)
    fired: dict[str, list[str]] = {}
    walls, cpus = [], []
    for p in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in symbols:
            run = ws.run(s, run_id="bench")
            if p == 0:
                fired[s] = sorted(f.rule for f in run.firings)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "fired": fired,
            "shards": len(ws.compiled.shards)}


def run_stages(root: str, symbols: list[str]) -> dict[str, Any]:
    """CPU per symbol of each thing a `--format json` screen's worker does for it, in one process, in the
    order it does them: what a JSON screen costs, part by part (one pass; the screens give the totals)."""
    from engine.jsontext import indented
    from engine.pipeline import Workspace
    from engine.render import render

    ws = Workspace.open(Path(root) / "rules", Path(root) / "facts")
    cpu = dict.fromkeys(STAGES, 0.0)
    size = 0
    for s in symbols:
        c0 = time.process_time()
        run = ws.run(s)
        c1 = time.process_time()
        run.summary()
        c2 = time.process_time()
        run.fragility(True)
        c3 = time.process_time()
        trace = run.trace(True)
        c4 = time.process_time()
        rendered = render(trace, ws.rules, ws.compiled)
        c5 = time.process_time()
        size += len(indented(rendered, 2))
        c6 = time.process_time()
        for stage, took in zip(STAGES, (c1 - c0, c2 - c1, c3 - c2, c4 - c3, c5 - c4, c6 - c5), strict=True):
            cpu[stage] += took
    return {"ms": {k: v / len(symbols) * 1e3 for k, v in cpu.items()}, "bytes": size / len(symbols)}


def stages_table(r: dict[str, Any], n: int) -> str:
    ms = r["ms"]
    total = sum(ms.values())
    out = [f"What a `--format json` screen's worker spends per symbol (CPU, one process, {n:,} symbols; an "
           f"indented document is {r['bytes'] / 1024:,.0f} KB):", "",
           "| stage | ms per symbol | share |", "|---|---|---|"]
    out += [f"| {k} | {v:.3f} | {v / total:.0%} |" for k, v in ms.items()]
    out.append(f"| all | {total:.3f} | |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ end to end


def run_screen(root: Path, args: list[str], out: Path) -> dict[str, float]:
    """`verdict evaluate --all ARGS` as a user runs it; wall, CPU (process and workers) and peak RSS."""
    exe = shutil.which("verdict", path=str(Path(sys.executable).parent)) or "verdict"
    audit = root / "audit.sqlite3"
    for p in (audit, Path(f"{audit}-wal"), Path(f"{audit}-shm")):
        p.unlink(missing_ok=True)  # each recorded run starts a fresh log
    env = {**os.environ, "VERDICT_AUDIT_DB": str(audit), "VERDICT_CACHE_DIR": str(root / "cache")}
    with open(out, "wb") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen([exe, "evaluate", "--all", "--rules", str(root / "rules"), "--facts",
                                 str(root / "facts"), *args], stdout=sink, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"verdict evaluate {' '.join(args)} failed: {err}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "bytes": out.stat().st_size}


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20260119)
    ap.add_argument("--only", default="floor,direct,pipeline,stages," + ",".join(SCREENS),
                    help="what to measure, comma-separated (floor, direct, pipeline, stages, " + ", ".join(SCREENS)
                    + ")")
    ap.add_argument("--out", type=Path, default=None, help="append the table to this file (default: print only)")
    a = ap.parse_args()
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    loads = [load_average()]
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in only if k != "stages"}
    stages: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="verdict-screens-") as tmp:
        root = Path(tmp)
        write_universe(root, a.symbols, a.rules, a.seed)
        from engine.pipeline import Workspace

        symbols = Workspace.open(root / "rules", root / "facts").symbols()
        fired: dict[str, dict[str, list[str]]] = {}
        if any(what in SCREENS for what in only):
            run_screen(root, SCREENS["csv"], root / "warm.out")  # the parse cache warm, as a user's is
        if "stages" in only:
            stages = fresh(run_stages, tmp, symbols[:1000])
            print(f"stages: {stages}", file=sys.stderr)
        for rnd in range(a.rounds):
            for what in rows:
                if what in SCREENS:
                    rows[what].append(run_screen(root, SCREENS[what], root / f"{what}.out"))
                elif what == "floor":
                    r = fresh(run_floor, tmp, symbols)
                    fired["floor"] = r.pop("fired")
                    rows[what].append(r)
                elif what == "pipeline":
                    r = fresh(run_pipeline, tmp, symbols)
                    fired["pipeline"] = r.pop("fired")
                    rows[what].append(r)
                elif what == "direct":
                    r = fresh(run_durable_direct, tmp, symbols)
                    fired["direct"] = r["fired"]
                    rows[what].append({"wall_s": r["eval_s"], "cpu_s": r["cpu_s"]})
                print(f"round {rnd + 1} {what}: {rows[what][-1]}", file=sys.stderr)
            loads.append(load_average())
        same = sum(1 for s in symbols if len({tuple(f[s]) for f in fired.values()}) == 1) if fired else None
    table = report(a, rows, same, len(symbols), loads)
    if stages is not None:
        table += "\n" + stages_table(stages, min(1000, len(symbols)))
    print(table)
    if a.out:
        with open(a.out, "a", encoding="utf-8") as f:
            f.write("\n" + table)
    return 0


def report(a: Any, rows: dict[str, list[dict[str, float]]], same: int | None, n: int, loads: list[str]) -> str:
    def med(what: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[what])

    labels = {"floor": "floor: generated Python, one pass", "direct": "durable direct (no trace)",
              "pipeline": "pipeline, 1 process (`Workspace.run`)", "csv": "screen, CSV, not recorded",
              "recorded": "screen, CSV, recorded (default)", "json": "screen, `--format json`, not recorded",
              "jsonl": "screen, `--format jsonl`, not recorded",
              "json-rows": "screen, `--format json --columns ...` (rows), not recorded"}
    out = [f"### {a.symbols:,} symbols x {a.rules} rules, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
           "", f"Machine: {machine()}. Load average before and after each round: {' | '.join(loads)}. "
           f"Medians of {a.rounds} interleaved round(s); `python bench/screens.py --symbols {a.symbols} "
           f"--rules {a.rules} --rounds {a.rounds}`.", "",
           "| run | CPU time | wall | symbols/s (CPU) | peak RSS | x CSV screen (CPU / wall) |",
           "|---|---|---|---|---|---|"]
    base = ("csv" in rows and rows["csv"]) and (med("csv", "cpu_s"), med("csv", "wall_s"))
    for what in rows:
        if not rows[what]:
            continue
        cpu, wall = med(what, "cpu_s"), med(what, "wall_s")
        rss = f"{med(what, 'rss_mb'):.0f} MB" if "rss_mb" in rows[what][0] else ""
        ratio = f"{cpu / base[0]:.2f}x / {wall / base[1]:.2f}x" if base and what in SCREENS else ""
        out.append(f"| {labels[what]} | {cpu:.2f} s | {wall:.2f} s | {a.symbols / cpu:,.0f} | {rss} | {ratio} |")
    if same is not None:
        out += ["", f"Same rules fired by every matcher measured: {same:,} of {n:,} symbols."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
