"""Stage 7, record: an append-only SQLite audit log of every evaluation, replayable and tamper-evident.

Each record holds the run id, UTC time, OS user, engine version, symbol, the full output (with its
trace, stored compressed) and content-addressed snapshots of the exact rule and fact files used (each
file stored once per content hash). Records form a hash chain: each carries the hash of the one before,
so an edited, removed or reordered record is found by `verify`; signed checkpoints (checkpoint.py)
anchor the chain outside the file against a rewrite of all of it.

Writers append in one IMMEDIATE transaction in WAL mode, so concurrent processes queue and a process
killed mid-write leaves the whole record or none of it; a writer kept waiting by another process's
lock says so after a second and gives up, with a clear error, after a stated time. Readers open the
file read-only and never take the write lock: they work on a read-only log and while a writer holds it.
This module never prints: the CLI decides what the user sees.
"""

from __future__ import annotations

import builtins
import datetime as dt
import getpass
import hashlib
import json
import os
import re
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import Location, LookupFailure, Problem, VerdictError

if TYPE_CHECKING:
    from .compile import Compiled
    from .load import LoadedRule
    from .model import Evaluation, Outcome
    from .pipeline import Workspace
    from .rundiff import RunDiff

ENV_VAR = "VERDICT_AUDIT_DB"
WAIT_ENV_VAR = "VERDICT_AUDIT_WAIT"
DEFAULT_WAIT = 30.0  # seconds a writer waits for another process's write lock before giving up
NOTICE_AFTER = 1.0  # seconds of waiting before a writer says it is waiting
READER_BUSY = 5.0  # seconds a reader tolerates SQLite's own brief exclusive moments (never the write lock)
GENESIS = "0" * 64
LAST_SEQ = 2**63 - 1  # SQLite's largest integer: no seq is beyond it
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
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL
);
"""
TABLES = ("meta", "blobs", "snapshots", "runs", "checkpoints")

RECORD_FIELDS = ("seq", "run_id", "created_utc", "os_user", "engine_version", "symbol", "rating",
                 "rules_snapshot", "facts_snapshot", "output", "prev_hash")
INFO_FIELDS = ("seq", "run_id", "created_utc", "os_user", "engine_version", "symbol", "rating")


def default_path() -> Path:
    """$VERDICT_AUDIT_DB, else the user's data directory (XDG on Linux)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "verdict" / "audit.sqlite3"


def default_wait() -> float:
    """$VERDICT_AUDIT_WAIT seconds, else 30."""
    value = os.environ.get(WAIT_ENV_VAR, "").strip()
    if not value:
        return DEFAULT_WAIT
    try:
        wait = float(value)
    except ValueError:
        wait = -1.0
    if not 0 <= wait < 1e6:
        raise LookupFailure([Problem(Location(), "bad-audit-wait", f"${WAIT_ENV_VAR} '{value}' is not a number of "
                                     "seconds.", f"Set it to how long a writer may wait for the audit log's lock, "
                                     f"e.g. {WAIT_ENV_VAR}=30, or unset it for the default {DEFAULT_WAIT:g} s.")])
    return wait


def record_hash(fields: dict[str, Any]) -> str:
    """What a record's hash is: SHA-256 of its fields as sorted-key JSON (what `verify` recomputes)."""
    payload = json.dumps({k: fields[k] for k in RECORD_FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# The record hash computed in two steps, as a batch appends: the sorted fields up to and including the
# output (everything known when the evaluation arrives) are hashed then, off the write lock; the rest
# (the chain's seq and prev_hash among them) when the record takes its place in the chain.
_HASH_HEAD = tuple(k for k in sorted(RECORD_FIELDS) if k <= "output")
_HASH_TAIL = tuple(k for k in sorted(RECORD_FIELDS) if k > "output")


def _hash_head(fields: dict[str, Any]) -> Any:
    """SHA-256 over `record_hash`'s payload as far as the output, inclusive (a hash object to go on)."""
    head = json.dumps({k: fields[k] for k in _HASH_HEAD}, ensure_ascii=False)
    return hashlib.sha256(head[:-1].encode("utf-8"))  # without the closing brace


def _hash_tail(head: Any, fields: dict[str, Any]) -> str:
    """`record_hash(fields)`, from `_hash_head(fields)` (tests/test_audit_hash.py: equal for any fields)."""
    h = head.copy()
    h.update((", " + json.dumps({k: fields[k] for k in _HASH_TAIL}, ensure_ascii=False)[1:]).encode("utf-8"))
    return str(h.hexdigest())


def snapshot_manifest(files: dict[str, bytes]) -> dict[str, str]:
    """A snapshot's files by name (sorted) -> SHA-256 of the content."""
    return {name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())}


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
    log: AuditLog | None = field(default=None, repr=False, compare=False)  # the log it was read from

    @property
    def evaluation(self) -> dict[str, Any]:
        """The recorded evaluation as plain JSON data (a recorded trace rendered; see `recorded_evaluation`
        for the model)."""
        return dict(json.loads(recorded_document(self)))

    def fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RECORD_FIELDS}


