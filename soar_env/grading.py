"""Is a completion right? One score per completion, always.

Synthetic domains whose answer is one exact string are graded by exact match of the whole
answer. For the embedded chain domain that is the whole trace: a final-state-only check
succeeds ~10% of the time by chance, so no long chain would ever be 0/128 (see
docs/embedded-domain.md).

Math answers are graded as in the paper: the last ``\\boxed{}`` of the completion against the
reference with Math-Verify (``is_correct``), and the student's RLVR reward is graded
(``graded_reward``). Math-Verify runs in worker processes that the caller kills on overrun, so
a hostile answer never hangs or crashes the caller:

- Time is the worker's CPU time, not wall time, so a verdict does not depend on machine load.
  A verdict may use ``timeout`` CPU seconds. Its first ``timeout / 8`` are free; CPU beyond
  that draws on a budget of ``2 * timeout`` shared by the batch, in answer order (answer i gets
  what answers 0..i-1 left, as if graded one by one), so a batch of bombs costs about
  ``n * timeout / 8 + 2 * timeout`` CPU seconds. Answers cut short are wrong / not parsed.
  A wall-clock cap of ``10 * timeout`` (at least 10 s) per verdict stays as a last resort.
- Workers die with their owner, even when it is SIGKILLed: Linux kills them when their parent
  (the forkserver) exits, and a watchdog thread checks the owner's pid. ``shutdown`` (also at
  exit) kills them without waiting for a verdict.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.util  # before our atexit hook, so that ours runs first (LIFO)
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from soar_env.problems import last_boxed, strip_boxed


def exact_match(completion: str, reference: str) -> float:
    """1.0 when the completion equals the reference (outer whitespace ignored), else 0.0."""
    return 1.0 if completion.strip() == reference.strip() else 0.0


def exact_match_scores(completions: Sequence[str], references: Sequence[str]) -> list[float]:
    """``exact_match`` of each completion against its reference (a TRL-style reward)."""
    if len(completions) != len(references):
        raise ValueError(
            f"Expects one reference per completion, actual {len(references)} for {len(completions)}"
        )
    return [exact_match(c, r) for c, r in zip(completions, references)]


# ---- Math-Verify grading -------------------------------------------------------------------
# Math-Verify (sympy) can hang or eat memory on a hostile answer (``9^{9^{9^{9}}}``, a 12x12
# symbolic determinant); its own ``signal.alarm`` timeout fails off the main thread and cannot
# stop long arithmetic. So verdicts run in worker processes that the owner kills.

MAX_ANSWER_CHARS = 2_000  # a longer boxed answer or reference is wrong without parsing
WORKER_MEMORY_BYTES = 2 * 1024**3  # RLIMIT_AS of each worker (Linux only)
WORKERS = max(1, min(4, os.cpu_count() or 1))
REWARD_SCORES = (1.0, 0.2, 0.1, 0.0)  # verified, reference appears, boxed but wrong, no box
FREE_SHARE = 1 / 8  # of ``timeout``: CPU any verdict may use outside the batch budget
BATCH_BUDGET = 2.0  # x ``timeout``: CPU a batch's verdicts share beyond their free share
WALL_CAP = 10.0  # x ``timeout`` (at least 10 s): wall-clock backstop for a starved worker
_POLL_S = 0.02
_WARM_ENV = "SOAR_ENV_GRADING_FORKSERVER"  # holds the owner's pid while it starts the forkserver
# Answers that make a process do its lazy sympy / Math-Verify set-up, once, in the forkserver:
# a fresh fork otherwise spends up to 0.26 s CPU on its first (x+1)^2 or \sin x (0.01-0.05 s warm).
_WARM_UP = [  # (gold, pred) pairs
    ("x^2+2x+1", "(x+1)^2"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\{1,2\\}", "[0,1)"),
    ("x=3", "\\sin(\\pi/3)"),
    ("\\frac{\\pi}{3}", "60^\\circ"),
    ("50\\%", "\\binom{n}{2}-n"),
    ("(1,2)", "\\det\\begin{pmatrix}p & q \\\\ r & s\\end{pmatrix}"),
]

_lock = threading.Lock()  # one batch at a time: batches share the workers
_workers: list[_Worker] = []
_pool_owner = 0  # pid that made the workers: a forked child must not use its parent's
_closing = False  # set at interpreter exit: no new workers after that
_ctx: Any = None  # the multiprocessing context the workers start from
_batch_cpu = 0.0  # CPU seconds the workers spent on the last batch (last_batch_cpu_seconds)


def last_batch_cpu_seconds() -> float:
    """CPU seconds the grading workers spent on the last guarded batch (benchmarks, tests)."""
    return _batch_cpu


def is_correct(completion: str, reference: str, timeout: float = 2.0, *, fast_path: bool = True) -> bool:
    """Whether the last ``\\boxed{}`` answer of ``completion`` is equivalent to ``reference``.

    Args:
        completion: The student's text; only its last ``\\boxed{...}`` is graded.
        reference: The answer, plain LaTeX or a number, or itself wrapped in ``\\boxed{}``.
        timeout: CPU seconds Math-Verify may spend on this verdict (in a batch, beyond the
            first ``timeout / 8`` they come from the batch's budget: see the module docstring).
        fast_path: Accept an answer string-equal to the reference without Math-Verify
            (False measures what Math-Verify itself accepts).

    Returns:
        False when there is no box, an answer or reference over ``MAX_ANSWER_CHARS`` or
        with a NUL byte, Math-Verify cannot parse either side, or the verdict overruns.

    Example:
        >>> is_correct("so x = \\boxed{0.5}", "\\frac{1}{2}")
        True
    """
    return is_correct_batch([completion], [reference], timeout, fast_path=fast_path)[0]


def is_correct_batch(
    completions: Sequence[str], references: Sequence[str], timeout: float = 2.0, *, fast_path: bool = True
) -> list[bool]:
    """``is_correct`` for many completions at once, in parallel; each verdict stays bounded."""
    if len(completions) != len(references):
        raise ValueError(
            f"Expects one reference per completion, actual {len(references)} for {len(completions)}"
        )
    if not timeout > 0:
        raise ValueError(f"Expects a timeout > 0 seconds, actual {timeout}")
    verdicts: list[bool | None] = []
    todo: dict[int, tuple[str, str]] = {}
    for i, (completion, reference) in enumerate(zip(completions, references)):
        pred, gold = last_boxed(completion), _reference_answer(reference)
        if not pred or not gold:
            verdicts.append(False)
        elif fast_path and pred == gold:
            verdicts.append(True)
        elif max(len(pred), len(gold)) > MAX_ANSWER_CHARS or "\x00" in pred + gold:
            verdicts.append(False)
        else:
            verdicts.append(None)
            todo[i] = (gold, pred)
    return _resolve(verdicts, todo, timeout)


def parses_batch(answers: Sequence[str], timeout: float = 2.0) -> list[bool]:
    """Whether Math-Verify parses each answer (plain or boxed) into a math object.

    Math-Verify falls back to the raw string when its LaTeX and expression parsers fail
    (``\\frac{1}{``, ``\\sqrt``, ``???``); such an answer could only ever be string-matched,
    so a teacher answer counts as parseable only when a math object comes back. Empty,
    over-long and NUL-byte answers are not parsed at all. Runs in the same bounded worker
    pool as ``is_correct_batch``.
    """
    if not timeout > 0:
        raise ValueError(f"Expects a timeout > 0 seconds, actual {timeout}")
    verdicts: list[bool | None] = []
    todo: dict[int, tuple[str, None]] = {}
    for i, answer in enumerate(answers):
        gold = _reference_answer(answer)
        if not gold or len(gold) > MAX_ANSWER_CHARS or "\x00" in gold:
            verdicts.append(False)
        else:
            verdicts.append(None)
            todo[i] = (gold, None)
    return _resolve(verdicts, todo, timeout)


def graded_reward(
    completion: str, reference: str, scores: Sequence[float] = REWARD_SCORES, timeout: float = 2.0
) -> float:
    """The paper's graded student reward for one completion.

    Args:
        completion: The student's text.
        reference: The answer it is graded against (plain or in ``\\boxed{}``).
        scores: Rewards for, in order: boxed and verified; boxed, not verified, but the
            reference string appears in the completion; boxed and wrong; no box.
        timeout: Per-verdict Math-Verify budget, as in ``is_correct``.
    """
    return graded_rewards([completion], [reference], scores, timeout)[0]


def graded_rewards(
    completions: Sequence[str],
    references: Sequence[str],
    scores: Sequence[float] = REWARD_SCORES,
    timeout: float = 2.0,
) -> list[float]:
    """``graded_reward`` for many completions, verified in one batch (a TRL-style reward)."""
    if len(scores) != 4:
        raise ValueError(f"Expects 4 scores (verified, reference seen, boxed, no box), actual {scores}")
    correct = is_correct_batch(completions, references, timeout)
    rewards = []
    for completion, reference, ok in zip(completions, references, correct):
        gold = _reference_answer(reference)
        if last_boxed(completion) is None:
            rewards.append(float(scores[3]))
        elif ok:
            rewards.append(float(scores[0]))
        elif gold and gold in completion:
            rewards.append(float(scores[1]))
        else:
            rewards.append(float(scores[2]))
    return rewards


def _resolve(verdicts: list[bool | None], todo: dict[int, tuple], timeout: float) -> list[bool]:
    """Fill the open verdicts (index -> worker arguments), one batch at a time; a repeated
    (gold, pred) pair is graded once, so it costs (and may be cut short) once."""
    if todo:
        unique = list(dict.fromkeys(todo.values()))
        with _lock:
            found = dict(zip(unique, _run(unique, timeout)))
        for i, args in todo.items():
            verdicts[i] = found[args]
    return [bool(v) for v in verdicts]


def shutdown() -> None:
    """Kill the workers without waiting for their verdicts (they restart on the next verdict)."""
    with _lock:
        _drop_pool()


@atexit.register
def _at_exit() -> None:
    # No lock: a daemon thread may be mid-batch, and exit must not wait for it or its workers.
    global _closing
    _closing = True
    _drop_pool()


def _reference_answer(reference: str) -> str:
    # A boxed reference is graded by its content; strip_boxed leaves plain ones as they are.
    return strip_boxed(reference)


# ---- worker side ----


def _serve(conn: Any, owner: int, memory_bytes: int) -> None:
    """A worker: answer (gold, pred) requests with ``_verdict`` until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's; it then kills us
    _die_with(owner)
    if memory_bytes and sys.platform.startswith("linux"):  # a huge expansion: MemoryError here
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, resource.getrlimit(resource.RLIMIT_AS)[1]))
    # Math-Verify warns once that its own timeout is off: the owner is the timeout.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _verdict("1", "2")  # any lazy set-up left happens here, not in the first timed verdict
    conn.send("ready")
    with contextlib.suppress(EOFError, OSError):  # the owner closed the pipe or died
        while True:
            conn.send(_verdict(*conn.recv()))


