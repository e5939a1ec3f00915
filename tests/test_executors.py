"""Executors: a real local Dask cluster (two worker processes) gives the local pool's results, symbol for symbol."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import pytest

from engine import benchmark as bm
from engine.backtesting import BacktestRun, backtest_universe
from engine.executors import ExecutorSpec, Lost, WorkspaceSpec, run, worker_info
from engine.pipeline import Workspace

ROOT = Path(__file__).resolve().parent.parent


def _small_backtest(ws: Workspace, executor: ExecutorSpec, workers: int) -> tuple[BacktestRun, list[str]]:
    told: list[str] = []
    r = backtest_universe(ws, WorkspaceSpec.of(ROOT / "rules", ROOT / "facts"), ws.symbols(), dt.date(2025, 11, 3),
                          dt.date(2026, 2, 27), 5, [20, 60], bm.load(ROOT / "facts" / "benchmarks" / "csi300.yaml"),
                          executor=executor, workers=workers, started=told.append)
    return r, told


def _same(a: BacktestRun, b: BacktestRun) -> None:
    assert a.symbols == b.symbols and a.dates == b.dates
    for x, y in zip(a.ratings, b.ratings, strict=True):
        assert (x.symbol, x.status, x.rating) == (y.symbol, y.status, y.rating)
        assert all((math.isnan(p) and math.isnan(q)) or p == q for p, q in zip(x.score, y.score, strict=True))
    assert json.dumps(a.stats, sort_keys=True) == json.dumps(b.stats, sort_keys=True)


def test_dask_cluster_of_two_workers_matches_the_local_pool(ws: Workspace) -> None:
    pytest.importorskip("distributed", reason="the dask extra is part of the test install")
    local, _ = _small_backtest(ws, ExecutorSpec("local"), 2)
    dask, told = _small_backtest(ws, ExecutorSpec("dask"), 2)
    assert told and told[0].startswith("dask: 2 worker(s)")
    assert sum(1 for r in dask.ratings for s in r.status if s == "") > 50  # a real run, most symbol-dates rated
    _same(local, dask)


def test_each_cluster_worker_loads_the_workspace_once() -> None:
    pytest.importorskip("distributed")
    spec = WorkspaceSpec.of(ROOT / "rules", ROOT / "facts")
    got = [res for _, res in run(ExecutorSpec("dask"), spec, worker_info, None, list(range(40)), workers=2)]
    assert not any(isinstance(r, Lost) for r in got)
    pids = {pid for pid, _, _ in got}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {loads for _, loads, _ in got} == {1}
    assert sorted(item for _, _, item in got) == list(range(40))


def test_evaluate_all_on_a_dask_cluster_gives_the_same_screen(verdict) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("distributed")
    local = verdict("evaluate", "--all", "--format", "jsonl", "--no-record")
    dask = verdict("evaluate", "--all", "--format", "jsonl", "--no-record", "--executor", "dask")
    assert local.returncode == 0 and dask.returncode == 0, dask.stderr

    def rows(out: str) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "run_id"} for line in out.splitlines()]

    assert rows(local.stdout) == rows(dask.stdout) and len(rows(local.stdout)) == 5


def test_ray_cluster_matches_the_local_pool(ws: Workspace) -> None:
    pytest.importorskip("ray", reason="ray is optional: pip install ray to run this")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster
    local, _ = _small_backtest(ws, ExecutorSpec("local"), 1)
    ray, told = _small_backtest(ws, ExecutorSpec("ray"), 2)
    assert told == ["ray: 2 worker(s)"]
    _same(local, ray)


def test_a_missing_extra_and_a_bad_executor_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from engine.errors import LookupFailure

    with pytest.raises(LookupFailure, match="unknown executor 'spark'"):
        ExecutorSpec.parse("spark")
    assert ExecutorSpec.parse("dask:tcp://127.0.0.1:8786") == ExecutorSpec("dask", "tcp://127.0.0.1:8786")
    assert str(ExecutorSpec.parse("ray:auto")) == "ray:auto"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    spec = WorkspaceSpec.of(ROOT / "rules", ROOT / "facts")
    with pytest.raises(LookupFailure, match=r"pip install 'verdict\[dask\]'"):
        list(run(ExecutorSpec("dask"), spec, worker_info, None, [1]))
