"""Each promise of the audit log's hash chain, and of signed checkpoints, tested by breaking it.

An attacker here knows the record format and recomputes whatever hashes the change needs; what
each test shows is which check of `AuditLog.verify` (or of a checkpoint) catches the change.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from engine import checkpoint as cpt
from engine.audit import GENESIS, AuditLog, pack_output, record_hash, unpack_output
from engine.errors import LookupFailure, VerdictError

SYMBOLS = ["600111", "000831", "300748", "300224", "300127"]
COLUMNS = ("seq", "run_id", "created_utc", "os_user", "engine_version", "symbol", "rating", "rules_snapshot",
           "facts_snapshot", "output", "prev_hash", "record_hash")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, ws) -> Path:  # type: ignore[no-untyped-def]
    """A log of five real evaluations, one per record."""
    path = tmp_path_factory.mktemp("promises") / "audit.sqlite3"
    log = AuditLog(path)
    for sym in SYMBOLS:
        ev = ws.evaluate(sym)
        log.append(run_id=ev.run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
                   engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files)
    log.close()
    return path


@pytest.fixture()
def db(pristine: Path, tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite3"
    shutil.copy(pristine, path)
    return path


def _records(path: Path) -> list[dict]:  # type: ignore[type-arg]
    con = sqlite3.connect(path)
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in con.execute(f"SELECT {', '.join(COLUMNS)} FROM runs "
                                                                    "ORDER BY seq")]
    con.close()
    for r in rows:
        r["output"] = unpack_output(r["output"])
    return rows


def _rewrite(path: Path, records: list[dict], rechain: bool) -> None:  # type: ignore[type-arg]
    """Replace every record; with `rechain`, recompute every prev and own hash (a full rewrite)."""
    prev = GENESIS
    for r in records:
        if rechain:
            r["prev_hash"] = prev
            r["record_hash"] = record_hash(r)
            prev = r["record_hash"]
    con = sqlite3.connect(path)
    con.execute("DELETE FROM runs")
    for r in records:
        con.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    tuple(pack_output(r[k]) if k == "output" else r[k] for k in COLUMNS))
    con.commit()
    con.close()


def _verify(path: Path) -> tuple[bool, str, int | None]:
    log = AuditLog(path, readonly=True)
    try:
        res = log.verify()
    finally:
        log.close()
    # the records counted are those that verify: all of them, or those before the first problem
    assert res.records == (len(_records(path)) if res.ok else (res.bad_seq or 0) - 1)
    return res.ok, res.problem, res.bad_seq


def _rate(rec: dict, rating: str) -> None:  # type: ignore[type-arg]
    out = json.loads(rec["output"])
    out["rating"] = rating
    rec["output"] = json.dumps(out)
    rec["rating"] = rating


def test_the_untouched_log_verifies(db: Path) -> None:
    assert _verify(db) == (True, "", None)


def test_verify_up_to_a_record_checks_that_far_and_no_further(db: Path) -> None:
    """What a checkpoint is signed over: the chain up to the head it signs."""
    recs = _records(db)
    recs[3]["os_user"] = "mallory"
    _rewrite(db, recs, rechain=False)
    log = AuditLog(db, readonly=True)
    try:
        assert log.verify(3).ok and log.verify(3).records == 3
        bad = log.verify(4)
        assert not bad.ok and bad.bad_seq == 4 and bad.records == 3
        assert not log.verify().ok
    finally:
        log.close()


def test_verify_reads_one_snapshot_of_the_log_while_others_append(db: Path, ws) -> None:  # type: ignore[no-untyped-def]
    reader, writer = AuditLog(db, readonly=True), AuditLog(db)
    try:
        with reader.reading():
            before = reader.head()
            ev = ws.evaluate("600111")
            writer.append(run_id=ev.run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
                          engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files)
            assert reader.head() == before and reader.verify().records == 5  # not the record appended meanwhile
        assert reader.head() == (6, writer.head()[1]) and reader.verify().records == 6  # type: ignore[index]
    finally:
        reader.close()
        writer.close()


def test_link_a_record_rewritten_with_its_own_hash_recomputed_breaks_the_next_link(db: Path) -> None:
    recs = _records(db)
    _rate(recs[1], "Sell")
    recs[1]["record_hash"] = record_hash(recs[1])  # its own hash is consistent again; the next link is not
    _rewrite(db, recs, rechain=False)
    ok, problem, seq = _verify(db)
    assert not ok and seq == 3 and "does not follow the record before it" in problem


def test_link_the_first_record_must_follow_the_genesis_hash(db: Path) -> None:
    recs = _records(db)
    recs[0]["prev_hash"] = "f" * 64
    recs[0]["record_hash"] = record_hash(recs[0])
    _rewrite(db, recs, rechain=False)
    ok, problem, seq = _verify(db)
    assert not ok and seq == 1 and "does not follow" in problem


def test_alteration_of_any_hashed_field_is_named(pristine: Path, tmp_path: Path) -> None:
    for field, value in (("os_user", "mallory"), ("created_utc", "2020-01-01T00:00:00+00:00"), ("rating", "Sell"),
                         ("engine_version", "9.9"), ("run_id", "0" * 32), ("symbol", "000001.SZ"),
                         ("rules_snapshot", "0" * 64), ("record_hash", "0" * 64)):
        db = tmp_path / f"{field}.sqlite3"
        shutil.copy(pristine, db)
        recs = _records(db)
        recs[2][field] = value
        _rewrite(db, recs, rechain=False)
        ok, problem, seq = _verify(db)
        assert not ok and seq == 3 and "was altered after it was written" in problem, field


def test_order_swapped_records_are_found_whether_or_not_their_hashes_are_recomputed(db: Path) -> None:
    recs = _records(db)
    swapped = [dict(r) for r in recs]
    for key in ("run_id", "symbol", "rating", "output", "created_utc"):
        swapped[1][key], swapped[2][key] = recs[2][key], recs[1][key]
    _rewrite(db, swapped, rechain=False)
    ok, _problem, seq = _verify(db)
    assert not ok and seq == 2
    # recompute the two swapped records' own hashes: the link after them breaks
    for r in swapped[1:3]:
        r["record_hash"] = record_hash(r)
    _rewrite(db, swapped, rechain=False)
    ok, problem, seq = _verify(db)
    assert not ok and seq == 3 and "does not follow" in problem


def test_deletion_of_a_middle_record_is_named(db: Path) -> None:
    recs = _records(db)
    _rewrite(db, recs[:2] + recs[3:], rechain=False)
    ok, problem, seq = _verify(db)
    assert not ok and seq == 3 and "record seq 3 is missing" in problem


def test_deletion_of_the_first_record_is_named(db: Path) -> None:
    _rewrite(db, _records(db)[1:], rechain=False)
    ok, problem, seq = _verify(db)
    assert not ok and seq == 1 and "record seq 1 is missing" in problem


def test_deletion_with_renumbering_breaks_the_link(db: Path) -> None:
    recs = _records(db)
    kept = recs[:1] + recs[2:]
    for i, r in enumerate(kept, 1):
        r["seq"] = i
        r["record_hash"] = record_hash(r)  # each record consistent with itself, not with its neighbour
    _rewrite(db, kept, rechain=False)
    ok, problem, seq = _verify(db)
    assert not ok and seq == 2 and "does not follow" in problem


def test_deleting_the_newest_records_is_not_visible_from_inside_the_file(db: Path) -> None:
    """The documented limit of a chain in one file: a checkpoint (below) is the answer."""
    _rewrite(db, _records(db)[:3], rechain=False)
    assert _verify(db)[0]


def test_a_full_rewrite_is_not_visible_from_inside_the_file(db: Path) -> None:
    recs = _records(db)
    _rate(recs[1], "Sell")
    _rewrite(db, recs, rechain=True)
    assert _verify(db)[0]  # every hash recomputed: the chain alone cannot tell


def _snapshot_of(db: Path, column: str) -> tuple[str, dict[str, str]]:
    con = sqlite3.connect(db)
    snap = con.execute(f"SELECT {column} FROM runs WHERE seq = 1").fetchone()[0]
    manifest = json.loads(con.execute("SELECT manifest FROM snapshots WHERE hash = ?", (snap,)).fetchone()[0])
    con.close()
    return snap, manifest


@pytest.mark.parametrize("column", ["rules_snapshot", "facts_snapshot"])
def test_snapshots_altered_or_removed_are_named(pristine: Path, tmp_path: Path, column: str) -> None:
    """Every record shares one snapshot here, so the first record names it."""
    import zlib

    def fresh(name: str) -> tuple[Path, sqlite3.Connection]:
        db = tmp_path / f"{name}.sqlite3"
        shutil.copy(pristine, db)
        return db, sqlite3.connect(db)

    snap, manifest = _snapshot_of(pristine, column)
    name, blob = sorted(manifest.items())[-1]
    cases = {
        "file-altered": ("UPDATE blobs SET content = ? WHERE hash = ?", (zlib.compress(b"edited"), blob),
                         f"stored file {name} of snapshot {snap[:12]} is missing or altered"),
        "file-unreadable": ("UPDATE blobs SET content = ? WHERE hash = ?", (b"not zlib", blob),
                            f"stored file {name} of snapshot {snap[:12]} is missing or altered"),
        "file-removed": ("DELETE FROM blobs WHERE hash = ?", (blob,),
                         f"stored file {name} of snapshot {snap[:12]} is missing or altered"),
        "manifest-altered": ("UPDATE snapshots SET manifest = ? WHERE hash = ?",
                             (json.dumps({**manifest, name: "0" * 64}, sort_keys=True), snap),
                             f"its snapshot {snap[:12]} manifest was altered"),
        "snapshot-removed": ("DELETE FROM snapshots WHERE hash = ?", (snap,), f"its snapshot {snap[:12]} is missing"),
    }
    for case, (sql, args, message) in cases.items():
        db, con = fresh(case)
        con.execute(sql, args)
        con.commit()
        con.close()
        ok, problem, seq = _verify(db)
        assert not ok and seq == 1 and problem.startswith("record seq 1 (run ") and message in problem, case


# ------------------------------------------------------------------------------------- checkpoints


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "keys" / "audit-signing.key"
    cpt.generate_key(key)
    return key, key.with_suffix(".pub")


def _checkpoint(db: Path, key: Path) -> cpt.Checkpoint:
    log = AuditLog(db)
    try:
        return cpt.sign(log, cpt.load_private_key(key))
    finally:
        log.close()


def _check_stored(db: Path, pub: Path) -> list[cpt.CheckpointCheck]:
    log = AuditLog(db, readonly=True)
    try:
        chain = log.verify()
        public = cpt.load_public_key(pub)
        return [cpt.check(log, chain, cpt.Checkpoint.parse(line, "log"), public, "log")
                for line in log.checkpoint_lines()]
    finally:
        log.close()


def test_keygen_makes_a_private_key_only_its_owner_reads_and_never_overwrites(keys: tuple[Path, Path]) -> None:
    key, pub = keys
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in key.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    before = key.read_bytes()
    with pytest.raises(LookupFailure, match="never overwritten"):
        cpt.generate_key(key)
    assert key.read_bytes() == before
    key.chmod(0o644)
    with pytest.raises(LookupFailure, match="readable by others"):
        cpt.load_private_key(key)


def test_a_checkpoint_proves_the_records_up_to_it(db: Path, keys: tuple[Path, Path], ws) -> None:  # type: ignore[no-untyped-def]
    key, pub = keys
    cp = _checkpoint(db, key)
    assert cp.seq == 5 and cp.key == cpt.key_id(cpt.load_public_key(pub))
    log = AuditLog(db)  # records after a checkpoint are fine: it vouches for the first five
    ev = ws.evaluate("600111")
    log.append(run_id=ev.run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_dump_json(),
               engine_version=ev.engine_version, rules_files=ws.book.files, facts_files=ws.facts.files)
    log.close()
    (check,) = _check_stored(db, pub)
    assert check.ok, check.problem


def test_a_full_rewrite_after_a_checkpoint_is_detected(db: Path, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    _checkpoint(db, key)
    recs = _records(db)
    _rate(recs[1], "Sell")
    _rewrite(db, recs, rechain=True)
    assert _verify(db)[0]  # the chain alone is fooled ...
    (check,) = _check_stored(db, pub)  # ... the checkpoint is not
    assert not check.ok and "was rewritten" in check.problem and "seq 5" in check.problem


def test_removing_records_a_checkpoint_vouched_for_is_detected(db: Path, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    _checkpoint(db, key)
    _rewrite(db, _records(db)[:3], rechain=False)
    (check,) = _check_stored(db, pub)
    assert not check.ok and "no record seq 5" in check.problem


def test_an_altered_or_foreign_checkpoint_is_refused(db: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    cp = _checkpoint(db, key)
    recs = _records(db)
    _rate(recs[1], "Sell")
    _rewrite(db, recs, rechain=True)
    forged = json.loads(cp.line())
    forged["record_hash"] = _records(db)[4]["record_hash"]  # point the checkpoint at the rewritten head
    con = sqlite3.connect(db)
    con.execute("UPDATE checkpoints SET line = ?", (json.dumps(forged),))
    con.commit()
    con.close()
    (check,) = _check_stored(db, pub)
    assert not check.ok and "signature does not match" in check.problem
    # a checkpoint signed with another key (the rewriter's own) names the key
    other = tmp_path / "other" / "k.key"
    cpt.generate_key(other)
    _checkpoint(db, other)
    checks = _check_stored(db, pub)
    assert not checks[-1].ok and "not by the given public key" in checks[-1].problem


def test_signing_refuses_a_broken_chain_and_an_empty_log(db: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, _ = keys
    recs = _records(db)
    recs[1]["os_user"] = "mallory"
    _rewrite(db, recs, rechain=False)
    with pytest.raises(VerdictError, match="not signed"):
        _checkpoint(db, key)
    recs = _records(db)[:1] + _records(db)[1:]
    recs[1]["os_user"] = _records(db)[0]["os_user"]
    recs[1]["record_hash"] = record_hash(recs[1])
    recs[4]["rating"] = "Sell"  # only the head is altered: the chain up to it must still be checked
    _rewrite(db, recs, rechain=False)
    with pytest.raises(VerdictError, match=r"record seq 5 .* was altered"):
        _checkpoint(db, key)
    with pytest.raises(LookupFailure, match="nothing to sign"):
        _checkpoint(tmp_path / "empty.sqlite3", key)


def test_an_encrypted_key_needs_its_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "enc" / "k.key"
    monkeypatch.setenv(cpt.PASSPHRASE_ENV, "correct horse")
    cpt.generate_key(key)
    assert b"ENCRYPTED" in key.read_bytes()
    cpt.load_private_key(key)
    monkeypatch.delenv(cpt.PASSPHRASE_ENV)
    with pytest.raises(LookupFailure, match="cannot read the signing key"):
        cpt.load_private_key(key)


def test_default_key_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cpt.KEY_ENV, raising=False)
    monkeypatch.delenv(cpt.PUBLIC_KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert cpt.default_key_path() == tmp_path / "verdict" / "audit-signing.key"
    assert cpt.default_public_key_path() == tmp_path / "verdict" / "audit-signing.pub"
    monkeypatch.setenv(cpt.KEY_ENV, str(tmp_path / "k"))
    assert cpt.default_key_path() == tmp_path / "k"
    assert os.fspath(cpt.default_public_key_path()) == os.fspath(tmp_path / "k.pub")


def test_the_checkpoint_commands_catch_a_full_rewrite(db: Path, tmp_path: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    """keygen, checkpoint --out, verify --checkpoint / --checkpoint-file, as a user runs them."""
    key = tmp_path / "cfg" / "audit.key"
    env = {"VERDICT_AUDIT_DB": str(db), "VERDICT_AUDIT_KEY": str(key), "VERDICT_AUDIT_PUBKEY": str(tmp_path / "x")}
    missing = verdict("audit", "checkpoint", env_extra=env)
    assert missing.returncode == 2 and f"no signing key at {key}" in missing.stderr and "audit keygen" in missing.stderr
    made = verdict("audit", "keygen", env_extra=env)
    assert made.returncode == 0 and f"private key {key}" in made.stdout
    assert verdict("audit", "keygen", env_extra=env).returncode == 2  # never overwritten
    copies = tmp_path / "kept-elsewhere.txt"
    signed = verdict("audit", "checkpoint", "--out", str(copies), env_extra=env)
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["seq"] == 5 and copies.read_text() == signed.stdout
    pub = ["--public-key", str(key.with_suffix(".pub"))]
    ok = verdict("audit", "verify", "--checkpoint", "--checkpoint-file", str(copies), *pub, env_extra=env)
    assert ok.returncode == 0 and ok.stdout.count("records 1-5 unchanged") == 2, ok.stdout + ok.stderr
    no_key = verdict("audit", "verify", "--checkpoint", env_extra=env)
    assert no_key.returncode == 2 and "no public key at" in no_key.stderr

    recs = _records(db)
    _rate(recs[1], "Sell")
    _rewrite(db, recs, rechain=True)
    assert verdict("audit", "verify", env_extra=env).returncode == 0  # the chain alone is fooled
    bad = verdict("audit", "verify", "--checkpoint", *pub, env_extra=env)
    assert bad.returncode == 1 and "FAILS: record seq 5 hashes to" in bad.stderr and "rewritten" in bad.stderr
    con = sqlite3.connect(db)
    con.execute("DELETE FROM checkpoints")  # the rewriter also drops the stored checkpoints ...
    con.commit()
    con.close()
    none = verdict("audit", "verify", "--checkpoint", *pub, env_extra=env)
    assert none.returncode == 1 and "no checkpoint in the log" in none.stderr
    kept = verdict("audit", "verify", "--checkpoint-file", str(copies), *pub, env_extra=env)  # ... not the copies
    assert kept.returncode == 1 and f"{copies}:1) FAILS" in kept.stderr and "rewritten" in kept.stderr
