"""Evaluate many symbols across processes: a universe screen.

durable_rules keeps one host per process and never releases the GIL, so parallelism is by processes:
each worker opens the workspace once (compiling the rules once) and evaluates its share. A symbol
whose facts are bad, or whose evaluation fails, is reported and skipped; the rest complete.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Problem, VerdictError
from .model import Evaluation

_worker: dict[str, object] = {}


@dataclass
class Failure:
    symbol: str
    message: str


@dataclass
class BatchResult:
    workspace: object
    evaluations: list[Evaluation] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)


def _open(rules: Path, facts: Path) -> object:
    from .pipeline import Workspace

    return Workspace.open(rules, facts, partial=True)


def _init(rules: Path, facts: Path, as_of: dt.date | None) -> None:
    _worker["ws"] = _open(rules, facts)
    _worker["as_of"] = as_of


def _one(symbol: str) -> tuple[str, str, str]:
    from .pipeline import Workspace

    ws = _worker["ws"]
    assert isinstance(ws, Workspace)
    try:
        ev = ws.evaluate(symbol, as_of=_worker["as_of"])  # type: ignore[arg-type]
        return symbol, ev.model_dump_json(), ""
    except VerdictError as exc:
        return symbol, "", exc.render()
    except Exception as exc:  # one symbol's defect must not stop the screen
        return symbol, "", f"{type(exc).__name__}: {exc}"


def universe(path: Path) -> list[str]:
    """Symbols from a file: one per line; blank lines and # comments ignored."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            out.append(item)
    return out


def evaluate_many(rules: Path, facts: Path, symbols: Iterable[str] | None, *, jobs: int = 0,
                  as_of: dt.date | None = None, progress: Callable[[int, int], None] | None = None
                  ) -> BatchResult:
    from .pipeline import Workspace

    ws = _open(rules, facts)
    assert isinstance(ws, Workspace)
    result = BatchResult(ws, skipped=list(ws.facts.skipped))
    wanted = list(symbols) if symbols is not None else ws.symbols()
    if not jobs:  # automatic: one process per core, but processes only pay off on larger screens
        jobs = max(1, min(os.cpu_count() or 1, len(wanted) // 50 + 1))
    total = len(wanted)
    done = 0

    def take(item: tuple[str, str, str]) -> None:
        nonlocal done
        symbol, payload, error = item
        if error:
            result.failures.append(Failure(symbol, error))
        else:
            result.evaluations.append(Evaluation.model_validate_json(payload))
        done += 1
        if progress:
            progress(done, total)

    if jobs == 1:
        _worker["ws"], _worker["as_of"] = ws, as_of
        for s in wanted:
            take(_one(s))
        return result
    ctx = mp.get_context("fork")
    with ctx.Pool(jobs, initializer=_init, initargs=(rules, facts, as_of)) as pool:
        for item in pool.imap_unordered(_one, wanted, chunksize=max(1, min(64, total // (jobs * 8) or 1))):
            take(item)
    return result
