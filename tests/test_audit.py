"""The audit log: recorded, explained, replayable, tamper-evident, safe under concurrency and SIGKILL."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from engine.audit import pack_output, unpack_output


@pytest.fixture()
def db(tmp_path: Path) -> dict[str, str]:
    return {"VERDICT_AUDIT_DB": str(tmp_path / "audit.sqlite3")}


def _runs(verdict, db) -> list[dict]:  # type: ignore[no-untyped-def]
    out = verdict("audit", "list", "--format", "json", env_extra=db)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_old_run_shows_and_replays_as_it_was_after_edits(workdir, verdict, db):
    assert verdict("evaluate", "300127", cwd=workdir, env_extra=db).returncode == 0
    (run,) = _runs(verdict, db)
    assert run["rating"] == "Hold" and run["symbol"] == "300127.SZ"
    pack = workdir / "rules" / "valuation.yaml"
    pack.write_text(pack.read_text().replace("pe_high: sector.target_pe_high", "pe_high: 70"))
    facts = workdir / "facts" / "stocks" / "300127.yaml"
    facts.write_text(facts.read_text().replace("{value: 14.8,", "{value: 4.8,"))
    now = verdict("evaluate", "300127", "--format", "json", "--no-record", cwd=workdir, env_extra=db)
    assert json.loads(now.stdout)["rating"] == "Buy"  # the edits change today's outcome

    show = verdict("audit", "show", run["run_id"], env_extra=db)
    assert show.returncode == 0
    assert "300127.SZ Galaxy Magnetic: Hold (score 5)" in show.stdout
    assert "<- valuation.upside-hold (valuation, rules/valuation.yaml:" in show.stdout
    replay = verdict("audit", "replay", run["run_id"][:10], env_extra=db)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "identical" in replay.stdout
    why = verdict("why", "300127", env_extra=db)
    assert why.returncode == 0 and "upside 14.0% is below Buy's 20%: Hold" in why.stdout
    assert "stock.upside_pct 14.0059 >= 20 (fails by 30.0%)" in why.stdout


def test_replay_reports_a_difference(verdict, db, tmp_path):
    assert verdict("evaluate", "600111", env_extra=db).returncode == 0
    (run,) = _runs(verdict, db)
    con = sqlite3.connect(db["VERDICT_AUDIT_DB"])
    output = json.loads(unpack_output(con.execute("SELECT output FROM runs").fetchone()[0]))
    output["score"] = 7.0
    con.execute("UPDATE runs SET output = ?", (pack_output(json.dumps(output)),))
    con.commit()
    con.close()
    replay = verdict("audit", "replay", run["run_id"], env_extra=db)
    assert replay.returncode == 1 and "DIFFERENT" in replay.stdout
    assert '-  "score": 7.0,' in replay.stdout and '+  "score": 9.0,' in replay.stdout


def _evaluate_n(verdict, db, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    for sym in ["600111", "000831", "300748", "300224", "300127"][:n]:
        assert verdict("evaluate", sym, "--format", "json", env_extra=db).returncode == 0
    return _runs(verdict, db)


def test_changing_one_byte_is_detected(verdict, db):
    runs = _evaluate_n(verdict, db, 4)
    assert verdict("audit", "verify", env_extra=db).stdout.startswith("chain valid: 4 record(s)")
    con = sqlite3.connect(db["VERDICT_AUDIT_DB"])
    stored = con.execute("SELECT output FROM runs WHERE seq = 3").fetchone()[0]
    out = unpack_output(stored)
    i = out.index('"rating":"') + len('"rating":"')
    con.execute("UPDATE runs SET output = ? WHERE seq = 3", (pack_output(out[:i] + "X" + out[i + 1:]),))
    con.commit()
    res = verdict("audit", "verify", env_extra=db)
    assert res.returncode == 1
    assert f"record seq 3 (run {runs[2]['run_id']}" in res.stderr and "was altered" in res.stderr
    assert "The 2 record(s) before it verify." in res.stderr
    # a flipped byte in the stored (compressed) form is found too
    con.execute("UPDATE runs SET output = ? WHERE seq = 3", (stored[:20] + bytes([stored[20] ^ 1]) + stored[21:],))
    con.commit()
    con.close()
    res = verdict("audit", "verify", env_extra=db)
    assert res.returncode == 1 and "record seq 3" in res.stderr and "was altered" in res.stderr


def test_logs_written_before_outputs_were_packed_still_read_and_verify(verdict, db):
    _evaluate_n(verdict, db, 2)
    con = sqlite3.connect(db["VERDICT_AUDIT_DB"])
    for seq, stored in con.execute("SELECT seq, output FROM runs").fetchall():
        con.execute("UPDATE runs SET output = ? WHERE seq = ?", (unpack_output(stored), seq))  # as text
    con.commit()
    con.close()
    assert verdict("audit", "verify", env_extra=db).stdout.startswith("chain valid: 2 record(s)")


def test_removed_and_reordered_records_are_detected(verdict, db):
    _evaluate_n(verdict, db, 4)
    path = db["VERDICT_AUDIT_DB"]
    con = sqlite3.connect(path)
    a, b = con.execute("SELECT output, symbol FROM runs WHERE seq = 2").fetchone(), \
        con.execute("SELECT output, symbol FROM runs WHERE seq = 3").fetchone()
    con.execute("UPDATE runs SET output = ?, symbol = ? WHERE seq = 2", b)
    con.execute("UPDATE runs SET output = ?, symbol = ? WHERE seq = 3", a)
    con.commit()
    res = verdict("audit", "verify", env_extra=db)
    assert res.returncode == 1 and "record seq 2" in res.stderr
    con.execute("UPDATE runs SET output = ?, symbol = ? WHERE seq = 2", a)
    con.execute("UPDATE runs SET output = ?, symbol = ? WHERE seq = 3", b)
    con.execute("DELETE FROM runs WHERE seq = 2")
    con.commit()
    con.close()
    res = verdict("audit", "verify", env_extra=db)
    assert res.returncode == 1 and "record seq 2 is missing" in res.stderr


def test_a_tampered_snapshot_is_detected(verdict, db):
    _evaluate_n(verdict, db, 1)
    con = sqlite3.connect(db["VERDICT_AUDIT_DB"])
    import zlib

    h, content = con.execute("SELECT hash, content FROM blobs LIMIT 1").fetchone()
    con.execute("UPDATE blobs SET content = ? WHERE hash = ?", (zlib.compress(zlib.decompress(content) + b"#"), h))
    con.commit()
    con.close()
    res = verdict("audit", "verify", env_extra=db)
    assert res.returncode == 1 and "is missing or altered" in res.stderr


def test_eight_concurrent_writers_fifty_runs_each(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "audit_stress.py"), "--db", str(tmp_path / "a.db"),
                          "--procs", "8", "--runs", "50"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "records=400 expected=400 chain_valid=True errors=0" in out.stdout
    assert "locked" not in out.stdout + out.stderr


KILLABLE = """
import sys
sys.path.insert(0, {root!r})
from engine.audit import AuditLog
from engine.pipeline import Workspace
ws = Workspace.open({root!r} + "/rules", {root!r} + "/facts")
log = AuditLog({db!r})
print("ready", flush=True)
while True:
    ev = ws.evaluate("600111")
    log.append(run_id=ev.run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
               engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files)
