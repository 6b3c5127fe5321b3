"""CPU threads that adapt to a shared machine.

torch uses one OpenMP thread per core, and OpenMP threads spin while they wait for each
other. Beside one other busy process on 2 cores, a spinning thread waits for a core that
process holds, and a SOAR-Tiny step slowed 3.9x (4.7 s -> 17.9 s). One thread does not spin
(7.3-7.8 s, busy or not), but on a quiet machine two threads are 1.6x faster. Passive waiting
(``OMP_WAIT_POLICY=PASSIVE``) survives load but costs 1.5x on a quiet machine (wake-ups
after every small op of a tiny model).

So before each sampling call ``adapt()`` looks at how much CPU *other* processes used since
its last call (``/proc/stat`` minus this process's own ``/proc/self/stat``): more than half
a core, and torch runs 1 thread; otherwise as many as it started with. Two soar-env
processes side by side (a bench split over seeds) then each take one core.

Fixed instead when the user chose: ``SOAR_ENV_THREADS=N``, ``OMP_NUM_THREADS``, an
explicit ``torch.set_num_threads`` before the first call (``SOAR_ENV_THREADS=0`` turns the
adaptation off) or ``fix(n)`` (an env's ``threads=n``). Linux only; elsewhere it does nothing.
"""

from __future__ import annotations

import os
import time

_BUSY_FIELDS = slice(1, 8)  # user nice system idle iowait irq softirq steal -> idle is 4th
_state: dict = {}


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy ticks of all CPUs, ticks used by this process), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        with open("/proc/self/stat") as f:
            mine = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy, int(mine[11]) + int(mine[12])  # utime + stime


def fix(count: int) -> None:
    """Run torch on ``count`` threads in this process from now on, whatever the load."""
    import torch

    torch.set_num_threads(count)
    _state.update(fixed=True, max=count)


def adapt() -> int | None:
    """Set torch's CPU threads for the load seen since the last call; returns the count."""
    import torch

    if "fixed" not in _state:
        chosen = os.environ.get("SOAR_ENV_THREADS")
        if chosen is not None:
            if int(chosen) > 0:
                torch.set_num_threads(int(chosen))
            _state["fixed"] = True
        else:
            _state["fixed"] = "OMP_NUM_THREADS" in os.environ
        _state["max"] = torch.get_num_threads()
    if _state["fixed"] or _state["max"] < 2:
        return None
    ticks, now = _cpu_ticks(), time.monotonic()
    if ticks is None:
        _state["fixed"] = True
        return None
    last = _state.get("last")
    _state["last"] = (ticks, now)
    if last is None or now - last[1] < 0.05:
        return torch.get_num_threads()
    (busy0, mine0), t0 = last
    per_second = os.sysconf("SC_CLK_TCK")
    others = ((ticks[0] - busy0) - (ticks[1] - mine0)) / per_second / (now - t0)
    want = 1 if others > 0.5 else _state["max"]
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)
    return want
