"""Stage 7, record: an append-only SQLite audit log of every evaluation, replayable and tamper-evident.

Each record holds the run id, UTC time, OS user, engine version, symbol, the full output (with its
trace, stored compressed) and content-addressed snapshots of the exact rule and fact files used (each file stored once
per content hash). Records form a hash chain: each carries the hash of the one before, so an edited,
removed or reordered record is found by `verify`. Appends run in one IMMEDIATE transaction, in WAL
mode with a busy timeout and retries, so concurrent processes queue instead of failing, and a
process killed mid-write leaves either the whole record or none of it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import random
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Location, LookupFailure, Problem, VerdictError

ENV_VAR = "VERDICT_AUDIT_DB"
GENESIS = "0" * 64
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (hash TEXT PRIMARY KEY, manifest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    created_utc TEXT NOT NULL,
    os_user TEXT NOT NULL,
    engine_version TEXT NOT NULL,
    symbol TEXT NOT NULL,
    rating TEXT NOT NULL,
    rules_snapshot TEXT NOT NULL,
    facts_snapshot TEXT NOT NULL,
    output TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_symbol ON runs (symbol, seq);
"""

RECORD_FIELDS = ("seq", "run_id", "created_utc", "os_user", "engine_version", "symbol", "rating",
                 "rules_snapshot", "facts_snapshot", "output", "prev_hash")


