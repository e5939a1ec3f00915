"""Batch evaluation: symbol lists, universe files, processes, output formats, bad files skipped."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from test_report import REPORT_TABLE


def test_all_in_two_processes_as_json_lines(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "--all", "--jobs", "2", "--format", "jsonl", "--no-record")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["symbol"]: r["rating"] for r in rows} == REPORT_TABLE
    assert [r["rating"] for r in rows] == sorted((r["rating"] for r in rows), key=["Buy", "Hold"].index)


def test_csv_sorted_by_score(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "--all", "--format", "csv", "--sort", "score", "--no-record")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and len(rows) == 5
    assert {"symbol", "rating", "target_low", "medium_entry_low", "run_id"} <= set(rows[0])


def test_universe_file_with_an_unknown_symbol(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    u = tmp_path / "universe.txt"
    u.write_text("# screen\n600111\n300127.SZ\n999999\n")
    out = verdict("evaluate", "--universe", str(u), "--format", "jsonl", "--no-record")
    assert out.returncode == 1
    assert len(out.stdout.splitlines()) == 2
    assert "failed: 999999: " in out.stderr and "2 evaluated, 1 failed" in out.stderr


def test_a_bad_facts_file_is_reported_and_skipped(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    bad = workdir / "facts" / "stocks" / "300127.yaml"
    bad.write_text(bad.read_text().replace("{value: 52.3,", "{value: high,"))
    out = verdict("evaluate", "--all", "--format", "jsonl", "--no-record", cwd=workdir)
    assert out.returncode == 1
    symbols = {json.loads(line)["symbol"] for line in out.stdout.splitlines()}
    assert symbols == set(REPORT_TABLE) - {"300127.SZ"}
    assert "skipped: facts/stocks/300127.yaml:" in out.stderr and "must be a number" in out.stderr
    single = verdict("evaluate", "300127", "--no-record", cwd=workdir)
    assert single.returncode == 2  # evaluating the bad symbol alone is still an input error


def test_symbol_sources_are_exclusive(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "600111", "--all")
    assert out.returncode == 2 and "one of them" in out.stderr


def test_a_screen_summary_agrees_with_the_full_evaluation(verdict) -> None:  # type: ignore[no-untyped-def]
    summary = verdict("evaluate", "--all", "--jobs", "2", "--format", "csv", "--no-record")
    full = verdict("evaluate", "--all", "--jobs", "2", "--format", "jsonl", "--no-record")
    assert summary.returncode == 0 and full.returncode == 0, summary.stderr + full.stderr
    rows = {r["symbol"]: r for r in csv.DictReader(io.StringIO(summary.stdout))}
    for ev in (json.loads(line) for line in full.stdout.splitlines()):
        row = rows[ev["symbol"]]
        assert (row["rating"], float(row["score"]), int(row["warnings"])) == \
            (ev["rating"], ev["score"], len(ev["warnings"]))
        assert row["target_low"] == (str(ev["target"]["low"]) if ev["target"] else "")


def test_a_worker_that_dies_is_reported_not_waited_for(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from engine import batch
    from engine.pipeline import Workspace

    root = Path(__file__).resolve().parent.parent
    real_run = Workspace.run

    def run(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        if query == "300127":  # as a crash in native code would: the process is simply gone
            os._exit(9)
        return real_run(self, query, *args, **kwargs)

    monkeypatch.setattr(Workspace, "run", run)  # forked workers inherit the patch
    result = batch.evaluate_many(root / "rules", root / "facts", ["600111", "300127", "000831"], jobs=2, full=False)
    failed = {f.symbol: f.message for f in result.failures}
    assert "300127" in failed and "died" in failed["300127"]
    assert len(result.failures) + len(result.outcomes) == 3


def test_a_recorded_screen_stores_each_full_evaluation_once_per_symbol(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.audit import AuditLog

    db = tmp_path / "audit.db"
    out = verdict("evaluate", "--all", "--jobs", "2", "--audit-db", str(db))
    assert out.returncode == 0, out.stderr
    assert "verdict: 5 symbol(s)" in out.stdout
    log = AuditLog(db)
    try:
        records = log.list()
        assert log.verify().ok and len(records) == 5
        assert len({(r.rules_snapshot, r.facts_snapshot) for r in records}) == 1  # one snapshot for the batch
        single = json.loads(verdict("evaluate", "600111", "--format", "json", "--no-record").stdout)
        stored = next(r.evaluation for r in records if r.symbol == "600111.SH")
        for volatile in ("run_id",):
            stored.pop(volatile), single.pop(volatile)
        # The screen recorded the full trace, as a single evaluation gives it, but for fragility: a table
        # screen checks the score's band edges only (the facts' check re-evaluates each symbol for every
        # threshold near a fact), and its record says so.
        frag, full = stored.pop("fragility"), single.pop("fragility")
        assert stored == single
        assert frag["facts_checked"] is False and full["facts_checked"] is True
        assert frag["score_edges"] == full["score_edges"] and frag["facts"] == []
    finally:
        log.close()
