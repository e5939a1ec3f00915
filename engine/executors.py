"""Where a batch's tasks run: the local process pool (the default), a Dask cluster or a Ray cluster.

Every worker process holds one loaded and compiled workspace, and a task is a plain function of
(workspace, job, item) named by reference, so nothing but the item, the job and the result crosses
a process boundary. Local workers are forked from the parent's workspace (nothing is loaded twice);
Dask and Ray workers load it once, when the batch starts, from the same rules and facts directories:
a cluster joined by address must see them at the same paths. Results come back as they finish.

Dask and Ray are optional (`pip install 'verdict[dask]'`, or ray by hand); they are imported only
when asked for. A worker that dies takes its items with it: they come back as `Lost`, never hang.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Location, LookupFailure, Problem
from .lifetime import die_with_parent, frozen_heap

if TYPE_CHECKING:
    from .pipeline import Workspace

KINDS = ("local", "dask", "ray")
Task = Callable[["Workspace", Any, Any], Any]


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str = "local"
    address: str | None = None

    @classmethod
    def parse(cls, text: str) -> ExecutorSpec:
        """`local`, `dask`, `ray`, or `dask:ADDRESS` / `ray:ADDRESS` to join a running cluster."""
        kind, _, address = text.strip().partition(":")
        kind = kind.lower()
        if kind not in KINDS or (kind == "local" and address):
            raise LookupFailure([Problem(Location(), "usage", f"unknown executor '{text}'.",
                                         "Use local (the default), dask, ray, or dask:ADDRESS / ray:ADDRESS to join "
                                         "a running cluster (e.g. dask:tcp://10.0.0.5:8786, ray:auto).")])
        return cls(kind, address or None)

    def __str__(self) -> str:
        return self.kind + (f":{self.address}" if self.address else "")


@dataclass(frozen=True)
class WorkspaceSpec:
    """How a worker opens the workspace: absolute directories, so a worker started elsewhere finds them."""

    rules: str
    facts: str
    partial: bool = True

    @classmethod
    def of(cls, rules: Path, facts: Path, partial: bool = True) -> WorkspaceSpec:
        return cls(str(Path(rules).resolve()), str(Path(facts).resolve()), partial)

    def open(self) -> Workspace:
        from .pipeline import Workspace

        return Workspace.open(self.rules, self.facts, partial=self.partial)


@dataclass(frozen=True)
class Lost:
    """The item's worker process died (or the cluster lost it) before it finished."""

    message: str


# One workspace per process: forked local workers inherit the parent's; cluster workers load theirs once.
_here: dict[str, Any] = {"loads": 0}


def _workspace(spec: WorkspaceSpec) -> Workspace:
    ws = _here.get("ws")
    if ws is None or _here.get("spec") != spec:
        ws = spec.open()
        _here.update(ws=ws, spec=spec, loads=_here["loads"] + 1)
    return ws


def worker_info(ws: Workspace, job: Any, item: Any) -> tuple[int, int, Any]:
    """A task that says where it ran: (process id, workspaces loaded by that process, the item)."""
    return os.getpid(), _here["loads"], item


def _call(item: Any, spec: WorkspaceSpec, fn: Task, job: Any) -> Any:
    return fn(_workspace(spec), job, item)


def _warm(spec: WorkspaceSpec) -> int:
    _workspace(spec)
    return os.getpid()


def run(spec: ExecutorSpec, ws_spec: WorkspaceSpec, fn: Task, job: Any, items: Sequence[Any], *,
        workspace: Workspace | None = None, workers: int = 0,
        started: Callable[[str], None] | None = None) -> Iterator[tuple[int, Any]]:
    """Run fn(workspace, job, item) for every item; yield (index of the item, result or Lost) as they finish.

    `workspace` is the parent's, already open: local workers are forked from it. `workers`: processes
    (0: one per core; 1, locally: in this process); a cluster joined by address has its own.
    `started` is told once the workers are ready, each with the workspace loaded.
    """
    if spec.kind == "dask":
        yield from _run_dask(spec, ws_spec, fn, job, items, workers, started)
    elif spec.kind == "ray":
        yield from _run_ray(spec, ws_spec, fn, job, items, workers, started)
    else:
        yield from _run_local(ws_spec, fn, job, items, workspace, workers, started)


# ------------------------------------------------------------------------------------- local


def _local_item(i: int) -> Any:
    return _here["fn"](_here["ws"], _here["job"], _here["items"][i])