def _die_with(owner: int) -> None:
    """Make this worker die with the process that owns it, however that one ends."""
    forkserver = getattr(multiprocessing.forkserver, "_forkserver", None)
    if os.getppid() != owner and forkserver is not None:
        # Our parent is the forkserver. Each process it forks holds a copy of the pipe end whose
        # EOF tells it that the owner is gone, so the forkserver, the workers and the resource
        # tracker kept one another alive for good after the owner died. Close ours...
        with contextlib.suppress(OSError, TypeError):
            os.close(forkserver._forkserver_alive_fd)
        forkserver._forkserver_alive_fd = None
        # ... and have the kernel SIGKILL us when the forkserver exits, even while sympy holds
        # the GIL. (Not when the owner is our parent: the signal follows the owner's *thread*.)
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    # Elsewhere, or if another process keeps that pipe end open, a watchdog checks the owner.
    threading.Thread(target=_watch, args=(owner,), name="owner-watchdog", daemon=True).start()


def _watch(owner: int) -> None:
    while True:
        time.sleep(0.5)
        stat = _proc_stat(owner)
        if stat is None:  # no /proc: ask the kernel (a zombie owner then still counts as alive)
            with contextlib.suppress(PermissionError):
                try:
                    os.kill(owner, 0)
                except ProcessLookupError:
                    stat = []
        if stat == [] or (stat and stat[0] in (b"Z", b"X")):  # gone, or a zombie: dead either way
            os._exit(1)