"""


def test_sigkill_during_a_batch_leaves_a_valid_log(tmp_path, verdict):
    db = tmp_path / "a.db"
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE.format(root=str(ROOT), db=str(db))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    res = verdict("audit", "verify", env_extra={"VERDICT_AUDIT_DB": str(db)})
    assert res.returncode == 0, res.stderr
    n = int(res.stdout.split()[2])
    assert n > 5


def test_json_output_is_deterministic_apart_from_run_id(verdict):
    outs = []
    for _ in range(2):
        out = verdict("evaluate", "600111", "--format", "json", "--no-record")
        d = json.loads(out.stdout)
        assert d.pop("run_id")
        outs.append(json.dumps(d, sort_keys=False))
    assert outs[0] == outs[1]


def test_list_filters_export_and_errors(verdict, db):
    _evaluate_n(verdict, db, 2)
    assert [r["symbol"] for r in _runs(verdict, db)] == ["600111.SH", "000831.SZ"]
    only = verdict("audit", "list", "--symbol", "600111", "--format", "json", env_extra=db)
    assert [r["symbol"] for r in json.loads(only.stdout)] == ["600111.SH"]
    future = verdict("audit", "list", "--since", "2999-01-01", "--format", "json", env_extra=db)
    assert json.loads(future.stdout) == []
    lines = verdict("audit", "export", env_extra=db).stdout.splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["output"]["symbol"] == "600111.SH"
    bad = verdict("audit", "show", "nosuchrun", env_extra=db)
    assert bad.returncode == 2 and "is not in the audit log" in bad.stderr and "Traceback" not in bad.stderr
    date = verdict("audit", "list", "--since", "yesterday", env_extra=db)
    assert date.returncode == 2 and "YYYY-MM-DD" in date.stderr
    none = verdict("audit", "verify", env_extra={"VERDICT_AUDIT_DB": str(Path(db["VERDICT_AUDIT_DB"]).parent / "x.db")})
    assert none.returncode == 2 and "no audit log" in none.stderr


def test_no_record_writes_nothing(verdict, db):
    assert verdict("evaluate", "600111", "--no-record", env_extra=db).returncode == 0
    assert not Path(db["VERDICT_AUDIT_DB"]).exists()
