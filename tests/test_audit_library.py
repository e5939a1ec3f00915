"""The audit module as a library (what `verdict audit ...` and `verdict audit report` call), in-process:
lookups, listings, locks, restoring, exporting, replaying and comparing runs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import time
import zlib
from pathlib import Path

import pytest
from conftest import RULES

from engine import audit
from engine.audit import AuditLog, Entry, recorded_head
from engine.errors import LookupFailure, VerdictError


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, ws) -> Path:  # type: ignore[no-untyped-def]
    """600111 twice and 300127 once, on three days, with chosen run ids."""
    path = tmp_path_factory.mktemp("library") / "audit.sqlite3"
    log = AuditLog(path)
    for run_id, sym, day in (("aaaa0001", "600111", 1), ("aaaa0002", "300127", 2), ("bbbb0003", "600111", 3)):
        ev = ws.evaluate(sym, run_id=run_id)
        log.append(run_id=run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
                   engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files,
                   now=dt.datetime(2026, 2, day, 12, tzinfo=dt.UTC))
    log.close()
    return path


@pytest.fixture()
def log(logged: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "audit.sqlite3"
    shutil.copy(logged, path)
    opened = AuditLog(path)
    yield opened
    opened.close()


def test_append_many_links_records_in_one_transaction(log: AuditLog, ws) -> None:  # type: ignore[no-untyped-def]
    ev = ws.evaluate("000831", run_id="cccc0004")
    recs = log.append_many([Entry("cccc0004", ev.symbol, ev.rating, ev.model_dump_json(), ev.engine_version),
                            Entry("cccc0005", ev.symbol, ev.rating, ev.model_dump_json(), ev.engine_version)],
                           rules_files=ws.book.files, facts_files=ws.facts.files)
    first = log.get("bbbb0003")
    assert [r.seq for r in recs] == [4, 5] and recs[0].prev_hash == first.record_hash
    assert recs[1].prev_hash == recs[0].record_hash and recs[0].rules_snapshot == first.rules_snapshot
    assert log.head() == (5, recs[1].record_hash) and log.verify().records == 5
    assert recs[0].created_utc.endswith("+00:00") and recs[0].os_user


def test_lookups_by_id_prefix_and_symbol(log: AuditLog) -> None:
    assert log.get("aaaa0002").symbol == "300127.SZ"
    assert log.get("bbbb00").run_id == "bbbb0003"
    with pytest.raises(LookupFailure, match=r"prefix 'aaaa00' is ambiguous: it starts aaaa0001\.\.\., aaaa0002\.\.\."):
        log.get("aaaa00")
    for missing in ("aaaa", "aaaa0009", "______", "aaaa0_", "%"):  # short, absent, or wildcards: never a match
        with pytest.raises(LookupFailure, match="is not in the audit log"):
            log.get(missing)
    assert log.latest("600111.SH").run_id == "bbbb0003"
    with pytest.raises(LookupFailure, match=r"no recorded evaluation of 000001\.SZ"):
        log.latest("000001.SZ")


def test_listings_filter_by_symbol_and_utc_day(log: AuditLog) -> None:
    assert [r.run_id for r in log.list()] == ["aaaa0001", "aaaa0002", "bbbb0003"]
    assert [r.run_id for r in log.list(symbol="600111.SH")] == ["aaaa0001", "bbbb0003"]
    day = dt.date(2026, 2, 2)
    assert [r.run_id for r in log.list(since=day)] == ["aaaa0002", "bbbb0003"]
    assert [r.run_id for r in log.list(until=day)] == ["aaaa0001", "aaaa0002"]  # the whole of that day
    assert [r.run_id for r in log.infos(since=day, until=day)] == ["aaaa0002"]
    infos = log.infos(symbol="300127.SZ")
    (info,) = infos
    ev = audit.recorded_evaluation(log.get("aaaa0002"))
    assert (info.score, info.as_of, info.rating) == (ev.score, ev.as_of.isoformat() if ev.as_of else None, ev.rating)
    assert info.as_dict()["user"] == info.os_user and info.as_dict()["score"] == ev.score


def test_the_head_of_an_output_is_read_without_unpacking_it_all(log: AuditLog) -> None:
    text = log.get("aaaa0001").output
    data = json.loads(text)
    expected = (float(data["score"]), data["as_of"])
    assert recorded_head(audit.pack_output(text)) == expected and recorded_head(text) == expected
    # another key order (a future writer) falls back to reading the whole output
    reordered = json.dumps({"score": data["score"], **data})
    assert recorded_head(audit.pack_output(reordered)) == expected
    null_day = text.replace(f'"as_of":"{data["as_of"]}"', '"as_of":null', 1)
    assert recorded_head(null_day) == (expected[0], None)
    assert recorded_head(b"not zlib") == (None, None) and recorded_head('{"no": "score"}') == (None, None)


def test_outputs_that_do_not_unpack_are_marked_and_refused(log: AuditLog) -> None:
    assert audit.unpack_output(b"garbage") == "<output does not unpack>"
    assert audit.unpack_output(zlib.compress(b"\xff\xfe")) == "<output is not UTF-8>"
    rec = log.get("aaaa0001")
    rec.output = "<output does not unpack>"
    with pytest.raises(VerdictError, match="recorded output of run aaaa0001 \\(seq 1\\) cannot be read") as err:
        audit.recorded_evaluation(rec)
    assert err.value.exit_code == 1


def test_a_writer_waits_says_so_once_and_gives_up(log: AuditLog) -> None:
    other = sqlite3.connect(log.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        told: list[float] = []
        waiting = AuditLog(log.path, wait=1.6, on_wait=told.append)
        start = time.monotonic()
        with pytest.raises(VerdictError, match=r"write lock for the 1\.6 s this writer may wait") as err:
            waiting.add_checkpoint("x")
        assert time.monotonic() - start >= 1.6 and len(told) == 1 and told[0] >= 0.9
        assert "$VERDICT_AUDIT_WAIT" in str(err.value)
        impatient = AuditLog(log.path, wait=0, on_wait=told.append)
        with pytest.raises(VerdictError, match="gave up waiting"):
            impatient.add_checkpoint("x")
        assert len(told) == 1  # no wait, no notice
        reader = AuditLog(log.path, readonly=True)
        assert len(reader.list()) == 3  # a reader does not wait at all
    finally:
        other.execute("ROLLBACK")
        other.close()
    waiting.add_checkpoint("line")  # and once the lock is free the writer writes
    assert waiting.checkpoint_lines() == ["line"]


def test_the_wait_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(audit.WAIT_ENV_VAR, raising=False)
    assert audit.default_wait() == audit.DEFAULT_WAIT == 30
    monkeypatch.setenv(audit.WAIT_ENV_VAR, "2.5")
    assert audit.default_wait() == 2.5
    monkeypatch.setenv(audit.WAIT_ENV_VAR, "0")
    assert audit.default_wait() == 0
    for bad in ("soon", "-1", "inf", "nan", "1e6"):
        monkeypatch.setenv(audit.WAIT_ENV_VAR, bad)
        with pytest.raises(LookupFailure, match="is not a number of seconds"):
            audit.default_wait()


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(audit.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert audit.default_path() == tmp_path / "verdict" / "audit.sqlite3"
    monkeypatch.setenv(audit.ENV_VAR, str(tmp_path / "x.db"))
    assert audit.default_path() == tmp_path / "x.db"


def test_opening_what_is_not_a_log(tmp_path: Path) -> None:
    with pytest.raises(LookupFailure, match="no audit log at"):
        AuditLog(tmp_path / "none.sqlite3", readonly=True)
    assert not (tmp_path / "none.sqlite3").exists()
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(LookupFailure, match="is not a verdict audit log"):
        AuditLog(other, readonly=True)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    for readonly in (True, False):
        with pytest.raises(VerdictError, match="cannot open the audit log"):
            AuditLog(junk, readonly=readonly)
    empty = AuditLog(tmp_path / "new" / "audit.sqlite3")
    assert empty.head() is None and empty.verify().ok and empty.verify().records == 0
    assert empty.checkpoint_lines() == [] and empty.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_restore_run_and_export_write_the_recorded_files(log: AuditLog, tmp_path: Path) -> None:
    rec = log.get("aaaa0002")
    restored = audit.restore_run(log, rec, tmp_path / "r")
    assert restored.rules_dir == tmp_path / "r" / "rules" and restored.facts_dir == tmp_path / "r" / "facts"
    assert (restored.rules_dir / "valuation.yaml").read_bytes() == (RULES / "valuation.yaml").read_bytes()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["facts", "rules"]
    done = audit.export_run(log, rec, tmp_path / "x")
    assert json.loads(done.evaluation.read_text())["run_id"] == "aaaa0002" and done.as_of == audit.recorded_as_of(rec)
    meta = json.loads(done.record.read_text())
    assert meta["record_hash"] == rec.record_hash and "output" not in meta and meta["seq"] == 2
    with pytest.raises(LookupFailure, match="already exists and is not an empty directory"):
        audit.export_run(log, rec, tmp_path / "x")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(LookupFailure, match="already exists"):
        audit.export_run(log, rec, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert audit.export_run(log, rec, tmp_path / "empty").rules_dir.is_dir()  # an empty folder will do


def test_restore_refuses_names_that_leave_the_folder_and_altered_files(log: AuditLog, tmp_path: Path) -> None:
    rec = log.get("aaaa0001")
    manifest = log.manifest(rec.rules_snapshot)
    name, h = next(iter(manifest.items()))
    evil = {"../../escaped.yaml": h}
    snap = audit.snapshot_hash(evil)
    log.db.execute("INSERT INTO snapshots VALUES (?, ?)", (snap, json.dumps(evil)))
    with pytest.raises(VerdictError, match=f"name '../../escaped.yaml' of snapshot {snap[:12]} leads outside") as err:
        log.restore(snap, tmp_path / "in" / "here")
    assert err.value.exit_code == 1 and err.value.problems[0].code == "audit-snapshot"
    assert not (tmp_path / "escaped.yaml").exists() and not (tmp_path / "in" / "escaped.yaml").exists()
    log.db.execute("UPDATE blobs SET content = ? WHERE hash = ?", (zlib.compress(b"edited"), h))
    where = f"stored file {name} of snapshot {rec.rules_snapshot[:12]} is missing"
    with pytest.raises(VerdictError, match=where) as err:
        log.restore(rec.rules_snapshot, tmp_path / "again")
    assert err.value.exit_code == 1 and err.value.problems[0].code == "audit-snapshot"
    with pytest.raises(VerdictError, match="snapshot 000000000000 is missing"):
        log.manifest("0" * 64)


def test_replay_compares_byte_for_byte_and_names_the_engines(log: AuditLog) -> None:
    rec = log.get("aaaa0002")
    same = audit.replay(log, rec)
    assert same.identical and same.diff == "" and same.recorded_engine == same.replay_engine == rec.engine_version
    data = json.loads(rec.output)
    data["score"] = 99.0
    rec.output = json.dumps(data, separators=(",", ":"))
    changed = audit.replay(log, rec)
    assert not changed.identical and '-  "score": 99.0,' in changed.diff and changed.diff.startswith("--- recorded")


def test_replay_under_other_rules_and_diff_of_runs(log: AuditLog, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    pack = rules / "valuation.yaml"
    pack.write_text(pack.read_text().replace("pe_high: sector.target_pe_high", "pe_high: 70"))
    rec = log.get("aaaa0002")
    d = audit.replay_with_rules(log, rec, rules)
    assert d.changed and d.stopped_firing == ["valuation.upside-hold"] and d.facts == []
    assert d.before.run_id == d.after.run_id == "aaaa0002" and d.before.as_of == d.after.as_of
    assert not audit.replay_with_rules(log, rec, RULES).changed
    same = audit.diff_runs(log, log.get("aaaa0001"), log.get("bbbb0003"))
    assert not same.changed and same.files == [] and same.outcome == []
    other = audit.diff_runs(log, log.get("aaaa0001"), rec)
    assert other.changed and other.facts and other.outcome[0].startswith("rating ")
    doc = audit.record_document(rec)
    assert doc["output"]["run_id"] == "aaaa0002" and doc["record_hash"] == rec.record_hash
    assert set(doc) == {*audit.RECORD_FIELDS, "record_hash"}


def test_every_field_of_a_listing_and_of_a_stored_record(log: AuditLog) -> None:
    for info, rec in zip(log.infos(), log.list(), strict=True):
        assert (info.seq, info.run_id, info.created_utc, info.os_user, info.engine_version, info.symbol,
                info.rating) == (rec.seq, rec.run_id, rec.created_utc, rec.os_user, rec.engine_version, rec.symbol,
                                 rec.rating)
        assert info.as_dict() == {"seq": rec.seq, "run_id": rec.run_id, "created_utc": rec.created_utc,
                                  "user": rec.os_user, "symbol": rec.symbol, "rating": rec.rating,
                                  "score": info.score, "as_of": info.as_of, "engine_version": rec.engine_version}
    kinds = {r[0] for r in log.db.execute("SELECT typeof(output) FROM runs")}
    assert kinds == {"blob"}  # outputs are stored packed


def test_problem_codes_locations_and_hints(log: AuditLog, tmp_path: Path, ws) -> None:  # type: ignore[no-untyped-def]
    def problem(call):  # type: ignore[no-untyped-def]
        with pytest.raises(VerdictError) as err:
            call()
        (p,) = err.value.problems
        assert p.hint and (p.loc.file == str(log.path) or p.loc.file.startswith(str(tmp_path)))
        return p, err.value.exit_code

    assert problem(lambda: log.get("zzzzzz"))[0].code == "unknown-run"
    assert problem(lambda: log.get("aaaa00"))[0].code == "ambiguous-run"
    assert problem(lambda: log.latest("000001.SZ"))[0].code == "no-record"
    assert problem(lambda: log.manifest("0" * 64))[0].code == "audit-snapshot"
    assert problem(lambda: log.manifest("0" * 64))[1] == 1
    p, code = problem(lambda: AuditLog(tmp_path / "none.db", readonly=True))
    assert (p.code, code, p.loc.file) == ("no-audit-db", 2, str(tmp_path / "none.db"))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 4096)
    assert problem(lambda: AuditLog(junk))[0].code == "audit-db"
    rec = log.get("aaaa0001")
    rec.output = "{}"
    with pytest.raises(VerdictError) as err:
        audit.recorded_evaluation(rec)
    assert err.value.problems[0].code == "audit-output" and err.value.problems[0].loc.file == "run aaaa0001"
    # more than five runs share a prefix: five are named, and "and more"
    ev = ws.evaluate("600111")
    log.append_many([Entry(f"dddd{i:04}", ev.symbol, ev.rating, ev.model_dump_json(), ev.engine_version)
                     for i in range(7)], rules_files=ws.book.files, facts_files=ws.facts.files)
    with pytest.raises(LookupFailure, match=r"dddd0004\.\.\. and more\.") as err:
        log.get("dddd00")
    assert "dddd0005" not in str(err.value)
    with pytest.raises(LookupFailure) as err:
        log.get("aaaa00")
    assert "and more" not in str(err.value)


def test_a_writer_without_a_notice_callback_waits_and_a_notice_comes_once(log: AuditLog) -> None:
    other = sqlite3.connect(log.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        quiet = AuditLog(log.path, wait=1.2)
        with pytest.raises(VerdictError) as err:
            quiet.add_checkpoint("x")
        assert err.value.problems[0].code == "audit-busy" and err.value.problems[0].loc.file == str(log.path)
        told: list[float] = []
        patient = AuditLog(log.path, wait=3.2, on_wait=told.append)
        with pytest.raises(VerdictError, match="gave up waiting"):
            patient.add_checkpoint("x")
        assert len(told) == 1  # three busy seconds, one notice
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_replay_under_other_rules_keeps_the_recorded_date(tmp_path: Path, ws) -> None:  # type: ignore[no-untyped-def]
    log = AuditLog(tmp_path / "audit.sqlite3")
    ev = ws.evaluate("300127", as_of=dt.date(2026, 1, 13))
    log.append(run_id=ev.run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
               engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files)
    d = audit.replay_with_rules(log, log.get(ev.run_id), RULES)
    assert d.after.as_of == d.before.as_of == dt.date(2026, 1, 13) and not d.changed
    log.close()


def test_export_names_its_files_and_makes_missing_parents(log: AuditLog, tmp_path: Path) -> None:
    done = audit.export_run(log, log.get("aaaa0001"), tmp_path / "a" / "b" / "run")
    assert (done.evaluation.name, done.record.name) == ("evaluation.json", "record.json")
    assert done.evaluation.read_text().startswith('{\n  "symbol": "600111.SH"')
    assert done.record.read_text().startswith('{\n  "seq": 1,')


def test_a_snapshot_that_is_not_one_folder_is_refused(log: AuditLog, tmp_path: Path) -> None:
    rec = log.get("aaaa0001")
    manifest = log.manifest(rec.rules_snapshot)
    (_, h), *_ = manifest.items()
    two = {"rules/a.yaml": h, "other/b.yaml": h}
    snap = audit.snapshot_hash(two)
    log.db.execute("INSERT INTO snapshots VALUES (?, ?)", (snap, json.dumps(two)))
    rec.rules_snapshot = snap
    with pytest.raises(VerdictError, match=f"the rules snapshot {snap[:12]} of run aaaa0001 is not one folder") as err:
        audit.restore_run(log, rec, tmp_path)
    assert err.value.exit_code == 1 and err.value.problems[0].code == "audit-snapshot"


def test_replay_diff_is_labelled_and_names_the_symbol(log: AuditLog) -> None:
    rec = log.get("aaaa0002")
    rec.output = rec.output.replace('"score":', '"score":1', 1)
    r = audit.replay(log, rec)
    assert r.symbol == "300127.SZ" and "--- recorded\n+++ replayed" in r.diff
