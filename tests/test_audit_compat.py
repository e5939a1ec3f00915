"""Records written by an earlier engine still list, show, explain, compare, export, replay and verify.

tests/data/audit-log-2026-11-26.sqlite3 was written by the engine as of that morning (before
checkpoints, knowledge time and the fact fields added since): 300127 (Hold) and 600111 (Buy), as of
2026-01-19. Never regenerate it: its point is to be old. A change to the output model that makes
these records unreadable fails here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import ROOT

FIXTURE = ROOT / "tests" / "data" / "audit-log-2026-11-26.sqlite3"


@pytest.fixture()
def old(tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "audit.sqlite3"
    shutil.copy(FIXTURE, db)
    return {"VERDICT_AUDIT_DB": str(db)}


def _runs(verdict, env: dict[str, str]) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    out = verdict("audit", "list", "--format", "json", env_extra=env)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_old_records_list_show_explain_and_verify(old, verdict) -> None:  # type: ignore[no-untyped-def]
    runs = _runs(verdict, old)
    assert [(r["symbol"], r["rating"], r["score"], r["as_of"]) for r in runs] == [
        ("300127.SZ", "Hold", 2.0, "2026-01-19"), ("600111.SH", "Buy", 4.0, "2026-01-19")]
    assert verdict("audit", "verify", env_extra=old).stdout.startswith("chain valid: 2 record(s)")
    show = verdict("audit", "show", runs[0]["run_id"], env_extra=old)
    assert show.returncode == 0 and "300127.SZ Galaxy Magnetic: Hold (score 2)" in show.stdout
    why = verdict("why", "600111", env_extra=old)
    assert why.returncode == 0 and "Why not Hold (needs score < 4; now 4, 0 above the edge)" in why.stdout
    diff = verdict("audit", "diff", runs[0]["run_id"], runs[1]["run_id"], env_extra=old)
    assert diff.returncode == 0 and "rating Hold -> Buy" in diff.stdout
    assert "note: the runs rate different symbols (300127.SZ, 600111.SH)." in diff.stdout


def test_old_records_export_and_replay_on_todays_engine(old, verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _runs(verdict, old)[0]["run_id"]
    out = verdict("audit", "export", run, "--to", str(tmp_path / "then"), env_extra=old)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "then" / "rules" / "policy.yaml").is_file()
    assert (tmp_path / "then" / "facts" / "stocks" / "300127.yaml").is_file()
    # Today's engine reads what was known on the day (knowledge time came later): the replay runs and
    # names the difference instead of claiming identity.
    replay = verdict("audit", "replay", run, env_extra=old)
    assert replay.returncode == 1 and replay.stdout.startswith(f"DIFFERENT: run {run} (300127.SZ)")
    assert "--- recorded" in replay.stdout and "Traceback" not in replay.stderr
    under = verdict("audit", "replay", run, "--current-rules", "--format", "json", env_extra=old)
    assert under.returncode == 0, under.stderr
    assert json.loads(under.stdout)["before"]["rating"] == "Hold"


def test_appending_to_an_old_log_adds_checkpoints_and_keeps_the_chain(old, verdict) -> None:  # type: ignore[no-untyped-def]
    db = old["VERDICT_AUDIT_DB"]
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "checkpoints" not in tables
    assert verdict("evaluate", "300127", env_extra=old).returncode == 0
    assert verdict("audit", "verify", env_extra=old).stdout.startswith("chain valid: 3 record(s)")


def test_show_json_prints_the_recorded_output_itself(old, verdict) -> None:  # type: ignore[no-untyped-def]
    run = _runs(verdict, old)[0]["run_id"]
    shown = json.loads(verdict("audit", "show", run, "--format", "json", env_extra=old).stdout)
    exported = json.loads(verdict("audit", "export", run, env_extra=old).stdout)["output"]
    assert shown == exported and list(shown)[:5] == ["symbol", "name", "sector", "as_of", "rating"]
    assert all("known_at" not in f for f in shown["facts"])  # a field added since is not invented
