"""Who may touch the audit log when: readers on a read-only file and beside a writer's lock; a writer
kept waiting says so and gives up after the stated time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import as_unprivileged

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO meta VALUES ('held-by-test', 'uncommitted')")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, verdict) -> Path:  # type: ignore[no-untyped-def]
    """A log with two runs, made by the real command."""
    db = tmp_path_factory.mktemp("access") / "audit.sqlite3"
    for sym in ("600111", "300127"):
        out = verdict("evaluate", sym, env_extra={"VERDICT_AUDIT_DB": str(db)})
        assert out.returncode == 0, out.stderr
    return db


@pytest.fixture()
def held(recorded: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the log whose write lock another process holds (mid-transaction) for the whole test."""
    db = tmp_path / "audit.sqlite3"
    shutil.copy(recorded, db)
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), "120"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield db
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _first_run(verdict, env: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    out = verdict("audit", "list", "--format", "json", env_extra=env)
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)[0]["run_id"])


def test_readers_do_not_wait_for_a_held_write_lock(held: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    """The old log opened every reader as a writer: each of these waited 60 s x 200 retries. The
    runner's 120 s timeout would fail the test; the readers see the committed records at once."""
    env = {"VERDICT_AUDIT_DB": str(held), "VERDICT_AUDIT_WAIT": "60"}
    run = _first_run(verdict, env)
    for args in (("audit", "list"), ("audit", "verify"), ("audit", "show", run), ("audit", "export"),
                 ("audit", "export", run), ("why", "600111")):
        out = verdict(*args, env_extra=env)
        assert out.returncode == 0, (args, out.stderr)
        assert "waiting" not in out.stderr, args
    assert "chain valid: 2 record(s)" in verdict("audit", "verify", env_extra=env).stdout


def test_a_writer_says_it_waits_and_gives_up_after_the_stated_time(held: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    env = {"VERDICT_AUDIT_DB": str(held), "VERDICT_AUDIT_WAIT": "2.5"}
    out = verdict("evaluate", "600111", env_extra=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"waiting for the audit log {held}: another process holds its write lock")
    assert "giving up after 2.5 s; $VERDICT_AUDIT_WAIT sets it" in lines[0]
    assert "write lock for the 2.5 s this writer may wait; gave up waiting, and nothing was recorded" in out.stderr
    assert "--no-record" in out.stderr
    assert out.stdout == ""  # nothing printed that the log does not hold
    env["VERDICT_AUDIT_WAIT"] = "60"
    assert len(json.loads(verdict("audit", "list", "--format", "json", env_extra=env).stdout)) == 2


def test_a_bad_wait_setting_is_a_clear_error(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "600111", env_extra={"VERDICT_AUDIT_DB": str(tmp_path / "a.db"),
                                                  "VERDICT_AUDIT_WAIT": "soon"})
    assert out.returncode == 2 and "$VERDICT_AUDIT_WAIT 'soon' is not a number of seconds" in out.stderr


@pytest.fixture()
def read_only(recorded: Path) -> Iterator[Path]:
    """The log, read-only, in a folder its reader cannot write (so SQLite cannot add its -shm index)."""
    top = Path(tempfile.mkdtemp(prefix="verdict-ro-"))
    folder = top / "logs"
    folder.mkdir()
    db = folder / "audit.sqlite3"
    shutil.copy(recorded, db)
    db.chmod(0o444)
    folder.chmod(0o555)
    top.chmod(0o755)
    try:
        yield db
    finally:
        folder.chmod(0o755)
        shutil.rmtree(top)


def test_a_read_only_log_lists_shows_verifies_and_exports(read_only: Path) -> None:
    exe = shutil.which("verdict", path=str(Path(sys.executable).parent))
    assert exe
    env = {**os.environ, "VERDICT_AUDIT_DB": str(read_only), "VERDICT_CACHE_DIR": "off", "HOME": "/nonexistent"}
    before = read_only.read_bytes()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(as_unprivileged([exe, *args]), capture_output=True, text=True, env=env, timeout=120,
                              cwd="/")

    listing = run("audit", "list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    run_id = json.loads(listing.stdout)[0]["run_id"]
    for args in (("audit", "verify"), ("audit", "show", run_id), ("audit", "export"), ("why", "300127")):
        out = run(*args)
        assert out.returncode == 0, (args, out.stderr)
    assert "chain valid: 2 record(s)" in run("audit", "verify").stdout
    # a writer is told plainly that it cannot record there
    out = run("evaluate", "600111", "--rules", str(Path(__file__).parent.parent / "rules"),
              "--facts", str(Path(__file__).parent.parent / "facts"))
    assert out.returncode == 2 and "cannot be written" in out.stderr and "--no-record" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert read_only.read_bytes() == before and sorted(p.name for p in read_only.parent.iterdir()) == [read_only.name]
