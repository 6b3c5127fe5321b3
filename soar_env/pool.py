"""Bounded work: a process pool whose jobs each get a CPU-time allowance, and are killed past it.

``BoundedPool(work, workers=n).run(jobs, timeout)`` calls ``work(*args)`` for each job in
worker processes and returns the answers, None where a job was cut short or crashed twice.
It is for work that may hang or eat memory on hostile input (Math-Verify on
``9^{9^{9^{9}}}``): a worker cannot be stopped from inside, so the owner kills it.

- Time is the worker's CPU time, not wall time, so an answer does not depend on machine
  load. A job may use ``timeout`` CPU seconds. Its first ``timeout / 8`` are free; CPU beyond
  that draws on a budget of ``2 * timeout`` shared by the batch, in job order (job i gets what
  jobs 0..i-1 left, as if run one by one), so a batch of bombs costs about
  ``n * timeout / 8 + 2 * timeout`` CPU seconds. A wall-clock cap of ``10 * timeout`` (at
  least 10 s) per job stays as a last resort.
- Workers die with their owner, even when it is SIGKILLed (``soar_env.lifetime``).
  ``shutdown`` (also at exit) kills them without waiting for an answer.
- Importing this module starts nothing: the workers start on the first ``run``, from a
  forkserver that imports ``preload`` once (so a killed worker is replaced in milliseconds).
  That is the process's one multiprocessing forkserver: the first pool to start it decides
  what it preloads.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from soar_env.lifetime import cpu_seconds, die_with

FREE_SHARE = 1 / 8  # of ``timeout``: CPU any job may use outside the batch budget
BATCH_BUDGET = 2.0  # x ``timeout``: CPU a batch's jobs share beyond their free share
WALL_CAP = 10.0  # x ``timeout`` (at least 10 s): wall-clock backstop for a starved worker
_POLL_S = 0.02


def allowances(cpu: Sequence[float], timeout: float) -> list[float]:
    """CPU seconds each job may use, given what each used (so far, if still running).

    As if run one by one in job order: each may use ``timeout``; CPU beyond the free share
    draws on the batch budget, and job i gets the free share plus what 0..i-1 left. More CPU
    used only shrinks later allowances, so an overrun of a current one is final.
    """
    free, budget = FREE_SHARE * timeout, BATCH_BUDGET * timeout
    result, spent = [], 0.0
    for used in cpu:
        result.append(min(timeout, free + max(0.0, budget - spent)))
        spent += min(max(0.0, used - free), timeout - free)
    return result


@dataclass(eq=False)  # a job is itself, not its arguments: two jobs may be alike
class _Job:
    """One call of ``work``: its arguments, what it used and what came back."""

    args: tuple
    cpu: float = 0.0  # CPU seconds used, so far or in all
    wall: float = 0.0
    answer: Any = None
    answered: bool = False
    done: bool = False  # answered, cut short, or crashed twice
    crashes: int = 0


def _serve(conn: Any, owner: int, memory_bytes: int, work: Callable[..., Any],
           warm_args: tuple | None) -> None:
    """A worker: answer each job's arguments with ``work(*args)`` until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's; it then kills us
    die_with(owner)
    if memory_bytes and sys.platform.startswith("linux"):  # a huge expansion: MemoryError here
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, resource.getrlimit(resource.RLIMIT_AS)[1]))
    if warm_args is not None:
        work(*warm_args)  # any lazy set-up left happens here, not in the first timed job
    conn.send("ready")
    with contextlib.suppress(EOFError, OSError):  # the owner closed the pipe or died
        while True:
            conn.send(work(*conn.recv()))


