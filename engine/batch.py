"""Evaluate many symbols across processes: a universe screen.

durable_rules keeps its rulesets in per-process global state and never releases the GIL, so
parallelism is by processes: the workspace is loaded and compiled once in the parent, and worker
processes forked from it share that memory and evaluate a share of the symbols each. A symbol
whose facts are bad, or whose evaluation fails, is reported and skipped; the rest complete. A
worker that dies is reported with the symbols it was given, instead of hanging the screen.

What a worker sends back is what the screen needs: the outcome (summary and chosen columns) always;
the run's trace, packed, when the screen is recorded (the audit log stores traces and renders them
when read); the rendered evaluation's JSON when the screen prints it (`full`), written by the worker
to a spill file when one is given, so the parent holds one summary per symbol and reads each
document back only to print it. Rendering costs several times the evaluation at 200 rules. A table
or CSV screen, recorded or not, checks fragility on the score alone (the facts' check re-evaluates
each symbol for every threshold near a fact; its record says `facts_checked: false`); what is shown
in full (JSON, --explain) checks both, as `verdict evaluate SYMBOL` does.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Problem, VerdictError
from .lifetime import die_with_parent, frozen_heap
from .model import Outcome

if TYPE_CHECKING:
    from .pipeline import Workspace
    from .screening import Screen

_worker: dict[str, Any] = {}


@dataclass
class Failure:
    symbol: str
    message: str


@dataclass
class BatchResult:
    workspace: Any
    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    filtered: int = 0  # evaluated, and left out by the screen's --where
    evaluated: int = 0  # evaluated and kept (in `outcomes`, or given to `emit`)
    screen: Any = None  # the screen the workers applied


@dataclass(frozen=True)
class Job:
    """What every worker of a screen does with each symbol."""

    as_of: dt.date | None = None
    full: bool = False  # render the full evaluation's JSON
    record: bool = False  # keep the run's trace (packed) for the audit log
    screen: Screen | None = None
    spill: str | None = None  # a folder for the rendered JSON (None: sent back with the outcome)
    indent: int | None = None  # the rendered JSON indented so (a screen's JSON array), else compact


def _one(symbol: str) -> tuple[str, Outcome | None, str]:
    ws, job = _worker["ws"], _worker["job"]
    screen = job.screen
    try:
        run = ws.run(symbol, as_of=job.as_of)
        if screen is not None and not screen.keep(run):
            return symbol, None, ""  # left out by --where: no trace is rendered for it
        row = screen.row(run) if screen is not None and screen.needs_rows else {}
        if not (job.full or job.record):
            return symbol, Outcome(run.summary(), row=row), ""
        # Shown in full, the evaluation is `evaluate SYMBOL`'s: fragility checked on the facts too (the
        # facts' check re-evaluates the symbol for every threshold near a fact: ~25x the evaluation at
        # 200 rules). Recorded alone, it is the screen's: the score's edges only, saying so.
        checked = job.full
        outcome = Outcome(run.summary(fragile_facts=checked), row=row)
        trace = run.trace(checked)
        if job.record:
            from .audit import pack_output
            from .capture import dumps

            outcome.trace = pack_output(dumps(trace))
        if job.full:
            from .jsontext import indented
            from .render import document, render

            rendered = render(trace, ws.rules, ws.compiled)
            text = document(rendered) if job.indent is None else indented(rendered, job.indent)
            if job.spill is None:
                outcome.document = text
            else:
                outcome.spilled = _spill(job.spill, text)
        return symbol, outcome, ""
    except VerdictError as exc:
        return symbol, None, exc.render()
    except Exception as exc:  # one symbol's defect must not stop the screen
        return symbol, None, f"{type(exc).__name__}: {exc}"


def _spill(folder: str, text: str) -> tuple[str, int, int]:
    """Append a document to this process's spill file; where it is: (file, offset, length)."""
    f = _worker.get("spill_file")
    if f is None or _worker.get("spill_pid") != os.getpid():
        import uuid

        path = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
        f = _worker["spill_file"] = open(path, "ab")  # noqa: SIM115 - open for the worker's life
        _worker["spill_pid"] = os.getpid()
    data = text.encode("utf-8")
    offset = f.tell()
    f.write(data)
    f.flush()  # the parent reads it back once this symbol's result arrives
    return f.name, offset, len(data)


def _chunk(symbols: list[str]) -> list[tuple[str, Outcome | None, str]]:
    return [_one(s) for s in symbols]