@dataclass
class RunInfo:
    """A record without its output, for listings: what `audit list` shows."""

    seq: int
    run_id: str
    created_utc: str
    os_user: str
    engine_version: str
    symbol: str
    rating: str
    score: float | None
    as_of: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "run_id": self.run_id, "created_utc": self.created_utc, "user": self.os_user,
                "symbol": self.symbol, "rating": self.rating, "score": self.score, "as_of": self.as_of,
                "engine_version": self.engine_version}


@dataclass
class Entry:
    """What one evaluation puts in the log; the rest of its record is filled in on append. `output`:
    its text, or that text already packed (`pack_output`, as screen workers send it)."""

    run_id: str
    symbol: str
    rating: str
    output: str | bytes
    engine_version: str


@dataclass
class VerifyResult:
    records: int  # records that verify (before the first problem, if any)
    problem: str = ""
    bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _read_only_error(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "readonly" in text or "read-only" in text or "unable to open" in text


class AuditLog:
    """The audit database: a writer (the default) or a reader (`readonly=True`).

    A reader opens the file read-only (SQLite `mode=ro`, or `immutable` where not even the shared-memory
    index can be created beside a read-only file) and never waits for, or takes, the write lock.
    A writer waits up to `wait` seconds for another process's lock (`$VERDICT_AUDIT_WAIT`, default 30);
    `on_wait(waited_seconds)` is called once when it has waited a second, so a command can say so.
    """

    def __init__(self, path: Path | str | None = None, *, create: bool = True, readonly: bool = False,
                 wait: float | None = None, on_wait: Callable[[float], None] | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.readonly = readonly or not create
        self.wait = default_wait() if wait is None else wait
        self.on_wait = on_wait
        if self.readonly and not self.path.exists():
            raise LookupFailure([Problem(Location(str(self.path)), "no-audit-db",
                                         f"no audit log at {self.path}.",
                                         f"Evaluate something first (records go there by default), or point "
                                         f"--audit-db / ${ENV_VAR} at an existing log.")])
        try:
            self.db = self._open_reader() if self.readonly else self._open_writer()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> VerdictError:
        if not self.readonly and _read_only_error(exc):
            return VerdictError([Problem(Location(str(self.path)), "audit-read-only",
                                         f"the audit log at {self.path} cannot be written ({exc}): nothing was "
                                         "recorded.",
                                         f"Give write access to the file and its folder, point --audit-db / "
                                         f"${ENV_VAR} at a writable log, or evaluate with --no-record.")])
        return VerdictError([Problem(Location(str(self.path)), "audit-db",
                                     f"cannot open the audit log: {exc}.",
                                     "Check the path and its permissions; the file must be a verdict "
                                     "audit log (SQLite).")])

    def _open_reader(self) -> sqlite3.Connection:
        """A WAL reader never waits for a writer; the busy timeout only covers the milliseconds in which
        SQLite itself holds the file exclusively (the last writer closing and folding its WAL back in)."""
        uri = "file:" + quote(str(self.path.absolute()))
        db = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None, timeout=READER_BUSY)
        try:
            names = self._tables(db)
        except sqlite3.OperationalError as exc:
            if not _read_only_error(exc):
                raise
            # A WAL log in a folder this user cannot write: SQLite cannot make the -shm index beside it.
            # Nobody is writing it then (a writer keeps -wal and -shm open), so read the file as it is.
            db.close()
            db = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, isolation_level=None, timeout=READER_BUSY)
            names = self._tables(db)
        if "runs" not in names:
            db.close()
            raise LookupFailure([Problem(Location(str(self.path)), "not-audit-db",
                                         f"{self.path} is not a verdict audit log (it has no runs table).",
                                         f"Point --audit-db / ${ENV_VAR} at the log `verdict evaluate` writes.")])
        return db

    @staticmethod
    def _tables(db: sqlite3.Connection) -> set[str]:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _open_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        self._acquire("PRAGMA journal_mode=WAL")  # persistent; a no-op read on a log already in WAL mode
        self.db.execute("PRAGMA synchronous=FULL")
        if set(TABLES) - self._tables(self.db):  # a new log, or one from before checkpoints
            with self._write():
                for stmt in filter(str.strip, SCHEMA.split(";")):
                    self.db.execute(stmt)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return self.db

    def close(self) -> None:
        self.db.close()

    def _acquire(self, statement: str) -> None:
        """Run `statement`, waiting while another process holds the write lock: say so once after a
        second (`on_wait`), give up after `self.wait` seconds with an error naming the setting."""
        start = time.monotonic()
        told = False
        while True:
            left = self.wait - (time.monotonic() - start)
            self.db.execute(f"PRAGMA busy_timeout={max(0, int(min(left, NOTICE_AFTER) * 1000))}")
            try:
                self.db.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise self._error(exc) from exc
                waited = time.monotonic() - start
                if waited >= self.wait:
                    raise VerdictError([Problem(
                        Location(str(self.path)), "audit-busy",
                        f"another process has held the audit log's write lock for the {self.wait:g} s this "
                        "writer may wait; gave up waiting, and nothing was recorded.",
                        f"Wait for it to finish and try again, or find a hung verdict process holding "
                        f"{self.path}. The wait is ${WAIT_ENV_VAR} seconds (now {self.wait:g}); "
                        f"--no-record evaluates without recording.")]) from None
                if not told and self.on_wait is not None:  # the first busy timeout is a second long
                    self.on_wait(waited)
                    told = True

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, taken as `_acquire` says."""
        self._acquire("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent read transaction (a WAL reader's snapshot: appends made meanwhile are not
        seen). Inside one already, it is that one."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    # ---------------------------------------------------------------------------- snapshots

    def _store_snapshot(self, files: dict[str, bytes], manifest: dict[str, str], packed: dict[str, bytes]) -> str:
        """Store a snapshot of `files` (each file once per content hash) and return its hash; `manifest`:
        their hashes (`snapshot_manifest`); `packed`: contents already compressed, by hash."""
        missing = self._missing_blobs(manifest)
        self.db.executemany("INSERT INTO blobs VALUES (?, ?)", (
            (h, packed[h] if h in packed else zlib.compress(files[name], 6)) for h, name in missing.items()))
        sh = snapshot_hash(manifest)
        self.db.execute("INSERT OR IGNORE INTO snapshots VALUES (?, ?)", (sh, json.dumps(manifest, sort_keys=True)))
        return sh

    def _missing_blobs(self, manifest: dict[str, str]) -> dict[str, str]:
        """The files of `manifest` whose content the log does not hold yet: hash -> a name it has."""
        hashes = list(dict.fromkeys(manifest.values()))
        stored: set[str] = set()
        for i in range(0, len(hashes), 500):  # a universe's 5,000 files: ten queries, not 5,000
            part = hashes[i:i + 500]
            stored.update(r[0] for r in self.db.execute(
                f"SELECT hash FROM blobs WHERE hash IN ({', '.join('?' * len(part))})", part))
        return {h: name for name, h in manifest.items() if h not in stored}

    def manifest(self, snapshot: str) -> dict[str, str]:
        """A snapshot's files: name -> SHA-256 of the content."""
        row = self.db.execute("SELECT manifest FROM snapshots WHERE hash = ?", (snapshot,)).fetchone()
        if row is None:
            raise VerdictError([Problem(Location(str(self.path)), "audit-snapshot",
                                        f"snapshot {snapshot[:12]} is missing from the audit log.",
                                        "The log has been altered; run `verdict audit verify`.")], exit_code=1)
        return dict(json.loads(row[0]))

    def restore(self, snapshot: str, into: Path, only: set[str] | None = None) -> None:
        """Write a snapshot's files (those named in `only`, if given) under `into`, checking every file
        against its hash (and that no stored name leads outside `into`)."""
        root = into.resolve()
        for name, h in self.manifest(snapshot).items():
            if only is not None and name not in only:
                continue
            blob = self.db.execute("SELECT content FROM blobs WHERE hash = ?", (h,)).fetchone()
            content = _unpack(blob[0]) if blob else None
            if content is None or hashlib.sha256(content).hexdigest() != h:
                raise VerdictError([Problem(Location(str(self.path)), "audit-snapshot",
                                            f"stored file {name} of snapshot {snapshot[:12]} is missing or altered.",
                                            "Run `verdict audit verify`.")], exit_code=1)
            target = (root / name).resolve()
            if not target.is_relative_to(root):
                raise VerdictError([Problem(Location(str(self.path)), "audit-snapshot",
                                            f"stored file name '{name}' of snapshot {snapshot[:12]} leads outside "
                                            "the folder it is restored into; nothing of it was written there.",
                                            "The log has been altered; run `verdict audit verify`.")], exit_code=1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

    # ---------------------------------------------------------------------------- records

    def append(self, *, run_id: str, symbol: str, rating: str, output: str, engine_version: str,
               rules_files: dict[str, bytes], facts_files: dict[str, bytes], rules_name: str = "rules",
               facts_name: str = "facts", now: dt.datetime | None = None) -> Record:
        return self.append_many([Entry(run_id, symbol, rating, output, engine_version)], rules_files=rules_files,
                                facts_files=facts_files, rules_name=rules_name, facts_name=facts_name, now=now)[0]

    def append_many(self, entries: Iterable[Entry], *, rules_files: dict[str, bytes], facts_files: dict[str, bytes],
                    rules_name: str = "rules", facts_name: str = "facts", now: dt.datetime | None = None,
                    keep: bool = True) -> list[Record]:
        """Records of one batch (one workspace) in one transaction: the snapshots are hashed and stored
        once, not once per record (a 5,000-symbol screen would hash its 5,000 files 5,000 times).
        `keep=False` returns no records (a screen's outputs are not all held in memory at once)."""
        batch = self.batch(rules_files=rules_files, facts_files=facts_files, rules_name=rules_name,
                           facts_name=facts_name, keep=keep)
        for e in entries:
            batch.add(e, now)
        return batch.commit()

    def batch(self, *, rules_files: dict[str, bytes], facts_files: dict[str, bytes], rules_name: str = "rules",
              facts_name: str = "facts", keep: bool = True) -> Batch:
        """A batch to fill as evaluations arrive and append in one transaction (`Batch`)."""
        return Batch(self, {f"{rules_name}/{k}": v for k, v in rules_files.items()},
                     {f"{facts_name}/{k}": v for k, v in facts_files.items()}, keep)

    def _iter(self, where: str = "", args: tuple[Any, ...] = ()) -> Iterator[Record]:
        cols = ", ".join((*RECORD_FIELDS, "record_hash"))
        names = (*RECORD_FIELDS, "record_hash")
        for r in self.db.execute(f"SELECT {cols} FROM runs {where}", args):
            values: dict[str, Any] = dict(zip(names, r, strict=True))
            values["output"] = unpack_output(values["output"])
            yield Record(**values, log=self)

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Record]:
        return list(self._iter(where, args))

    @staticmethod
    def _filter(symbol: str | None, since: dt.date | None, until: dt.date | None) -> tuple[str, tuple[Any, ...]]:
        clauses, args = [], []
        if symbol:
            clauses.append("symbol = ?")
            args.append(symbol)
        if since:
            clauses.append("created_utc >= ?")
            args.append(since.isoformat())
        if until:  # through the whole of that (UTC) day
            clauses.append("created_utc < ?")
            args.append((until + dt.timedelta(days=1)).isoformat())
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(args)

    def list(self, symbol: str | None = None, since: dt.date | None = None, until: dt.date | None = None
             ) -> list[Record]:
        """Whole records (outputs unpacked), oldest first."""
        where, args = self._filter(symbol, since, until)
        return self._rows(f"{where} ORDER BY seq", args)

    def infos(self, symbol: str | None = None, since: dt.date | None = None, until: dt.date | None = None
              ) -> builtins.list[RunInfo]:
        """What a listing shows, oldest first, without unpacking whole outputs."""
        where, args = self._filter(symbol, since, until)
        out = []
        for row in self.db.execute(f"SELECT {', '.join(INFO_FIELDS)}, output FROM runs {where} ORDER BY seq", args):
            score, as_of = recorded_head(row[-1])
            out.append(RunInfo(seq=row[0], run_id=row[1], created_utc=row[2], os_user=row[3], engine_version=row[4],
                               symbol=row[5], rating=row[6], score=score, as_of=as_of))
        return out

    def get(self, run_id: str) -> Record:
        """A record by run id or an unambiguous prefix of it (at least 6 characters). The prefix is
        matched literally (a range over the index: `_` and `%` are characters, not wildcards)."""
        rows = self._rows("WHERE run_id = ?", (run_id,))
        if not rows and len(run_id) >= 6:
            rows = self._rows("WHERE run_id >= ? AND run_id < ? AND substr(run_id, 1, ?) = ? ORDER BY seq LIMIT 6",
                              (run_id, run_id + "\U0010ffff", len(run_id), run_id))
        if len(rows) == 1:
            return rows[0]
        if rows:
            shown = ", ".join(r.run_id[:len(run_id) + 4] + "..." for r in rows[:5])
            raise LookupFailure([Problem(Location(str(self.path)), "ambiguous-run",
                                         f"run id prefix '{run_id}' is ambiguous: it starts {shown}"
                                         + (" and more" if len(rows) > 5 else "") + ".",
                                         "Give more characters of the run id (`verdict audit list` shows them).")])
        hint = "List runs with `verdict audit list`; give the full id or a prefix of 6 or more characters."
        raise LookupFailure([Problem(Location(str(self.path)), "unknown-run",
                                     f"run id '{run_id}' is not in the audit log.", hint)])

    def latest(self, symbol: str) -> Record:
        rows = self._rows("WHERE symbol = ? ORDER BY seq DESC LIMIT 1", (symbol,))
        if not rows:
            raise LookupFailure([Problem(Location(str(self.path)), "no-record",
                                         f"no recorded evaluation of {symbol} in {self.path}.",
                                         f"Run `verdict evaluate {symbol}` first (it records by default).")])
        return rows[0]

    def head(self) -> tuple[int, str] | None:
        """The newest record's seq and hash: what a checkpoint signs."""
        row = self.db.execute("SELECT seq, record_hash FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def verify(self, until_seq: int | None = None) -> VerifyResult:
        """Walk the chain (up to `until_seq`, if given); name the first record altered, removed or reordered.

        Each record must have the next seq, carry the previous record's hash, hash to its own stored hash,
        and point at snapshots whose manifests and files match their hashes. Reads one snapshot of the log."""
        with self.reading():
            return self._verify(until_seq)

    def _verify(self, until_seq: int | None) -> VerifyResult:
        prev_hash, prev_seq, n = GENESIS, 0, 0  # n: records verified so far
        checked: dict[str, str] = {}
        last = LAST_SEQ if until_seq is None else until_seq
        for rec in self._iter("WHERE seq <= ? ORDER BY seq", (last,)):
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
            n += 1
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
            content = _unpack(blob[0]) if blob is not None else None
            if content is None or hashlib.sha256(content).hexdigest() != h:
                return f"stored file {name} of snapshot {snap[:12]} is missing or altered."
        return ""

    # ---------------------------------------------------------------------------- checkpoints

    def add_checkpoint(self, line: str) -> None:
        """Keep a signed checkpoint line (checkpoint.py) in the log, beside the copies kept elsewhere."""
        with self._write():
            self.db.execute("INSERT INTO checkpoints (line) VALUES (?)", (line,))

    def checkpoint_lines(self) -> builtins.list[str]:
        """The checkpoint lines stored in the log, oldest first (none in a log from before checkpoints)."""
        if "checkpoints" not in self._tables(self.db):
            return []
        return [r[0] for r in self.db.execute("SELECT line FROM checkpoints ORDER BY id")]

    def record_hash_at(self, seq: int) -> str | None:
        row = self.db.execute("SELECT record_hash FROM runs WHERE seq = ?", (seq,)).fetchone()
        return str(row[0]) if row else None


class Batch:
    """Records of one batch (one workspace), prepared as each evaluation arrives and appended together.

    A screen's evaluations arrive over seconds or minutes. What each record's hash covers up to its
    output is known when it arrives, so that much is hashed then (`add`), while the workers are still
    evaluating, and holds no lock; `commit` takes the write lock once, stores the snapshots, and chains
    the records in the order they were added (each record's seq and prev_hash finish its hash). The
    log's write lock is held for the commit alone, as long as one `append_many` always held it; a
    batch that is never committed writes nothing."""

    def __init__(self, log: AuditLog, rules_files: dict[str, bytes], facts_files: dict[str, bytes],
                 keep: bool = True) -> None:
        self.log, self.keep = log, keep
        self._files = (rules_files, facts_files)
        self._manifests = (snapshot_manifest(rules_files), snapshot_manifest(facts_files))
        self.rules_snapshot, self.facts_snapshot = (snapshot_hash(m) for m in self._manifests)
        self._user = _user()
        self._pending: list[tuple[dict[str, Any], str | bytes, Any]] = []
        self._packed: dict[str, bytes] | None = None  # new files' contents, compressed while evaluations arrive

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, e: Entry, now: dt.datetime | None = None) -> None:
        """Take one evaluation's entry: its time is now (`now`, for tests), its place in the chain comes
        at `commit`."""
        if self._packed is None:  # the files the log lacks, compressed now rather than under the lock
            with self.log.reading():
                missing = [self.log._missing_blobs(m) for m in self._manifests]
            self._packed = {h: zlib.compress(files[name], 6)
                            for files, found in zip(self._files, missing, strict=True) for h, name in found.items()}
        created = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="microseconds")
        text = e.output if isinstance(e.output, str) else unpack_output(e.output)
        fields: dict[str, Any] = {"run_id": e.run_id, "created_utc": created, "os_user": self._user,
                                  "engine_version": e.engine_version, "symbol": e.symbol, "rating": e.rating,
                                  "rules_snapshot": self.rules_snapshot, "facts_snapshot": self.facts_snapshot,
                                  "output": text}
        head = _hash_head(fields)
        stored = pack_output(text) if isinstance(e.output, str) else e.output
        if not self.keep:
            fields["output"] = None  # the packed text is what is kept
        self._pending.append((fields, stored, head))

    def add_outcome(self, result: Evaluation | Outcome) -> None:
        """Take an evaluation, or a screen's outcome carrying its trace or rendered evaluation."""
        from .model import Outcome

        o = result if isinstance(result, Outcome) else Outcome.of(result)
        s = o.summary
        self.add(Entry(s.run_id, s.symbol, s.rating, o.recorded(), s.engine_version))

    def commit(self) -> list[Record]:
        """Append what was added, in one transaction; the records, when kept."""
        out: list[Record] = []
        log = self.log
        with log._write():
            for files, manifest in zip(self._files, self._manifests, strict=True):
                log._store_snapshot(files, manifest, self._packed or {})
            last = log.db.execute("SELECT seq, record_hash FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0], last[1]) if last else (0, GENESIS)
            rows = []
            for fields, stored, head in self._pending:
                seq += 1
                fields["seq"], fields["prev_hash"] = seq, prev
                rh = _hash_tail(head, fields)
                rows.append((*(stored if k == "output" else fields[k] for k in RECORD_FIELDS), rh))
                if self.keep:
                    out.append(Record(**fields, record_hash=rh, log=log))
                prev = rh
            log.db.executemany(f"INSERT INTO runs ({', '.join(RECORD_FIELDS)}, record_hash) "
                               f"VALUES ({', '.join('?' * (len(RECORD_FIELDS) + 1))})", rows)
        self._pending.clear()
        return out


def batch(ws: Workspace, log: AuditLog, keep: bool = True) -> Batch:
    """A batch of records of evaluations of `ws`, with snapshots of its rule and fact files."""
    return log.batch(rules_files=ws.book.files, facts_files=ws.facts.files, rules_name=ws.rules_dir.resolve().name,
                     facts_name=ws.facts_dir.resolve().name, keep=keep)


def record(ws: Workspace, results: Sequence[Evaluation | Outcome], log: AuditLog | Path | str | None = None, *,
           on_wait: Callable[[float], None] | None = None, keep: bool = True) -> list[Record]:
    """Append one record per evaluation of `ws` (full evaluations, or a screen's outcomes with their
    traces or rendered evaluations), with snapshots of the workspace's rule and fact files, in one
    transaction. An outcome that carries its run's trace (what `evaluate` and recorded screens keep)
    records the trace, rendered when read; an evaluation records its rendered JSON. `log`: an open
    writer, or the log's path (default: $VERDICT_AUDIT_DB, else the user's), opened and closed here.
    `keep=False` returns no records (a screen's are not all held in memory at once)."""
    writer = log if isinstance(log, AuditLog) else AuditLog(log, on_wait=on_wait)
    try:
        records = batch(ws, writer, keep)
        for r in results:
            records.add_outcome(r)
        return records.commit()
    finally:
        if writer is not log:
            writer.close()


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


def recorded_evaluation(rec: Record) -> Evaluation:
    """The evaluation a record holds. Every reader of a record's output goes through here (or
    `recorded_document`, its JSON, and `recorded_head` for listings), so a change of what a record
    stores stays in this module. A record holds either a rendered evaluation (every record written
    by `verdict` before traces, and any a library caller appends) or the trace of the run
    (engine/capture.py), rendered here on the rules recorded with it."""
    from .model import Evaluation

    try:
        if is_trace(rec.output):
            from .render import model

            return model(_rendered(rec))
        return Evaluation.model_validate_json(rec.output)
    except (ValueError, KeyError, TypeError) as exc:  # a trace missing a part renders as neither
        raise _unreadable(rec, _why(exc)) from exc


def recorded_document(rec: Record) -> str:
    """The JSON of the evaluation a record holds: its output as written, or its trace rendered (the
    bytes `Run.document()` gave when it ran)."""
    if not is_trace(rec.output):
        return rec.output
    from .render import document

    try:
        return document(_rendered(rec))
    except (ValueError, KeyError, TypeError) as exc:
        raise _unreadable(rec, _why(exc)) from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"its trace has no {exc}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def is_trace(output: str) -> bool:
    from .capture import is_trace as marked

    return marked(output)


def _unreadable(rec: Record, why: str) -> VerdictError:
    return VerdictError([Problem(Location(f"run {rec.run_id}"), "audit-output",
                                 f"the recorded output of run {rec.run_id} (seq {rec.seq}) cannot be read: {why}.",
                                 "Run `verdict audit verify`: if the chain is valid, the record was written by "
                                 f"an engine this version ({_version()}) cannot read; `audit export` still "
                                 "prints it as JSON.")], exit_code=1)


def _rendered(rec: Record) -> dict[str, Any]:
    from .capture import loads
    from .render import render

    trace = loads(rec.output)
    rules, compiled = _recorded_rules(rec)
    return render(trace, rules, compiled)


def _recorded_rules(rec: Record) -> tuple[dict[str, LoadedRule], Compiled]:
    """The rules a recorded trace ran on, loaded and compiled from the record's snapshots: its rule
    files, and the catalog and sources of its fact files (what checking the rules reads). Restored
    under their recorded folder names, so each rule's file reads as it did; kept per log and
    snapshot (a listing or an export renders many records of one screen)."""
    import tempfile

    from .compile import compile_rules
    from .errors import VerdictError as Problems
    from .load import load_facts, load_rules

    log = rec.log
    if log is None:
        raise VerdictError([Problem(Location(f"run {rec.run_id}"), "audit-output",
                                    f"run {rec.run_id} holds the trace of its evaluation, which is rendered on the "
                                    "rules recorded with it; this record was not read from an audit log.",
                                    "Read it with AuditLog.get() or AuditLog.list().")], exit_code=1)
    facts = log.manifest(rec.facts_snapshot)
    shared = {n for n in facts if n.partition("/")[2] in ("catalog.yaml", "sources.yaml")}
    key = (rec.rules_snapshot, tuple(sorted(facts[n] for n in shared)))
    books: dict[tuple[str, tuple[str, ...]], tuple[dict[str, LoadedRule], Compiled]] = \
        log.__dict__.setdefault("_recorded_rules", {})
    hit = books.get(key)
    if hit is not None:
        return hit
    with tempfile.TemporaryDirectory(prefix="verdict-render-") as tmp:
        log.restore(rec.rules_snapshot, Path(tmp) / "r")
        log.restore(rec.facts_snapshot, Path(tmp) / "f", only=shared)
        tops = [next(iter((Path(tmp) / part).iterdir()), None) for part in ("r", "f")]
        if any(top is None or not top.is_dir() for top in tops):
            raise VerdictError([Problem(Location(str(log.path)), "audit-snapshot",
                                        f"the snapshots of run {rec.run_id} are not one folder each.",
                                        "Run `verdict audit verify`.")], exit_code=1)
        rules_dir, facts_dir = tops[0], tops[1]
        assert rules_dir is not None and facts_dir is not None
        try:
            catalog = load_facts(facts_dir, cache=None).catalog
            book = load_rules(rules_dir, catalog)
            compiled = compile_rules(book, catalog)
        except Problems as exc:
            first = exc.problems[0].render() if exc.problems else str(exc)
            raise VerdictError([Problem(Location(f"run {rec.run_id}"), "audit-rules",
                                        f"run {rec.run_id} recorded the trace of its evaluation, which is rendered on "
                                        f"the rules recorded with it, and this engine ({_version()}) cannot load "
                                        f"them: {first}",
                                        "`verdict audit export RUN` still prints the stored trace, and `audit export "
                                        "RUN --to DIR` writes the recorded files; an engine of the recorded version "
                                        f"({rec.engine_version}) renders it.")], exit_code=1) from exc
    books[key] = (book.by_id(), compiled)
    return books[key]


_HEAD = re.compile(r'"as_of":(null|"[0-9-]+"),"rating":"(?:[^"\\]|\\.)*","score":(-?[0-9.eE+-]+)[,}]')


def recorded_head(stored: str | bytes) -> tuple[float | None, str | None]:
    """Score and as-of date of a stored output without unpacking all of it: an evaluation's JSON
    starts with its outcome (symbol, name, sector, as_of, rating, score), so the first 4 KB hold them.
    Falls back to reading the whole output; (None, None) if that fails too (`verify` will say why)."""
    if isinstance(stored, bytes):
        try:
            head = zlib.decompressobj().decompress(stored, 4096).decode("utf-8", errors="replace")
        except zlib.error:
            return None, None
    else:
        head = stored[:4096]
    m = _HEAD.search(head)
    if m:
        as_of = None if m.group(1) == "null" else m.group(1).strip('"')
        return float(m.group(2)), as_of
    try:
        data = json.loads(unpack_output(stored))
        return float(data["score"]), data.get("as_of")
    except (ValueError, KeyError, TypeError):
        return None, None


def _version() -> str:
    from . import __version__

    return __version__


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


# -------------------------------------------------------------------------------- restoring a run


@dataclass
class Restored:
    """Where a run's recorded rules and facts were written."""

    rules_dir: Path
    facts_dir: Path


def restore_run(log: AuditLog, rec: Record, into: Path) -> Restored:
    """Write the record's rule and fact files, exactly as recorded, to `into`/rules and `into`/facts
    (each checked against its hash). The folders' recorded names are dropped, so two runs restore alike."""
    for part, snap in (("rules", rec.rules_snapshot), ("facts", rec.facts_snapshot)):
        stage = into / f".{part}-restore"
        log.restore(snap, stage)
        tops = [p for p in stage.iterdir()]
        if len(tops) != 1 or not tops[0].is_dir():
            raise VerdictError([Problem(Location(str(log.path)), "audit-snapshot",
                                        f"the {part} snapshot {snap[:12]} of run {rec.run_id} is not one folder.",
                                        "Run `verdict audit verify`.")], exit_code=1)
        tops[0].rename(into / part)
        stage.rmdir()
    return Restored(into / "rules", into / "facts")


def recorded_as_of(rec: Record) -> dt.date | None:
    """The evaluation date the run used (given with --as-of, or the facts' default then)."""
    if is_trace(rec.output):
        from .capture import loads

        day = loads(rec.output)["date"]
        return dt.date.fromisoformat(day) if day else None
    ev = recorded_evaluation(rec)
    return ev.as_of


@contextmanager
def recorded_workspace(log: AuditLog, rec: Record, rules_dir: Path | None = None) -> Iterator[Workspace]:
    """The run's workspace rebuilt from the log: its recorded facts and its recorded rules (or the
    rules in `rules_dir`), parsed without any cache from a scratch folder removed afterwards. Evaluate the run
    again with `ws.evaluate(rec.symbol, run_id=rec.run_id, as_of=recorded_as_of(rec))`."""
    import tempfile

    from .pipeline import Workspace

    with tempfile.TemporaryDirectory(prefix="verdict-replay-") as tmp:
        restored = restore_run(log, rec, Path(tmp))
        # No parse cache: the recorded bytes are parsed afresh, and nothing is left keyed by a scratch folder.
        if rules_dir is not None:
            _declare_new_paths(restored.facts_dir / "catalog.yaml", rules_dir.parent / "facts" / "catalog.yaml")
        yield Workspace.open(rules_dir if rules_dir is not None else restored.rules_dir, restored.facts_dir,
                             cache=None)


def _declare_new_paths(recorded: Path, current: Path) -> None:
    """Other rules may read fact paths declared after the run (a valuation's results, say): the recorded
    catalog gets the declarations it lacks from the catalog beside those rules; no recorded fact changes."""
    import yaml

    if not (recorded.is_file() and current.is_file()):
        return
    old, new = yaml.safe_load(recorded.read_text(encoding="utf-8")), yaml.safe_load(current.read_text(encoding="utf-8"))
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return
    added = False
    for ns, fields in (new.get("namespaces") or {}).items():
        have = old.setdefault("namespaces", {}).setdefault(ns, {})
        for name, spec in (fields or {}).items():
            if name not in have:
                have[name] = spec
                added = True
    if added:
        recorded.write_text(yaml.safe_dump(old, sort_keys=False, allow_unicode=True), encoding="utf-8")


@dataclass
class Replay:
    run_id: str
    symbol: str
    identical: bool
    diff: str
    recorded_engine: str = ""
    replay_engine: str = ""


def replay(log: AuditLog, rec: Record) -> Replay:
    """Evaluate the run again from its snapshot, as of its recorded date and with its run id, and
    compare the output byte for byte."""
    import difflib

    if is_trace(rec.output):
        return _replay_trace(log, rec)
    recorded = recorded_evaluation(rec)
    with recorded_workspace(log, rec) as ws:
        ev = ws.evaluate(rec.symbol, run_id=rec.run_id, as_of=recorded.as_of)
    again = ev.model_dump_json()
    engines = (rec.engine_version, ev.engine_version)
    if again == rec.output:
        return Replay(rec.run_id, rec.symbol, True, "", *engines)
    before = json.dumps(recorded.model_dump(mode="json"), indent=2).splitlines()
    after = json.dumps(ev.model_dump(mode="json"), indent=2).splitlines()
    diff = "\n".join(difflib.unified_diff(before, after, "recorded", "replayed", lineterm="", n=2))
    return Replay(rec.run_id, rec.symbol, False, diff or "(outputs differ only in formatting)", *engines)


def _fragile_facts(trace: dict[str, Any]) -> bool:
    """Whether the run checked its facts' fragility too (a screen checks the score only)."""
    return bool((trace.get("fragility") or {}).get("facts_checked", True))


def _replay_trace(log: AuditLog, rec: Record) -> Replay:
    """A recorded trace replayed: the run again, its trace compared byte for byte with the stored one
    (and, where they differ, the two rendered evaluations shown side by side)."""
    import difflib

    from .capture import dumps, loads
    from .render import render

    stored = loads(rec.output)
    day = dt.date.fromisoformat(stored["date"]) if stored["date"] else None
    with recorded_workspace(log, rec) as ws:
        run = ws.run(rec.symbol, run_id=rec.run_id, as_of=day)
        trace = run.trace(_fragile_facts(stored))
        engines = (rec.engine_version, trace["engine_version"])
        if dumps(trace) == rec.output:
            return Replay(rec.run_id, rec.symbol, True, "", *engines)
        before = json.dumps(render(stored, ws.rules, ws.compiled), indent=2, default=str).splitlines()
        after = json.dumps(render(trace, ws.rules, ws.compiled), indent=2, default=str).splitlines()
    diff = "\n".join(difflib.unified_diff(before, after, "recorded", "replayed", lineterm="", n=2))
    return Replay(rec.run_id, rec.symbol, False, diff or "(the traces differ in what each firing matched, not in "
                  "the evaluation they render)", *engines)


def replay_with_rules(log: AuditLog, rec: Record, rules_dir: Path) -> RunDiff:
    """The run's recorded facts, as of its recorded date, evaluated under the rules in `rules_dir`
    (packs and policy), compared with the recorded output. Nothing is recorded."""
    from .render import model
    from .rundiff import diff_evaluations

    recorded = recorded_evaluation(rec)
    facts_checked = recorded.fragility is None or recorded.fragility.facts_checked
    with recorded_workspace(log, rec, rules_dir=rules_dir) as ws:
        run = ws.run(rec.symbol, run_id=rec.run_id, as_of=recorded_as_of(rec))
        again = model(run.rendered(facts_checked))
    return diff_evaluations(recorded, again)


def diff_runs(log: AuditLog, a: Record, b: Record) -> RunDiff:
    """Two recorded runs compared from their outputs, with the rule and fact files that differ."""
    from .rundiff import diff_evaluations, manifest_changes

    files = [f"rules: {c}" for c in manifest_changes(log.manifest(a.rules_snapshot), log.manifest(b.rules_snapshot))]
    files += [f"facts: {c}" for c in manifest_changes(log.manifest(a.facts_snapshot), log.manifest(b.facts_snapshot))]
    return diff_evaluations(recorded_evaluation(a), recorded_evaluation(b), files)


def record_document(rec: Record) -> dict[str, Any]:
    """A record as one JSON document: its fields, its output as data (as recorded, not re-read through
    today's model; a recorded trace rendered, with the trace itself as `trace`), its hash."""
    d = rec.fields()
    d["output"] = json.loads(recorded_document(rec))
    if is_trace(rec.output):
        d["trace"] = json.loads(rec.output)
    d["record_hash"] = rec.record_hash
    return d


@dataclass
class Exported:
    rules_dir: Path
    facts_dir: Path
    evaluation: Path
    record: Path
    as_of: dt.date | None


def export_run(log: AuditLog, rec: Record, to: Path) -> Exported:
    """Write a run's recorded rules and facts as files under `to` (rules/, facts/), with its output
    (evaluation.json) and its record without the output (record.json). `to` must be new or empty:
    nothing already there is overwritten."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise LookupFailure([Problem(Location(str(to)), "export-exists",
                                     f"'{to}' already exists and is not an empty directory; nothing was written.",
                                     "Give a new directory for the exported run.")])
    ev = recorded_evaluation(rec)
    to.mkdir(parents=True, exist_ok=True)
    restored = restore_run(log, rec, to)
    evaluation, record = to / "evaluation.json", to / "record.json"
    evaluation.write_text(ev.model_dump_json(indent=2) + "\n", encoding="utf-8")
    meta = {k: v for k, v in record_document(rec).items() if k not in ("output", "trace")}
    record.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Exported(restored.rules_dir, restored.facts_dir, evaluation, record, ev.as_of)
