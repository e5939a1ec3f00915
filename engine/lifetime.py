"""Worker processes die with the process that started them.

A screen's workers are forked and wait on a queue for work. If the parent is killed outright
(SIGKILL, the OOM killer), nothing tells them: they would stay, orphaned and blocked, holding their
share of the workspace's memory. Each worker therefore asks the kernel to kill it when its parent
goes (Linux: prctl(PR_SET_PDEATHSIG, SIGKILL)); where that is not available, a daemon thread polls
the parent's pid once a second and leaves when it changes. Pass `die_with_parent` as a process pool's
initializer with `os.getpid()` of the parent as its argument.

Forked workers share the parent's loaded workspace page by page until something writes to a page.
The cyclic garbage collector does: a worker's full collection walks every tracked object and writes
to each one's header, copying the whole universe into the worker, page by page, at the cost of a
page fault each. `frozen_heap()` around the fork moves the parent's objects to the collector's
permanent generation, so workers never walk them (CPython's gc.freeze, made for this case).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # linux/prctl.h


# What the interpreter itself keeps frozen (CPython 3.12.1 starts with 375 objects frozen; 3.11 and 3.13
# with none): more than this means a caller froze objects on purpose, and they are left frozen.
_FROZEN_AT_START = gc.get_freeze_count()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """The objects alive now out of the collector's reach while forked workers run (see the module
    note); back in it afterwards, unless the caller had frozen objects of its own before."""
    thawed = gc.get_freeze_count() <= _FROZEN_AT_START
    gc.freeze()
    try:
        yield
    finally:
        if thawed:
            gc.unfreeze()


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