def default_path() -> Path:
    """$VERDICT_AUDIT_DB, else the user's data directory (XDG on Linux)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "verdict" / "audit.sqlite3"


def record_hash(fields: dict[str, Any]) -> str:
    payload = json.dumps({k: fields[k] for k in RECORD_FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def snapshot_hash(manifest: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


@dataclass
class Record:
    seq: int
    run_id: str
    created_utc: str
    os_user: str
    engine_version: str
    symbol: str
    rating: str
    rules_snapshot: str
    facts_snapshot: str
    output: str
    prev_hash: str
    record_hash: str

    @property
    def evaluation(self) -> dict[str, Any]:
        return dict(json.loads(self.output))

    def fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RECORD_FIELDS}


@dataclass
class Entry:
    """What one evaluation puts in the log; the rest of its record is filled in on append."""

    run_id: str
    symbol: str
    rating: str
    output: str
    engine_version: str


@dataclass
class VerifyResult:
    records: int
    problem: str = ""
    bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


class AuditLog:
    """The audit database. Open it once per process; every method is one short transaction."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True) -> None:
        self.path = Path(path) if path else default_path()
        if not create and not self.path.exists():
            raise LookupFailure([Problem(Location(str(self.path)), "no-audit-db",
                                         f"no audit log at {self.path}.",
                                         f"Evaluate something first (records go there by default), or point "
                                         f"--audit-db / ${ENV_VAR} at an existing log.")])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=60000")
            with self._write():
                for stmt in filter(str.strip, SCHEMA.split(";")):
                    self.db.execute(stmt)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise VerdictError([Problem(Location(str(self.path)), "audit-db",
                                        f"cannot open the audit log: {exc}.",
                                        "Check the path and its permissions; the file must be a verdict "
                                        "audit log (SQLite).")]) from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, retried with backoff while another process holds the lock."""
        delay = 0.01
        for _ in range(200):
            try:
                self.db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        else:  # pragma: no cover - 200 retries after a 60 s busy timeout each
            raise VerdictError([Problem(Location(str(self.path)), "audit-busy",
                                        "the audit log stayed locked by another process.",
                                        "Try again; if it persists, check for a hung verdict process.")])
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # ---------------------------------------------------------------------------- snapshots

    def _store_snapshot(self, files: dict[str, bytes]) -> str:
        manifest = {}
        for name, content in sorted(files.items()):
            h = hashlib.sha256(content).hexdigest()
            manifest[name] = h
            if self.db.execute("SELECT 1 FROM blobs WHERE hash = ?", (h,)).fetchone() is None:
                self.db.execute("INSERT INTO blobs VALUES (?, ?)", (h, zlib.compress(content, 6)))
        sh = snapshot_hash(manifest)
        self.db.execute("INSERT OR IGNORE INTO snapshots VALUES (?, ?)", (sh, json.dumps(manifest, sort_keys=True)))
        return sh

    def restore(self, snapshot: str, into: Path) -> None:
        """Write a snapshot's files under `into`, checking every file against its hash."""
        row = self.db.execute("SELECT manifest FROM snapshots WHERE hash = ?", (snapshot,)).fetchone()
        if row is None:
            raise VerdictError([Problem(Location(str(self.path)), "audit-snapshot",
                                        f"snapshot {snapshot[:12]} is missing from the audit log.",
                                        "The log has been altered; run `verdict audit verify`.")], exit_code=1)
        for name, h in json.loads(row[0]).items():
            blob = self.db.execute("SELECT content FROM blobs WHERE hash = ?", (h,)).fetchone()
            content = _unpack(blob[0]) if blob else None
            if content is None or hashlib.sha256(content).hexdigest() != h:
                raise VerdictError([Problem(Location(str(self.path)), "audit-snapshot",
                                            f"stored file {name} of snapshot {snapshot[:12]} is missing or altered.",
                                            "Run `verdict audit verify`.")], exit_code=1)
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

    # ---------------------------------------------------------------------------- records

    def append(self, *, run_id: str, symbol: str, rating: str, output: str, engine_version: str,
               rules_files: dict[str, bytes], facts_files: dict[str, bytes], rules_name: str = "rules",
               facts_name: str = "facts", now: dt.datetime | None = None) -> Record:
        return self.append_many([Entry(run_id, symbol, rating, output, engine_version)], rules_files=rules_files,
                                facts_files=facts_files, rules_name=rules_name, facts_name=facts_name, now=now)[0]

    def append_many(self, entries: list[Entry], *, rules_files: dict[str, bytes], facts_files: dict[str, bytes],
                    rules_name: str = "rules", facts_name: str = "facts", now: dt.datetime | None = None
                    ) -> list[Record]:
        """Records of one batch (one workspace) in one transaction: the snapshots are hashed and stored
        once, not once per record (a 5,000-symbol screen would hash its 5,000 files 5,000 times)."""
        out: list[Record] = []
        with self._write():
            rules_snap = self._store_snapshot({f"{rules_name}/{k}": v for k, v in rules_files.items()})
            facts_snap = self._store_snapshot({f"{facts_name}/{k}": v for k, v in facts_files.items()})
            last = self.db.execute("SELECT seq, record_hash FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0], last[1]) if last else (0, GENESIS)
            user = _user()
            for e in entries:
                seq += 1
                created = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="microseconds")
                fields: dict[str, Any] = {"seq": seq, "run_id": e.run_id, "created_utc": created, "os_user": user,
                                          "engine_version": e.engine_version, "symbol": e.symbol,
                                          "rating": e.rating, "rules_snapshot": rules_snap,
                                          "facts_snapshot": facts_snap, "output": e.output, "prev_hash": prev}
                rh = record_hash(fields)
                stored = {**fields, "output": pack_output(e.output)}
                self.db.execute(f"INSERT INTO runs ({', '.join(RECORD_FIELDS)}, record_hash) "
                                f"VALUES ({', '.join('?' * (len(RECORD_FIELDS) + 1))})",
                                (*(stored[k] for k in RECORD_FIELDS), rh))
                out.append(Record(**fields, record_hash=rh))
                prev = rh
        return out

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Record]:
        cols = ", ".join((*RECORD_FIELDS, "record_hash"))
        rows = self.db.execute(f"SELECT {cols} FROM runs {where}", args).fetchall()
        names = (*RECORD_FIELDS, "record_hash")
        out = []
        for r in rows:
            values: dict[str, Any] = dict(zip(names, r, strict=True))
            values["output"] = unpack_output(values["output"])
            out.append(Record(**values))
        return out

    def list(self, symbol: str | None = None, since: dt.date | None = None) -> list[Record]:
        clauses, args = [], []
        if symbol:
            clauses.append("symbol = ?")
            args.append(symbol)
        if since:
            clauses.append("created_utc >= ?")
            args.append(since.isoformat())
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._rows(f"{where} ORDER BY seq", tuple(args))

    def get(self, run_id: str) -> Record:
        """A record by run id or an unambiguous prefix of it (at least 6 characters)."""
        rows = self._rows("WHERE run_id = ?", (run_id,))
        if not rows and len(run_id) >= 6:
            rows = self._rows("WHERE run_id LIKE ? ORDER BY seq", (run_id.replace("%", "") + "%",))
        if len(rows) == 1:
            return rows[0]
        what = "is ambiguous" if rows else "is not in the audit log"
        raise LookupFailure([Problem(Location(str(self.path)), "unknown-run", f"run id '{run_id}' {what}.",
                                     "List runs with `verdict audit list`; give the full id or a longer prefix.")])

    def latest(self, symbol: str) -> Record:
        rows = self._rows("WHERE symbol = ? ORDER BY seq DESC LIMIT 1", (symbol,))
        if not rows:
            raise LookupFailure([Problem(Location(str(self.path)), "no-record",
                                         f"no recorded evaluation of {symbol} in {self.path}.",
                                         f"Run `verdict evaluate {symbol}` first (it records by default).")])
        return rows[0]

    def verify(self) -> VerifyResult:
        """Walk the chain; name the first record altered, removed or reordered."""
        prev_hash, prev_seq, n = GENESIS, 0, 0
        checked: dict[str, str] = {}
        for rec in self._rows("ORDER BY seq"):
            n += 1
            if rec.seq != prev_seq + 1:
                return VerifyResult(n, f"record seq {prev_seq + 1} is missing (the log jumps from seq "
                                       f"{prev_seq} to {rec.seq}): a record was removed.", prev_seq + 1)
            if rec.prev_hash != prev_hash:
                return VerifyResult(n, f"record seq {rec.seq} (run {rec.run_id}) does not follow the record "
                                       f"before it: records were removed, reordered or altered.", rec.seq)
            if record_hash(rec.fields()) != rec.record_hash:
                return VerifyResult(n, f"record seq {rec.seq} (run {rec.run_id}, {rec.symbol}) was altered "
                                       f"after it was written.", rec.seq)
            for snap in (rec.rules_snapshot, rec.facts_snapshot):
                if snap not in checked:
                    checked[snap] = self._check_snapshot(snap)
                bad = checked[snap]
                if bad:
                    return VerifyResult(n, f"record seq {rec.seq} (run {rec.run_id}): {bad}", rec.seq)
            prev_hash, prev_seq = rec.record_hash, rec.seq
        return VerifyResult(n)

    def _check_snapshot(self, snap: str) -> str:
        row = self.db.execute("SELECT manifest FROM snapshots WHERE hash = ?", (snap,)).fetchone()
        if row is None:
            return f"its snapshot {snap[:12]} is missing."
        manifest = json.loads(row[0])
        if snapshot_hash(manifest) != snap:
            return f"its snapshot {snap[:12]} manifest was altered."
        for name, h in manifest.items():
            blob = self.db.execute("SELECT content FROM blobs WHERE hash = ?", (h,)).fetchone()
            if blob is None or _unpack(blob[0]) is None or hashlib.sha256(_unpack(blob[0]) or b"").hexdigest() != h:
                return f"stored file {name} of snapshot {snap[:12]} is missing or altered."
        return ""