def _verdict(gold: str, pred: str | None) -> bool:
    """Math-Verify on ``pred`` against ``gold``, or (``pred`` None) whether ``gold`` parses
    to a math object; runs in a worker."""
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
        if pred is None:
            return any(not isinstance(item, str) for item in gold_parsed)
        pred_parsed = parse(f"\\boxed{{{pred}}}", parsing_timeout=None)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # MemoryError and RecursionError included: a wrong answer, not a crash
        return False


# ---- owner side ----

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat from the state on ([] if the process is gone), None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return [] if os.path.isdir("/proc/self") else None
    except OSError:
        return None


class _Worker:
    """One worker process and our end of its pipe; it runs one verdict at a time."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, os.getpid(), WORKER_MEMORY_BYTES), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.job: int | None = None  # index of the verdict it runs
        self.cpu0 = self.t0 = 0.0

    def cpu(self) -> float | None:
        stat = _proc_stat(self.proc.pid)
        return (int(stat[11]) + int(stat[12])) / _TICKS if stat else None  # user + system

    def start(self, job: int, args: tuple) -> None:
        self.job, self.t0, self.cpu0 = job, time.monotonic(), self.cpu() or 0.0
        with contextlib.suppress(OSError):  # it just died: its sentinel tells, the job is retried
            self.conn.send(args)

    def used(self) -> tuple[float, float]:
        """(CPU, wall) seconds of the current verdict; CPU is wall time where /proc is missing."""
        wall, cpu = time.monotonic() - self.t0, self.cpu()
        return (wall if cpu is None else cpu - self.cpu0), wall

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.conn.close()


def _get_pool() -> list[_Worker]:
    global _workers, _pool_owner, _ctx
    if _pool_owner != os.getpid():
        _workers, _pool_owner = [], os.getpid()  # a forked child leaves its parent's workers be
    if _closing:
        raise RuntimeError("Math-Verify grading is shut down: the interpreter is exiting")
    if not _workers:
        # Not fork: no torch or CUDA state may be copied into the workers. The forkserver starts
        # with Math-Verify imported and warmed up, so a killed worker is replaced in milliseconds.
        if "forkserver" in multiprocessing.get_all_start_methods():
            _ctx = multiprocessing.get_context("forkserver")
            _ctx.set_forkserver_preload(["soar_env.grading", "math_verify"])  # no-op once it runs
            os.environ[_WARM_ENV] = str(os.getpid())  # see the end of this module
            try:
                multiprocessing.forkserver.ensure_running()
            finally:
                os.environ.pop(_WARM_ENV, None)
        else:
            _ctx = multiprocessing.get_context("spawn")
        _workers = [_Worker(_ctx) for _ in range(WORKERS)]  # they start up now, in parallel
    return _workers


def _drop_pool() -> None:
    """SIGKILL the workers and reap them; nothing waits on a verdict."""
    global _workers
    workers, _workers = (_workers if _pool_owner == os.getpid() else []), []
    for worker in workers:
        worker.kill()
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.proc.join(1.0)


def _allowances(cpu: Sequence[float], timeout: float) -> list[float]:
    """CPU seconds each verdict may use, given what each used (so far, if still running).

    As if graded one by one in answer order: each may use ``timeout``; CPU beyond the free
    share draws on the batch budget, and verdict i gets the free share plus what 0..i-1 left.
    More CPU used only shrinks later allowances, so an overrun of a current one is final.
    """
    free, budget = FREE_SHARE * timeout, BATCH_BUDGET * timeout
    allowances, spent = [], 0.0
    for used in cpu:
        allowances.append(min(timeout, free + max(0.0, budget - spent)))
        spent += min(max(0.0, used - free), timeout - free)
    return allowances


def _run(pairs: Sequence[tuple[str, str | None]], timeout: float) -> list[bool]:
    """Math-Verify verdicts on (gold, pred) pairs within their CPU allowances (module docstring)."""
    global _batch_cpu
    n, wall_cap = len(pairs), max(10.0, WALL_CAP * timeout)
    cpu, walls = [0.0] * n, [0.0] * n  # seconds each verdict used, so far or in all
    result: list[bool | None] = [None] * n  # Math-Verify's answer; None: killed, crashed or unrun
    finished, crashes, todo = [False] * n, [0] * n, collections.deque(range(n))
    workers, start_failures = _get_pool(), 0
    try:
        while not all(finished):
            if _closing:
                raise RuntimeError("Math-Verify grading is shut down: the interpreter is exiting")
            for worker in workers:
                if worker.ready and worker.job is None and todo:
                    worker.start(i := todo.popleft(), pairs[i])
            handles = [w.conn for w in workers] + [w.proc.sentinel for w in workers]
            ready = set(multiprocessing.connection.wait(handles, timeout=_POLL_S))
            for k, worker in enumerate(workers):
                if worker.conn in ready:
                    with contextlib.suppress(EOFError, OSError):  # if it died, the sentinel tells
                        message = worker.conn.recv()
                        if message == "ready":
                            worker.ready, start_failures = True, 0
                        elif worker.job is not None:
                            i, worker.job = worker.job, None
                            cpu[i], result[i], finished[i] = worker.used()[0], bool(message), True
                if worker.proc.sentinel not in ready and worker.proc.is_alive():
                    continue
                start_failures += not worker.ready
                if start_failures >= 3 * WORKERS:
                    raise RuntimeError(
                        "Math-Verify worker processes died on start-up. They re-import the main "
                        "script: one that grades must run under `if __name__ == '__main__':`."
                    )
                if worker.job is not None:  # a hard crash: retried once, as it may not be the answer's
                    i = worker.job
                    crashes[i] += 1
                    finished[i] = crashes[i] >= 2
                    if not finished[i]:
                        cpu[i] = 0.0
                        todo.appendleft(i)
                workers[k] = _Worker(_ctx)
            for worker in workers:
                if worker.job is not None:
                    cpu[worker.job], walls[worker.job] = worker.used()
            allowances = _allowances(cpu, timeout)
            for k, worker in enumerate(workers):
                i = worker.job
                if i is not None and (cpu[i] >= allowances[i] or walls[i] > wall_cap):
                    finished[i] = True
                    worker.kill()
                    workers[k] = _Worker(_ctx)
    except BaseException:  # e.g. KeyboardInterrupt: leave no worker busy behind
        _drop_pool()
        raise
    _batch_cpu = sum(cpu)
    allowances = _allowances(cpu, timeout)  # final: a verdict counts only within its allowance
    return [bool(result[i]) and cpu[i] <= allowances[i] for i in range(n)]


if os.environ.get(_WARM_ENV) == str(os.getppid()):  # we are the forkserver our owner starts
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for _gold, _pred in _WARM_UP:  # the lazy set-up, done once for every worker forked from here
        _verdict(_gold, _pred)
