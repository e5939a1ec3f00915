"""Row 12: worker processes die with their parent, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import lifetime

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text[text.rindex(")") + 2:].split()[:2]
    return state, int(ppid)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid:
                out.append(int(entry.name))
    return out


def _gone(pid: int) -> bool:
    st = _stat(pid)
    return st is None or st[0] in ("Z", "X")  # a zombie is dead, waiting for whoever adopted it to reap it


def _wait_for(test, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if test():
            return True
        time.sleep(0.05)
    return bool(test())


def test_screen_workers_die_when_the_screen_is_killed(tmp_path: Path) -> None:
    universe = tmp_path / "universe.txt"
    universe.write_text("600111\n300127\n000831\n" * 2000)  # full traces: about a minute of work
    exe = str(Path(sys.executable).parent / "verdict")
    screen = subprocess.Popen([exe, "evaluate", "--universe", str(universe), "--jobs", "2", "--format", "jsonl",
                               "--no-record"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: len(_children(screen.pid)) >= 2, 60), "the screen never started its workers"
        time.sleep(0.5)  # the workers are evaluating
        workers = _children(screen.pid)
        assert all(not _gone(w) for w in workers)
        screen.send_signal(signal.SIGKILL)
        screen.wait(10)
        assert _wait_for(lambda: all(_gone(w) for w in workers), 10), \
            [(w, _stat(w)) for w in workers if not _gone(w)]
    finally:
        if screen.poll() is None:
            screen.kill()
            screen.wait()


def test_where_the_kernel_cannot_help_a_watcher_thread_notices(tmp_path: Path) -> None:
    """The fallback of other platforms: a grandchild watching its parent leaves when the parent is killed."""
    script = (
        "import os, sys, time\n"
        "from engine import lifetime\n"
        "parent = os.getpid()\n"  # taken before the fork, as the pool passes it: the parent may die at once
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    import threading\n"
        "    threading.Thread(target=lifetime._watch, args=(parent, 0.05), daemon=True).start()\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_for(lambda: _gone(child), 10)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_worker_whose_parent_is_already_gone_leaves_at_once() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            lifetime.die_with_parent(os.getppid() + 1_000_000)  # not our parent: as if it had died
        finally:
            os._exit(0)  # only reached if die_with_parent failed to leave
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1


def test_a_frozen_heap_keeps_what_was_alive_from_the_collector_only_while_workers_run() -> None:
    import gc

    from engine.lifetime import _FROZEN_AT_START, frozen_heap

    assert gc.get_freeze_count() <= _FROZEN_AT_START  # nothing frozen but what the interpreter froze itself
    loaded = [[i] for i in range(1000)]  # what a workspace holds when workers are forked
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen >= len(loaded)
        made = [[i] for i in range(10)]  # made while workers run: in the collector's reach as usual
        assert gc.get_freeze_count() == frozen and all(gc.is_tracked(m) for m in made)
    assert gc.get_freeze_count() == 0  # back in the collector's reach


def test_a_frozen_heap_leaves_objects_frozen_by_someone_else_frozen() -> None:
    import gc

    from engine.lifetime import frozen_heap

    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() >= before
    finally:
        gc.unfreeze()