def pack_output(text: str) -> bytes:
    """An output as stored: zlib-compressed UTF-8 (a 200-rule trace is ~60 KB of JSON, ~7 KB packed).
    The record hash is over the text, so packing changes nothing `verify` checks."""
    return zlib.compress(text.encode("utf-8"), 1)


def unpack_output(stored: str | bytes) -> str:
    """The output text of a stored record; logs written before packing hold the text itself. Bytes
    that do not unpack come back as a marker, and the record's hash then fails `verify`."""
    if isinstance(stored, str):
        return stored
    raw = _unpack(stored)
    try:
        return raw.decode("utf-8") if raw is not None else "<output does not unpack>"
    except UnicodeDecodeError:
        return "<output is not UTF-8>"


def _unpack(content: bytes) -> bytes | None:
    try:
        return zlib.decompress(content)
    except zlib.error:
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a bare container
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@dataclass
class Replay:
    run_id: str
    symbol: str
    identical: bool
    diff: str


def replay(log: AuditLog, rec: Record) -> Replay:
    """Restore the record's rules and facts into a scratch folder and evaluate again with its run id."""
    import difflib
    import tempfile

    from .model import Evaluation
    from .pipeline import Workspace

    with tempfile.TemporaryDirectory(prefix="verdict-replay-") as tmp:
        rules_root, facts_root = Path(tmp) / "r", Path(tmp) / "f"
        log.restore(rec.rules_snapshot, rules_root)
        log.restore(rec.facts_snapshot, facts_root)
        rules_dir = next(p for p in rules_root.iterdir() if p.is_dir())
        facts_dir = next(p for p in facts_root.iterdir() if p.is_dir())
        ws = Workspace.open(rules_dir, facts_dir)
        recorded = json.loads(rec.output).get("as_of")  # the same point in time: what was known then
        ev = ws.evaluate(rec.symbol, run_id=rec.run_id, as_of=dt.date.fromisoformat(recorded) if recorded else None)
    again = ev.model_dump_json()
    if again == rec.output:
        return Replay(rec.run_id, rec.symbol, True, "")
    before = json.dumps(Evaluation.model_validate_json(rec.output).model_dump(mode="json"), indent=2).splitlines()
    after = json.dumps(ev.model_dump(mode="json"), indent=2).splitlines()
    diff = "\n".join(difflib.unified_diff(before, after, "recorded", "replayed", lineterm="", n=2))
    return Replay(rec.run_id, rec.symbol, False, diff or "(outputs differ only in formatting)")
