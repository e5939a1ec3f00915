"""Record what ran, render when read: a recorded run stores its trace (engine/capture.py), and what
`audit show`, `why` and `audit export` print from it is what rendering gave when it ran, byte for
byte; the record's hash is over what is stored. A screen's JSON is written one evaluation at a time
and is the array it always was."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from conftest import FACTS, RULES

from engine.audit import AuditLog, Entry, recorded_document, recorded_evaluation, unpack_output
from engine.capture import dumps, is_trace
from engine.output.evaluation import render_tree
from engine.pipeline import Workspace

BUNDLED = ["600111", "000831", "300748", "300224", "300127"]
RUN_ID = re.compile(r'"run_id": ?"[0-9a-f]{32}"')


def _env(tmp_path: Path) -> dict[str, str]:
    return {"VERDICT_AUDIT_DB": str(tmp_path / "audit.sqlite3")}


def test_a_recorded_trace_reads_back_as_the_evaluation_rendered_when_it_ran(ws: Workspace, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    runs = [ws.run(s) for s in BUNDLED]
    entries = [Entry(r.run_id, r.facts.stock.file.symbol, r.resolution.rating.name, dumps(r.trace()), "test")
               for r in runs]
    log.append_many(entries, rules_files=ws.book.files, facts_files=ws.facts.files,
                    rules_name=RULES.name, facts_name=FACTS.name)
    for run in runs:
        rec = log.get(run.run_id)
        assert is_trace(rec.output)
        assert recorded_document(rec) == run.document()  # the bytes rendering gave at evaluation time
        assert recorded_evaluation(rec).model_dump() == run.evaluation().model_dump()
    assert log.verify().ok
    log.close()


def test_evaluate_records_the_trace_and_show_why_export_print_what_it_printed(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(tmp_path)
    shown = verdict("evaluate", "300127", "--format", "json", env_extra=env)
    assert shown.returncode == 0, shown.stderr
    run_id = json.loads(shown.stdout)["run_id"]
    con = sqlite3.connect(env["VERDICT_AUDIT_DB"])
    stored = unpack_output(con.execute("SELECT output FROM runs").fetchone()[0])
    con.close()
    assert is_trace(stored) and len(stored) < len(shown.stdout)  # what ran, not its rendering
    again = verdict("audit", "show", run_id, "--format", "json", env_extra=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == shown.stdout
    explained = verdict("evaluate", "300127", "--explain", "--no-record", env_extra=env)
    why = verdict("why", "300127", env_extra=env)
    assert why.returncode == 0, why.stderr
    assert why.stdout.endswith(explained.stdout)  # the same tree, after why's own head
    exported = verdict("audit", "export", run_id, "--to", str(tmp_path / "out"), env_extra=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text()) == json.loads(shown.stdout)
    assert verdict("audit", "verify", env_extra=env).returncode == 0
    replay = verdict("audit", "replay", run_id, env_extra=env)
    assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout + replay.stderr


def test_a_recorded_screen_stores_traces_that_render_as_its_json(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(tmp_path)
    screen = verdict("evaluate", "--all", "--format", "json", "--jobs", "2", env_extra=env)
    assert screen.returncode == 0, screen.stderr
    printed = {e["run_id"]: e for e in json.loads(screen.stdout)}
    log = AuditLog(Path(env["VERDICT_AUDIT_DB"]))
    records = log.list()
    assert sorted(r.run_id for r in records) == sorted(printed)
    for rec in records:
        assert is_trace(rec.output)
        assert json.loads(recorded_document(rec)) == printed[rec.run_id]
        assert render_tree(recorded_evaluation(rec))  # explains as it did
    log.close()


def test_screen_json_is_the_array_of_its_evaluations_written_one_at_a_time(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ("evaluate", "--all", "--no-record", "--sort", "symbol", "--jobs", "2")
    lines = verdict(*args, "--format", "jsonl")
    array = verdict(*args, "--format", "json")
    assert lines.returncode == 0 and array.returncode == 0, lines.stderr + array.stderr
    docs = [json.loads(line) for line in lines.stdout.splitlines()]
    assert sorted(d["symbol"] for d in docs) == [d["symbol"] for d in docs] and len(docs) == len(BUNDLED)
    # what the screen printed before it streamed: the list, parsed and indented in one piece
    before = json.dumps(docs, ensure_ascii=False, indent=2) + "\n"
    assert RUN_ID.sub("RUN", array.stdout) == RUN_ID.sub("RUN", before)
    unordered = verdict("evaluate", "--all", "--no-record", "--sort", "none", "--format", "json",
                        env_extra=_env(tmp_path))
    assert unordered.returncode == 0, unordered.stderr
    assert sorted(d["symbol"] for d in json.loads(unordered.stdout)) == [d["symbol"] for d in docs]
    empty = verdict("evaluate", "--all", "--no-record", "--where", "score > 1000", "--format", "json")
    assert empty.returncode == 0 and empty.stdout == "[]\n", empty.stderr
    top = verdict("evaluate", "--all", "--no-record", "--top", "2", "--format", "json")
    assert top.returncode == 0 and len(json.loads(top.stdout)) == 2, top.stderr


def test_sort_none_with_top_is_refused_saying_why(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "--all", "--no-record", "--sort", "none", "--top", "3")
    assert out.returncode != 0 and "--sort none" in out.stderr and "Traceback" not in out.stderr


def test_a_trace_missing_a_part_is_reported_not_crashed_on(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.audit import pack_output

    env = _env(tmp_path)
    assert verdict("evaluate", "600111", env_extra=env).returncode == 0
    con = sqlite3.connect(env["VERDICT_AUDIT_DB"])
    run_id, stored = con.execute("SELECT run_id, output FROM runs").fetchone()
    trace = json.loads(unpack_output(stored))
    del trace["fact_checks"]
    con.execute("UPDATE runs SET output = ?", (pack_output(dumps(trace)),))
    con.commit()
    con.close()
    out = verdict("audit", "show", run_id, env_extra=env)
    assert out.returncode == 1 and "cannot be read: its trace has no 'fact_checks'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert verdict("audit", "verify", env_extra=env).returncode == 1  # and the chain says it was altered


def test_a_recorded_table_screen_records_fragility_on_the_score_as_it_checked_it(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(tmp_path)
    screen = verdict("evaluate", "--all", "--format", "csv", env_extra=env)
    assert screen.returncode == 0, screen.stderr
    log = AuditLog(Path(env["VERDICT_AUDIT_DB"]))
    records = log.list()
    assert len(records) == len(BUNDLED) and all(is_trace(r.output) for r in records)
    for rec in records:
        ev = recorded_evaluation(rec)
        assert ev.fragility is not None and ev.fragility.facts_checked is False and ev.fragility.facts == []
        assert rec.run_id in screen.stdout  # the rows printed name the runs recorded
    log.close()
    replay = verdict("audit", "replay", records[0].run_id, env_extra=env)
    assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout + replay.stderr