def _run_local(ws_spec: WorkspaceSpec, fn: Task, job: Any, items: Sequence[Any], workspace: Workspace | None,
               workers: int, started: Callable[[str], None] | None) -> Iterator[tuple[int, Any]]:
    ws = workspace if workspace is not None else _workspace(ws_spec)
    _here.update(ws=ws, spec=ws_spec, fn=fn, job=job, items=items)  # forked workers inherit all of it
    jobs = workers or min(os.cpu_count() or 1, max(1, len(items)))
    if started:
        started(f"local: {jobs} process(es)")
    if jobs <= 1:
        for i, item in enumerate(items):
            yield i, fn(ws, job, item)
        return
    with frozen_heap(), ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork"),
                                            initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(_local_item, i): i for i in range(len(items))}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                try:
                    res = future.result()
                except BrokenProcessPool as exc:
                    res = Lost(f"the worker process died ({exc})")
                except Exception as exc:  # a task's own defect: reported with its item, the rest go on
                    res = Lost(f"{type(exc).__name__}: {exc}")
                yield i, res


# -------------------------------------------------------------------------------------- dask


def _need(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise LookupFailure([Problem(Location(), "missing-extra",
                                     f"the {extra} executor needs the '{module}' package, which is not installed.",
                                     f"Install it with: pip install 'verdict[{extra}]' (or use --executor local).")])


def _run_dask(spec: ExecutorSpec, ws_spec: WorkspaceSpec, fn: Task, job: Any, items: Sequence[Any], workers: int,
              started: Callable[[str], None] | None) -> Iterator[tuple[int, Any]]:
    _need("distributed", "dask")
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if spec.address:
        client = Client(spec.address, timeout="30s")
    else:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        pids = client.run(_warm, ws_spec)  # every worker loads and compiles the workspace once, now
        if started:
            started(f"dask: {len(pids)} worker(s) at {client.scheduler_info().get('address', '')}")
        job_ref = client.scatter(job, broadcast=True, hash=False)
        futures = client.map(_call, items, spec=ws_spec, fn=fn, job=job_ref, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        done = as_completed(futures, with_results=True, raise_errors=False)
        for batch in done.batches():  # results collected as they arrive, in batches: fewer round trips
            for future, result in batch:
                i = index[future.key]
                if future.status == "error" or isinstance(result, BaseException):
                    # KilledWorker, a lost connection: the item is reported, the rest go on
                    yield i, Lost(f"{type(result).__name__}: {result}")
                else:
                    yield i, result
                future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------- ray


class _RayWorker:
    """One per worker process: holds the workspace, loaded once, and the job."""

    def __init__(self, ws_spec: WorkspaceSpec, job: Any) -> None:
        self.ws = _workspace(ws_spec)
        self.job = job

    def ready(self) -> int:
        return os.getpid()

    def call(self, fn: Task, item: Any) -> Any:
        return fn(self.ws, self.job, item)


def _run_ray(spec: ExecutorSpec, ws_spec: WorkspaceSpec, fn: Task, job: Any, items: Sequence[Any], workers: int,
             started: Callable[[str], None] | None) -> Iterator[tuple[int, Any]]:
    _need("ray", "ray")
    import logging

    import ray

    ours = not ray.is_initialized()
    if ours:
        ray.init(address=spec.address, num_cpus=None if spec.address else (workers or os.cpu_count() or 1),
                 include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=False)
    try:
        cpus = max(1, int(ray.available_resources().get("CPU", 1)))
        actor: Any = ray.remote(num_cpus=1)(_RayWorker)
        pool = [actor.remote(ws_spec, job) for _ in range(cpus)]
        ray.get([a.ready.remote() for a in pool])
        if started:
            started(f"ray: {cpus} worker(s)")
        queue = list(range(len(items)))[::-1]
        running: dict[Any, tuple[int, Any]] = {}

        def feed(a: Any) -> None:
            if queue:
                i = queue.pop()
                running[a.call.remote(fn, items[i])] = (i, a)

        for a in pool:  # two in flight per worker: the next item is there when one finishes
            feed(a)
            feed(a)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                i, a = running.pop(ref)
                try:
                    yield i, ray.get(ref)
                    feed(a)
                except Exception as exc:  # RayActorError: this worker is gone; its items are lost
                    yield i, Lost(f"{type(exc).__name__}: {exc}")
        for i in reversed(queue):  # every worker died before these were given out
            yield i, Lost("no worker was left to run it")
    finally:
        if ours:
            ray.shutdown()
