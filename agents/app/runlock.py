"""One writer per run folder: an exclusive lock held while ``train``, ``eval`` or ``bench`` write.

Two processes writing one folder lose a run silently (each rewrites ``rounds.csv`` and the
manifest with its own rounds), so every writer first takes ``fcntl.flock`` on ``FOLDER/.lock``
and records in it who holds it (pid, host, start time, command). A second writer gets
``RunFolderBusy`` at once, naming the holder, before it writes anything. The kernel drops the
lock when its process ends, however it ends, so a lock file left by a killed run (SIGKILL)
blocks nothing: the next writer takes it. A writer that ends normally removes the file.

The lock is re-entrant within a process (``soar-env train`` holds it from the command line
down to ``train_teacher``), and only the standard library is imported here: the command
takes it before torch loads, so a refused second command ends within a second or so.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lock"

_held: dict[Path, list[int]] = {}  # folder -> [file descriptor, depth] of the locks this process holds
_guard = threading.Lock()


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock; the message names it."""


@contextmanager
def run_lock(folder: str | Path, create: bool = True) -> Iterator[None]:
    """Hold ``folder``'s exclusive lock for the ``with`` block (``create``: make the folder if
    missing; otherwise a missing folder is not locked, since nothing writes into it).

    Raises:
        RunFolderBusy: another process holds it.
    """
    folder = Path(folder)
    if not create and not folder.is_dir():
        yield
        return
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
        else:
            _held[key] = [_acquire(key), 1]
    try:
        yield
    finally:
        with _guard:
            _held[key][1] -= 1
            if _held[key][1] == 0:
                _release(key, _held.pop(key)[0])


def _acquire(folder: Path) -> int:
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFolderBusy(
                f"{folder} is being written by another process ({holder(path)}); wait for it to end, "
                "or use another folder"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # A holder that just ended removed the file we opened: lock the one at the path now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": shlex.join(sys.argv)}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
    except OSError:  # e.g. a full disk: the lock holds all the same, only its record is missing
        pass
    return fd


def _release(folder: Path, fd: int) -> None:
    # Removed while still locked, so no other process can lock this file after us: one that
    # opened it meanwhile sees it gone (the check in _acquire) and locks a new one.
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)
    except OSError:
        pass
    os.close(fd)


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, as its record says: 'pid 812 on host gpu3 since ..., `cmd`'."""
    for _ in range(20):  # the holder writes its record just after locking: give it a moment
        try:
            record = json.loads(path.read_text())
            return (f"pid {record['pid']} on host {record['host']} since {record['since']}: "
                    f"{record['command']}")
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return f"its pid and host are not recorded in {path}"
