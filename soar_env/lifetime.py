"""Worker processes that die with their owner, and what /proc says about a process.

The one place that leans on CPython- and Linux-private details (``tests/test_pool.py``
checks each of them on the running interpreter):

- ``multiprocessing.forkserver._forkserver._forkserver_alive_fd``: every process the
  forkserver forks inherits this pipe end, whose EOF tells the forkserver that its owner is
  gone; while workers hold it, forkserver, workers and resource tracker keep one another
  alive after the owner died;
- ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes: the kernel kills the worker when its
  parent (the forkserver) exits, even while the worker holds the GIL;
- ``/proc/<pid>/stat``: a process's state and CPU time.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat from the state on ([] if the process is gone), None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return [] if os.path.isdir("/proc/self") else None
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, None where /proc cannot tell."""
    stat = proc_stat(pid)
    return (int(stat[11]) + int(stat[12])) / _TICKS if stat else None


def die_with(owner: int) -> None:
    """Make the calling worker die with the process that owns it, however that one ends."""
    forkserver = getattr(multiprocessing.forkserver, "_forkserver", None)
    if os.getppid() != owner and forkserver is not None:
        # Our parent is the forkserver: drop our copy of its "owner alive" pipe end...
        with contextlib.suppress(OSError, TypeError):
            os.close(forkserver._forkserver_alive_fd)
        forkserver._forkserver_alive_fd = None
        # ... and have the kernel SIGKILL us when the forkserver exits. (Not when the owner is
        # our parent: the signal follows the parent *thread*, and the owner's may end first.)
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # Elsewhere, or if another process keeps that pipe end open, a watchdog checks the owner.
    threading.Thread(target=_watch, args=(owner,), name="owner-watchdog", daemon=True).start()


def _watch(owner: int) -> None:
    while True:
        time.sleep(0.5)
        stat = proc_stat(owner)
        if stat is None:  # no /proc: ask the kernel (a zombie owner then still counts as alive)
            with contextlib.suppress(PermissionError):
                try:
                    os.kill(owner, 0)
                except ProcessLookupError:
                    stat = []
        if stat == [] or (stat and stat[0] in (b"Z", b"X")):  # gone, or a zombie: dead either way
            os._exit(1)
