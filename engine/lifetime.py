"""Worker processes die with the process that started them.

A screen's workers are forked and wait on a queue for work. If the parent is killed outright
(SIGKILL, the OOM killer), nothing tells them: they would stay, orphaned and blocked, holding their
share of the workspace's memory. Each worker therefore asks the kernel to kill it when its parent
goes (Linux: prctl(PR_SET_PDEATHSIG, SIGKILL)); where that is not available, a daemon thread polls
the parent's pid once a second and leaves when it changes. Pass `die_with_parent` as a process pool's
initializer with `os.getpid()` of the parent as its argument.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Called first in a worker: arrange to be killed when `parent` exits, or exit now if it already has."""
    if not _ask_kernel():
        threading.Thread(target=_watch, args=(parent,), name="verdict-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _ask_kernel() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)
