"""Evaluate many symbols across processes: a universe screen.

durable_rules keeps its rulesets in per-process global state and never releases the GIL, so
parallelism is by processes: the workspace is loaded and compiled once in the parent, and worker
processes forked from it share that memory and evaluate a share of the symbols each. A symbol
whose facts are bad, or whose evaluation fails, is reported and skipped; the rest complete. A
worker that dies is reported with the symbols it was given, instead of hanging the screen.

`full=False` (a screen printed as a table or CSV, not recorded) returns summaries only: the
outcome without the rendered trace, which costs about 15 times the evaluation at 200 rules.
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
from .lifetime import die_with_parent
from .model import Outcome, Summary

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
    screen: Any = None  # the screen the workers applied


def _one(symbol: str) -> tuple[str, Outcome | None, str]:
    ws, as_of, full, screen = _worker["ws"], _worker["as_of"], _worker["full"], _worker.get("screen")
    try:
        run = ws.run(symbol, as_of=as_of)
        if screen is not None and not screen.keep(run):
            return symbol, None, ""  # left out by --where: no trace is rendered for it
        row = screen.row(run) if screen is not None and screen.needs_rows else {}
        if not full:
            return symbol, Outcome(run.summary(), row=row), ""
        ev = run.evaluation()
        return symbol, Outcome(Summary.of(ev), ev.model_dump_json(), row=row), ""
    except VerdictError as exc:
        return symbol, None, exc.render()
    except Exception as exc:  # one symbol's defect must not stop the screen
        return symbol, None, f"{type(exc).__name__}: {exc}"


def _chunk(symbols: list[str]) -> list[tuple[str, Outcome | None, str]]:
    return [_one(s) for s in symbols]


def evaluate_chunk(ws: Any, job: tuple[dt.date | None, bool, Screen | None], symbols: list[str]
                   ) -> list[tuple[str, Outcome | None, str]]:
    """A screen's task on a Dask or Ray worker (engine/executors.py): its workspace, loaded once there."""
    _worker.update(ws=ws, as_of=job[0], full=job[1], screen=job[2])
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
                  full: bool = True, executor: Any = None, screen: Callable[[Any], Screen] | None = None,
                  workspace: Workspace | None = None) -> BatchResult:
    """Evaluate `symbols` (None: all). `screen(workspace)` builds the screen (filter, columns) the
    workers apply, once the workspace it type-checks against is loaded. `workspace`: one already
    opened on `rules` and `facts` (else it is opened here, leaving out stocks with bad files)."""
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
                result.outcomes.append(outcome)
        done += len(items)
        if progress:
            progress(done, total)

    built = result.screen = screen(ws) if screen else None
    if executor is not None and executor.kind != "local":  # a Dask or Ray cluster (executors.py)
        from .executors import Lost, WorkspaceSpec, run

        size = max(1, min(256, total // 32 or 1))
        parts = [wanted[i:i + size] for i in range(0, total, size)]
        for i, res in run(executor, WorkspaceSpec.of(rules, facts), evaluate_chunk, (as_of, full, built), parts):
            take([(s, None, f"the worker evaluating it was lost ({res.message})") for s in parts[i]]
                 if isinstance(res, Lost) else res)
        return result
    _worker.update(ws=ws, as_of=as_of, full=full, screen=built)  # forked workers inherit it: nothing is loaded
    # twice
    if jobs == 1:
        for s in wanted:
            take([_one(s)])
        return result
    size = max(1, min(256, total // (jobs * 8) or 1))
    chunks = [wanted[i:i + size] for i in range(0, total, size)]
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_chunk, c): c for c in chunks}
        for future in as_completed(futures):
            try:
                take(future.result())
            except BrokenProcessPool as exc:
                take([(s, None, f"the worker process evaluating it died ({exc}); evaluate it alone with "
                                "`verdict evaluate SYMBOL --debug` to see why") for s in futures[future]])
    return result
