"""The bounded process pool (``soar_env.pool``) on plain work, and the CPython- and
Linux-private details its workers rely on (``soar_env.lifetime``).

Math-Verify on the pool: tests/test_grader_processes.py (lifetime, bombs, load)."""

import ctypes
import multiprocessing.forkserver
import os
import signal
import sys
import time

import pytest

from soar_env.lifetime import PR_GET_PDEATHSIG, cpu_seconds, proc_stat
from soar_env.pool import BoundedPool, allowances


def spin(seconds: float) -> float:
    """Burn ``seconds`` of CPU (a job the pool must cut short when it is long)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return seconds


def private_details() -> dict:
    """What a worker sees of the details ``soar_env.lifetime.die_with`` relies on."""
    signal_number = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(PR_GET_PDEATHSIG, ctypes.byref(signal_number))
    forkserver = multiprocessing.forkserver._forkserver
    return {"pdeathsig": signal_number.value, "has_alive_fd": hasattr(forkserver, "_forkserver_alive_fd"),
            "alive_fd": forkserver._forkserver_alive_fd, "parent": os.getppid()}


@pytest.fixture(scope="module")
def pool():
    pool = BoundedPool(spin, workers=2, name="test pool")
    yield pool
    pool.shutdown()


def test_a_long_job_is_cut_short_and_the_others_answer(pool):
    answers = pool.run([(0.01,), (60.0,), (0.02,), (0.01,)], timeout=0.2)
    assert answers == [0.01, None, 0.02, 0.01]
    # The long job got its whole 0.2 s allowance (free 0.025 s + a 0.4 s batch budget), no more.
    assert 0.2 <= pool.last_cpu_seconds < 0.2 + 0.3


def test_a_batch_of_long_jobs_shares_one_budget(pool):
    """Four never-ending jobs: each its free share, then what the batch budget has left."""
    assert pool.run([(60.0,)] * 4, timeout=0.2) == [None] * 4
    assert pool.last_cpu_seconds < 4 * 0.025 + 0.4 + 4 * 0.1  # + kill latency


def test_allowances_follow_job_order():
    # timeout 1: 0.125 free each, a 2 s budget in job order; an overrun never grows a later one.
    assert allowances([1.0, 1.0, 1.0, 0.0], 1.0) == [1.0, 1.0, 0.125 + 0.25, 0.125]
    assert allowances([0.1] * 3, 1.0) == [1.0] * 3


def test_exact_match_does_not_import_the_pool_and_importing_it_starts_nothing(fresh_python):
    code = """
import atexit, logging, sys, multiprocessing.forkserver as forkserver
import soar_env.domains.chain  # exact match
print("soar_env.pool" in sys.modules, atexit._ncallbacks())
import soar_env.grading, soar_env.pool
print(atexit._ncallbacks(), forkserver._forkserver._forkserver_pid)
"""
    chain, pool = fresh_python(code).splitlines()
    hooks = chain.split()[1]
    assert chain == f"False {hooks}"
    assert pool == f"{hooks} None"  # no exit hook of ours, no forkserver


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")
def test_the_private_details_the_workers_rely_on_hold_on_this_interpreter():
    """If CPython renames the forkserver's alive fd or ctypes cannot reach prctl, workers would
    quietly outlive a killed owner (tests/test_grader_processes.py would then fail slowly)."""
    assert hasattr(multiprocessing.forkserver._forkserver, "_forkserver_alive_fd")
    probe = BoundedPool(private_details, workers=1, name="probe")
    try:
        (seen,) = probe.run([()], timeout=5.0)
    finally:
        probe.shutdown()
    assert seen["has_alive_fd"] and seen["alive_fd"] is None  # die_with closed the worker's copy
    assert seen["pdeathsig"] == signal.SIGKILL  # SIGKILL when the forkserver exits
    assert seen["parent"] == multiprocessing.forkserver._forkserver._forkserver_pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_proc_stat_reads_state_and_cpu():
    assert proc_stat(os.getpid())[0] == b"R"
    assert cpu_seconds(os.getpid()) >= time.process_time() - 0.1
    assert proc_stat(2**22 + 1) == []  # above pid_max: gone