class _Worker:
    """One worker process and our end of its pipe; it runs one job at a time."""

    def __init__(self, ctx: Any, pool: BoundedPool) -> None:
        self.conn, child = ctx.Pipe()
        args = (child, os.getpid(), pool.memory_bytes, pool.work, pool.warm_args)
        self.proc = ctx.Process(target=_serve, args=args, daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.job: _Job | None = None
        self.cpu0 = self.t0 = 0.0

    def start(self, job: _Job) -> None:
        self.job, self.t0, self.cpu0 = job, time.monotonic(), cpu_seconds(self.proc.pid) or 0.0
        with contextlib.suppress(OSError):  # it just died: its sentinel tells, the job is retried
            self.conn.send(job.args)

    def measure(self) -> None:
        """Record the current job's CPU and wall seconds; CPU is wall time where /proc is missing."""
        wall, cpu = time.monotonic() - self.t0, cpu_seconds(self.proc.pid)
        self.job.cpu, self.job.wall = (wall if cpu is None else cpu - self.cpu0), wall

    def dead(self, ready: set) -> bool:
        return self.proc.sentinel in ready or not self.proc.is_alive()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.conn.close()


class BoundedPool:
    """Worker processes that call ``work`` (a module-level function) on job arguments.

    Args:
        work: What a job runs; its return value must pickle.
        workers: Worker processes (they start on the first ``run``).
        memory_bytes: RLIMIT_AS of each worker on Linux (0: none).
        preload: Modules the forkserver imports once, before it forks any worker (with
            ``work``'s own module).
        warm_args: Arguments of one untimed call each worker makes before its first job.
        name: What the pool does, for error messages.
    """

    def __init__(self, work: Callable[..., Any], *, workers: int, memory_bytes: int = 0,
                 preload: Sequence[str] = (), warm_args: tuple | None = None, name: str = "worker pool"):
        self.work, self.size, self.memory_bytes = work, workers, memory_bytes
        # The forkserver imports work's module too: workers then find it, and start faster.
        home = [] if work.__module__ == "__main__" else [work.__module__]
        self.preload, self.warm_args, self.name = list(dict.fromkeys([*home, *preload])), warm_args, name
        self.last_cpu_seconds = 0.0  # CPU the workers spent on the last batch
        self._lock = threading.Lock()  # one batch at a time: batches share the workers
        self._workers: list[_Worker] = []
        self._owner = 0  # pid that made the workers: a forked child must not use its parent's
        self._closing = False  # set at interpreter exit: no new workers after that
        self._exit_hook = False
        self._start_failures = 0  # workers in a row that died before they were ready
        self._ctx: Any = None

    def run(self, jobs: Sequence[tuple], timeout: float) -> list[Any | None]:
        """``work(*args)`` of each job within its CPU allowance (module docstring); None where
        a job overran it, or crashed its worker twice."""
        with self._lock:
            batch = [_Job(tuple(args)) for args in jobs]
            try:
                self._run(batch, timeout)
            except BaseException:  # e.g. KeyboardInterrupt: leave no worker busy behind
                self._drop()
                raise
        self.last_cpu_seconds = sum(job.cpu for job in batch)
        final = allowances([job.cpu for job in batch], timeout)  # an answer counts within its allowance
        return [job.answer if job.answered and job.cpu <= a else None for job, a in zip(batch, final)]

    def shutdown(self) -> None:
        """Kill the workers without waiting for their answers (they restart on the next run)."""
        with self._lock:
            self._drop()

    def _run(self, batch: list[_Job], timeout: float) -> None:
        todo, wall_cap = collections.deque(batch), max(10.0, WALL_CAP * timeout)
        workers, self._start_failures = self._pool(), 0
        while not all(job.done for job in batch):
            self._check_open()
            for worker in workers:
                if worker.ready and worker.job is None and todo:
                    worker.start(todo.popleft())
            handles = [w.conn for w in workers] + [w.proc.sentinel for w in workers]
            ready = set(multiprocessing.connection.wait(handles, timeout=_POLL_S))
            for k, worker in enumerate(workers):
                if worker.conn in ready:
                    self._receive(worker)
                if worker.dead(ready):
                    self._bury(worker, todo)
                    workers[k] = self._spawn()
            busy = [w for w in workers if w.job is not None]
            for worker in busy:
                worker.measure()
            limits = allowances([job.cpu for job in batch], timeout)
            for worker in busy:
                job = worker.job
                if job.cpu >= limits[batch.index(job)] or job.wall > wall_cap:
                    job.done = True
                    worker.kill()
                    workers[workers.index(worker)] = self._spawn()

    def _receive(self, worker: _Worker) -> None:
        with contextlib.suppress(EOFError, OSError):  # if it died, its sentinel tells
            message = worker.conn.recv()
            if message == "ready" and not worker.ready:
                worker.ready, self._start_failures = True, 0
            elif worker.job is not None:
                worker.measure()
                job, worker.job = worker.job, None
                job.answer, job.answered, job.done = message, True, True

    def _bury(self, worker: _Worker, todo: collections.deque) -> None:
        """A worker died: a job it held is retried once (the crash may not be the job's)."""
        self._start_failures += not worker.ready
        if self._start_failures >= 3 * self.size:
            raise RuntimeError(
                f"{self.name}: worker processes died on start-up. They re-import the main "
                "script: one that uses them must run under `if __name__ == '__main__':`."
            )
        job, worker.job = worker.job, None
        if job is not None:
            job.crashes += 1
            job.done = job.crashes >= 2
            if not job.done:
                job.cpu = 0.0
                todo.appendleft(job)

    def _check_open(self) -> None:
        if self._closing:
            raise RuntimeError(f"{self.name} is shut down: the interpreter is exiting")

    def _spawn(self) -> _Worker:
        self._check_open()
        return _Worker(self._ctx, self)

    def _pool(self) -> list[_Worker]:
        if self._owner != os.getpid():
            self._workers, self._owner = [], os.getpid()  # a forked child leaves its parent's workers be
        self._check_open()
        if not self._workers:
            if not self._exit_hook:  # registered after multiprocessing's own hook, so it runs first
                atexit.register(self._at_exit)
                self._exit_hook = True
            self._ctx = _context(self.preload)
            self._workers = [self._spawn() for _ in range(self.size)]  # they start up now, in parallel
        return self._workers

    def _drop(self) -> None:
        """SIGKILL the workers and reap them; nothing waits on an answer."""
        workers, self._workers = (self._workers if self._owner == os.getpid() else []), []
        for worker in workers:
            worker.kill()
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.proc.join(1.0)

    def _at_exit(self) -> None:
        # No lock: a daemon thread may be mid-batch, and exit must not wait for it or its workers.
        self._closing = True
        self._drop()


def _context(preload: list[str]) -> Any:
    """Not fork: no torch or CUDA state may be copied into the workers. A forkserver where
    there is one (it imports ``preload`` once), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)  # a no-op once the forkserver runs
    multiprocessing.forkserver.ensure_running()
    return ctx

