"""Files on disk: the one atomic write and the one cache folder of the package.

``write_atomic`` is used by every file that a reader (or a resumed run, or another process
building the same cache entry) may see while it is being written: hard sets and their
chunks, hub dataset copies, run folders' checkpoints, manifests and logs;
``write_atomic_folder`` by the ``save_pretrained`` folders of run folders. Either raises
``WriteError`` (an ``OSError`` that names the file) when the system refuses the write: a full
disk, a quota, a read-only folder. ``cache_dir`` is where hard sets and hub dataset copies are
cached.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: ``$SOAR_ENV_CACHE``, or ``~/.cache/soar_env`` (not created here)."""
    return Path(os.environ.get("SOAR_ENV_CACHE", Path.home() / ".cache" / "soar_env"))


class WriteError(OSError):
    """A file the system would not let us write (full disk, quota, read-only folder...).

    An ``OSError`` with the errno of the cause and, as ``filename``, the file's own name (not
    the temporary one the write went to); nothing of it is left under either name.
    """


def os_errno(error: BaseException) -> int | None:
    """The operating-system error number behind ``error``, else None.

    An ``OSError``'s own; for libraries written in Rust (safetensors, tokenizers), the
    ``(os error 28)`` their message ends with: they raise their own exception types.
    """
    if isinstance(error, OSError):
        return error.errno
    found = re.search(r"\(os error (\d+)\)", str(error))
    return int(found.group(1)) if found else None


def _write_error(path: Path, error: BaseException) -> WriteError | None:
    """``error`` as a ``WriteError`` naming ``path`` when the system refused the write, else None."""
    number = os_errno(error)
    if number is None or isinstance(error, WriteError):
        return None
    return WriteError(number, os.strerror(number), str(path))


def temporary_name(path: Path) -> Path:
    """A temporary file next to ``path`` that is this writer's own: ``.NAME.<random>.tmp``.

    Hidden and ending in ``.tmp``, so leftovers of a killed writer are easy to find
    (``.*.tmp``) and never taken for the file itself.
    """
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_atomic(path: str | Path, data: str | bytes | Callable[[Path], object]) -> None:
    """Write ``data`` to ``path`` through a temporary file of its own, then rename it onto ``path``.

    ``data`` is text (written as UTF-8), bytes, or a function that writes the file at the
    path it is given (e.g. ``lambda tmp: save_file(tensors, str(tmp))``). A reader, and a
    crash at any point, sees the old file or the new one, never half a file; the temporary
    file is removed when writing fails (Ctrl-C included). Each writer has its own temporary
    name, so concurrent writers of one file never share one (the last rename wins) and a
    killed writer's leftovers are never reused. The parent folder is created if missing.
    A write the system refuses (an ``OSError``, or a library's error with an os error number:
    ``No space left on device``) raises ``WriteError``, which names ``path``.

    Not ``tempfile.mkstemp``: its files are private (mode 0600), and the renamed file would
    keep that mode, while a cache folder may be shared; here the file gets the usual mode
    (0666 less the umask), like any file the process writes.
    """
    if not isinstance(data, str | bytes | bytearray | memoryview) and not callable(data):
        raise TypeError(f"write_atomic expects str, bytes or a function of a path, "
                        f"actual {type(data).__name__}")
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            with open(tmp, "x", encoding="utf-8") as out:
                out.write(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            with open(tmp, "xb") as out:
                out.write(data)
        else:
            data(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        refused = _write_error(path, error)
        if refused is None:
            raise
        raise refused from error


def write_atomic_folder(path: str | Path, write: Callable[[Path], object]) -> None:
    """``write_atomic`` for a folder: ``write`` fills a new temporary folder of its own next
    to ``path`` (e.g. ``model.save_pretrained``), which is then renamed onto ``path``.

    A crash while writing leaves ``path`` as it was, never half a new folder; the temporary
    folder is removed when writing fails. A folder cannot be renamed onto another, so an
    existing ``path`` is first renamed away (to a ``.*.tmp`` name) and removed once the new
    one is in place: a crash between the two renames leaves no folder at ``path``, and the
    old one under that name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    tmp.mkdir()
    old = None
    try:
        write(tmp)
        if path.exists():
            old = temporary_name(path)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():  # the new one never arrived: keep the old one
            os.replace(old, path)
        refused = _write_error(path, error)
        if refused is None:
            raise
        raise refused from error
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
