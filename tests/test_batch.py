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
