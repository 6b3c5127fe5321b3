"""Keep freed memory in the process instead of returning it to the OS (glibc, CPU path).

The lockstep sampler allocates and frees tensors of a few MB at every decoding step. glibc
serves allocations above its mmap threshold (128 kB, raised on the fly up to 32 MB) with
fresh ``mmap``s and gives freed heap tops back to the OS, so most steps page-faulted their
outputs in again: about 1,700-3,300 page faults per layer step of a stacked SOAR-Tiny-v1
round, and 11 ms instead of 17-28 ms per layer step once they were gone
(``benchmarks/decode_profile.py``). ``keep_freed_memory`` raises both thresholds once, so
freed blocks are reused. The peak is unchanged (the memory was in use anyway); the process
keeps it until exit. Linux with glibc only; ``SOAR_ENV_MALLOC=0`` leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done: list[bool] = []


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); True when they were set."""
    if _done:
        return _done[0]
    ok = False
    if sys.platform.startswith("linux") and os.environ.get("SOAR_ENV_MALLOC", "1") != "0":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(
                libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31)
            )
        except (OSError, AttributeError):  # musl or another libc: nothing to tune
            ok = False
    _done.append(ok)
    return ok