def evaluate_chunk(ws: Any, job: Job, symbols: list[str]) -> list[tuple[str, Outcome | None, str]]:
    """A screen's task on a Dask or Ray worker (engine/executors.py): its workspace, loaded once there."""
    _worker.update(ws=ws, job=job)
    return _chunk(symbols)


def universe(path: Path) -> list[str]:
    """Symbols from a file: one per line; blank lines and # comments ignored."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            out.append(item)
    return out


def evaluate_many(rules: Path, facts: Path, symbols: Iterable[str] | None, *, jobs: int = 0,
                  as_of: dt.date | None = None, progress: Callable[[int, int], None] | None = None,
                  full: bool = True, record: bool = False, executor: Any = None,
                  screen: Callable[[Any], Screen] | None = None, workspace: Workspace | None = None,
                  spill: Path | None = None, emit: Callable[[Outcome], None] | None = None, ordered: bool = False,
                  indent: int | None = None, arrived: Callable[[Outcome], None] | None = None) -> BatchResult:
    """Evaluate `symbols` (None: all). `screen(workspace)` builds the screen (filter, columns) the
    workers apply, once the workspace it type-checks against is loaded. `workspace`: one already
    opened on `rules` and `facts` (else it is opened here, leaving out stocks with bad files).
    `full`: render each full evaluation's JSON (into files in `spill` when given, local processes
    only; indented by `indent` when given); `record`: keep each run's trace for the audit log.
    `emit`: give each outcome to it as soon as it is evaluated (in the order of `symbols` if
    `ordered`, else as they complete) instead of keeping them in the result. `arrived`: also show each
    kept outcome to it as it arrives (a recorded screen prepares its audit records while the workers
    are still evaluating: audit.Batch)."""
    from .pipeline import Workspace

    ws = workspace if workspace is not None else Workspace.open(rules, facts, partial=True)
    result = BatchResult(ws, skipped=list(ws.facts.skipped))
    wanted = list(symbols) if symbols is not None else ws.symbols()
    total = len(wanted)
    if not jobs:  # automatic: one process per core, but processes only pay off on larger screens
        jobs = max(1, min(os.cpu_count() or 1, total // 200 + 1))
    done = 0

    def take(items: list[tuple[str, Outcome | None, str]]) -> None:
        nonlocal done
        for symbol, outcome, error in items:
            if outcome is None and not error:
                result.filtered += 1
            elif outcome is None:
                result.failures.append(Failure(symbol, error))
            else:
                result.evaluated += 1
                if emit is not None:
                    emit(outcome)
                else:
                    result.outcomes.append(outcome)
                if arrived is not None:
                    arrived(outcome)
        done += len(items)
        if progress:
            progress(done, total)

    built = result.screen = screen(ws) if screen else None
    remote = executor is not None and executor.kind != "local"  # a Dask or Ray cluster (executors.py)
    job = Job(as_of, full, record, built, None if remote or spill is None else str(spill), indent)
    if remote:
        from .executors import Lost, WorkspaceSpec, run

        size = max(1, min(256, total // 32 or 1))
        parts = [wanted[i:i + size] for i in range(0, total, size)]
        for i, res in run(executor, WorkspaceSpec.of(rules, facts), evaluate_chunk, job, parts):
            take([(s, None, f"the worker evaluating it was lost ({res.message})") for s in parts[i]]
                 if isinstance(res, Lost) else res)
        return result
    _worker.update(ws=ws, job=job)  # forked workers inherit it: nothing is loaded twice
    try:
        if jobs == 1:
            for s in wanted:
                take([_one(s)])
            return result
        size = max(1, min(256, total // (jobs * 8) or 1))
        chunks = [wanted[i:i + size] for i in range(0, total, size)]
        # frozen: workers' collections never walk (and so copy) the loaded universe; ~1 s less CPU in a
        # recorded 5,000-symbol screen, 10% fewer page faults (bench/RESULTS.md)
        with frozen_heap(), ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork"),
                                                initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_chunk, c): c for c in chunks}
            for future in (futures if ordered else as_completed(futures)):
                try:
                    take(future.result())
                except BrokenProcessPool as exc:
                    take([(s, None, f"the worker process evaluating it died ({exc}); evaluate it alone with "
                                    "`verdict evaluate SYMBOL --debug` to see why") for s in futures[future]])
        return result
    finally:
        f = _worker.pop("spill_file", None)
        if f is not None:
            f.close()
