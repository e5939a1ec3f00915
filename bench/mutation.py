"""Mutation testing of engine modules with mutmut: do the tests notice when the code is changed?

mutmut (pinned in the test extra) copies the code to mutants/, changes one operator, constant or
condition at a time and runs the tests that reach the changed function; a mutant the tests still pass
"survived". This script runs it in a scratch copy of the repository (nothing in the working tree is
touched), one module at a time, scoped to what the machine can afford:

    python bench/mutation.py expr                       # every mutant of engine/expr.py
    python bench/mutation.py expr --functions compare,margin_pct,truth
    python bench/mutation.py compile --max 150          # an even sample of 150 mutants across the module
    python bench/mutation.py audit --tests tests/test_audit.py tests/test_audit_promises.py
    python bench/mutation.py expr --workdir /some/dir   # keep the copy: a second run resumes, cached

It runs niced, with one worker by default (`--jobs`), and writes a report (score, counts, every
surviving mutant as a diff) to bench/mutation/<module>.md, with the machine's load average before and
after. Not part of CI's default run: a full module takes from minutes to hours on two shared cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tests that exercise each module in-process (mutmut sees only what runs in its own process: tests
# that run the `verdict` command in a subprocess never see a mutant and are left out to save time).
TESTS = {
    "expr": ["tests/test_expr.py", "tests/test_compile.py", "tests/test_fuzz.py", "tests/test_whatif.py",
             "tests/test_pipeline.py"],
    "compile": ["tests/test_compile.py", "tests/test_durable_behaviour.py", "tests/test_pipeline.py"],
    "indicators": ["tests/test_indicators.py"],
    "resolve": ["tests/test_pipeline.py", "tests/test_report.py", "tests/test_whatif.py", "tests/test_hardening.py",
                "tests/test_explain_golden.py"],
    "audit": ["tests/test_audit_promises.py", "tests/test_audit_library.py"],  # the others run the command
}
COPY = ["engine", "tests", "rules", "facts", "schema", "README.md", "pyproject.toml"]
KILLED = {1, 3, 36, 37, 24, -24, 152, 255}  # failed, pytest error, timeouts, caught by the type checker
SURVIVED = {0}
NO_TESTS = {5, 33}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def prepare(work: Path, module: str, tests: list[str]) -> Path:
    """A copy of the repository with a [tool.mutmut] section for `module`; ../shared linked beside it."""
    repo = work / "repo"
    if not repo.exists():
        repo.mkdir(parents=True)
        for name in COPY:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "artifacts"))
            elif src.exists():
                shutil.copy2(src, repo / name)
        shared = ROOT.parent / "shared"
        if shared.exists():  # tests find it as ROOT.parent / "shared", from the copy and from mutants/
            for link in (work / "shared", repo / "shared"):
                if not link.exists():
                    link.symlink_to(shared)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pyproject += "\n[tool.mutmut]\n" + "\n".join([
        'source_paths = ["engine"]',
        f'only_mutate = ["engine/{module}.py"]',
        'also_copy = ["rules", "facts", "schema", "README.md"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]',
        "use_git_change_detection = false",
    ]) + "\n"
    (repo / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return repo


def mutmut(repo: Path, args: list[str], jobs: int) -> int:
    exe = Path(sys.executable).parent / "mutmut"
    cmd = ["nice", "-n", "15", str(exe), *args]
    if args[0] == "run":
        cmd += ["--max-children", str(jobs)]
    env = {**os.environ, "VERDICT_CACHE_DIR": "off"}
    return subprocess.run(cmd, cwd=repo, env=env).returncode


def results(repo: Path, module: str) -> dict[str, int | None]:
    meta = repo / "mutants" / "engine" / f"{module}.py.meta"
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text(encoding="utf-8"))
    return dict(data.get("exit_code_by_key", {}))


def choose(names: list[str], functions: list[str], limit: int) -> list[str]:
    """Mutants of the named functions (all when none named), then an even sample of at most `limit`."""
    if functions:
        wanted = {f"x_{f}" for f in functions} | {f"x{f}" for f in functions}
        names = [n for n in names if n.rpartition(".")[2].split("__mutmut_")[0] in wanted
                 or n.rpartition(".")[2].split("__mutmut_")[0].endswith(tuple(f"ǁ{f}" for f in functions))]
    names = sorted(names, key=lambda n: (n.split("__mutmut_")[0], int(n.rpartition("_")[2])))
    if limit and len(names) > limit:
        step = len(names) / limit
        names = [names[int(i * step)] for i in range(limit)]
    return names


def show(repo: Path, name: str) -> str:
    exe = Path(sys.executable).parent / "mutmut"
    out = subprocess.run([str(exe), "show", name], cwd=repo, capture_output=True, text=True)
    return out.stdout.strip()


def report(module: str, repo: Path, chosen: list[str], load_before: str, started: dt.datetime,
           rerun: bool = False) -> str:
    codes = results(repo, module)
    done = {n: codes.get(n) for n in chosen}
    killed = [n for n, c in done.items() if c in KILLED]
    survived = [n for n, c in done.items() if c in SURVIVED]
    no_tests = [n for n, c in done.items() if c in NO_TESTS]
    other = [n for n, c in done.items() if n not in killed + survived + no_tests]
    tested = len(killed) + len(survived) + len(no_tests)
    score = 100.0 * len(killed) / tested if tested else 0.0
    minutes = (dt.datetime.now() - started).total_seconds() / 60
    lines = [f"# Mutation testing: engine/{module}.py", "",
             f"{dt.date.today()}, mutmut, {len(codes)} mutants in the module, {len(chosen)} run; "
             + ("results of the runs kept in the work folder (survivors re-run against the current tests); "
                f"load average {load_before} when reported (2 cores)." if rerun else
                f"{minutes:.0f} min; load average {load_before} before, {load_average()} after (2 cores)."), "",
             f"Score: {score:.1f}% ({len(killed)} killed of {tested}; {len(survived)} survived, "
             f"{len(no_tests)} reached by no test" + (f", {len(other)} not checked or suspicious" if other else "")
             + ").", ""]
    for title, names in (("Surviving mutants", survived), ("Mutants no test reaches", no_tests)):
        if names:
            lines += [f"## {title}", ""]
            for n in names:
                lines += [f"### {n}", "", "```diff", show(repo, n), "```", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("module", help="an engine module: expr, compile, indicators, resolve, audit, ...")
    ap.add_argument("--functions", default="", help="comma-separated function names to mutate (default: all)")
    ap.add_argument("--max", type=int, default=0, help="at most this many mutants, sampled evenly (default: all)")
    ap.add_argument("--tests", nargs="*", help="test files to run (default: the module's own, see TESTS)")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1: the machine is shared)")
    ap.add_argument("--workdir", type=Path, help="keep the scratch copy here (a second run resumes from it)")
    ap.add_argument("--out", type=Path, help="the report (default: bench/mutation/MODULE.md)")
    ap.add_argument("--report-only", action="store_true", help="only write the report of what --workdir holds "
                    "(e.g. after re-running survivors against new tests)")
    args = ap.parse_args()
    if not (ROOT / "engine" / f"{args.module}.py").exists():
        ap.error(f"no engine/{args.module}.py")
    tests = args.tests or TESTS.get(args.module) or ["tests"]
    started, load_before = dt.datetime.now(), load_average()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="verdict-mutation-"))
    repo = prepare(work, args.module, tests)
    if args.report_only:
        done = [n for n, code in results(repo, args.module).items() if code is not None]
        chosen = choose(done, [f for f in args.functions.split(",") if f], 0)
        _write(report(args.module, repo, chosen, load_before, started, rerun=True), args)
        return
    # Generate the mutants and collect which tests reach which function, without running any mutant yet.
    mutmut(repo, ["run", f"engine.{args.module}.__none__"], args.jobs)
    chosen = choose(list(results(repo, args.module)), [f for f in args.functions.split(",") if f], args.max)
    if not chosen:
        sys.exit(f"no mutants chosen in engine/{args.module}.py (see {repo / 'mutants'})")
    print(f"running {len(chosen)} mutant(s) of engine/{args.module}.py in {repo}", flush=True)
    for i in range(0, len(chosen), 200):  # the command line stays short; results accumulate in mutants/
        mutmut(repo, ["run", *chosen[i:i + 200]], args.jobs)
    _write(report(args.module, repo, chosen, load_before, started), args)


def _write(text: str, args: argparse.Namespace) -> None:
    out = args.out or ROOT / "bench" / "mutation" / f"{args.module}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(text.split("\n## ")[0])
    print(f"report: {out}")


if __name__ == "__main__":
    main()
