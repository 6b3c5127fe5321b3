"""Is a completion right? One score per completion, always.

Synthetic domains whose answer is one exact string are graded by exact match of the whole
answer. For the embedded chain domain that is the whole trace: a final-state-only check
succeeds ~10% of the time by chance, so no long chain would ever be 0/128 (see
shared/docs/embedded-domain.md).

Math answers are graded as in the paper: the last ``\\boxed{}`` of the completion against the
reference with Math-Verify (``is_correct``), and the student's RLVR reward is graded
(``graded_reward``). Math-Verify runs in a pool of worker processes with a hard timeout, so a
hostile answer can cost at most ``timeout`` seconds and never hangs or crashes the caller.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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
# Math-Verify (sympy underneath) can hang or eat memory on a hostile answer such as
# ``9^{9^{9^{9}}}``, and its own ``signal.alarm`` timeout neither works off the main thread nor
# stops long arithmetic. So each verdict runs in a worker process that the parent kills when it
# overruns, and a memory cap turns a huge expansion into a MemoryError there.

MAX_ANSWER_CHARS = 2_000  # a longer boxed answer or reference is wrong without parsing
WORKER_MEMORY_BYTES = 2 * 1024**3  # RLIMIT_AS of each worker (Linux only)
WORKERS = max(1, min(4, os.cpu_count() or 1))
REWARD_SCORES = (1.0, 0.2, 0.1, 0.0)  # verified, reference appears, boxed but wrong, no box
_POLL_S = 0.02

_lock = threading.Lock()  # one batch at a time: batches share the pool and its start queue
_pool: ProcessPoolExecutor | None = None
_pool_owner = 0  # pid that made the pool: a forked child must not use its parent's
_started: Any = None  # workers put (job id, pid) on this queue when they start a verdict
_job_ids = itertools.count()
_worker_started: Any = None  # set in each worker by ``_init_worker``


def is_correct(completion: str, reference: str, timeout: float = 2.0, *, fast_path: bool = True) -> bool:
    """Whether the last ``\\boxed{}`` answer of ``completion`` is equivalent to ``reference``.

    Args:
        completion: The student's text; only its last ``\\boxed{...}`` is graded.
        reference: The answer, plain LaTeX or a number, or itself wrapped in ``\\boxed{}``.
        timeout: Seconds Math-Verify may spend on this verdict once a worker starts it.
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
    """Fill the open verdicts (index -> worker arguments) from the pool, one batch at a time."""
    if todo:
        with _lock:
            for i, verdict in zip(todo, _run(list(todo.values()), timeout)):
                verdicts[i] = verdict
    return [bool(v) for v in verdicts]


def shutdown() -> None:
    """Stop the worker pool (it restarts on the next verdict). Registered with ``atexit``."""
    with _lock:
        _drop_pool()


atexit.register(shutdown)


def _reference_answer(reference: str) -> str:
    # A boxed reference is graded by its content; strip_boxed leaves plain ones as they are.
    return strip_boxed(reference)


def _init_worker(started: Any, memory_bytes: int) -> None:
    global _worker_started
    _worker_started = started
    if memory_bytes and sys.platform.startswith("linux"):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    # Math-Verify warns once that its own timeout is off: the pool is the timeout.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    import math_verify  # noqa: F401  (imported here, not inside the first timed verdict)


def _ping() -> None:
    """A no-op task: submitting it makes the pool start a worker now."""


def _verdict(job: int, gold: str, pred: str | None) -> bool:
    """Math-Verify on ``pred`` against ``gold``, or (``pred`` None) whether ``gold`` parses
    to a math object; runs in a worker."""
    _worker_started.put((job, os.getpid()))  # a synchronous pipe write: the parent's clock starts
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
        if pred is None:
            return any(not isinstance(item, str) for item in gold_parsed)
        pred_parsed = parse(f"\\boxed{{{pred}}}", parsing_timeout=None)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # MemoryError and RecursionError included: a wrong answer, not a crash
        return False


def _get_pool() -> tuple[ProcessPoolExecutor, Any]:
    global _pool, _pool_owner, _started
    if _pool is None or _pool_owner != os.getpid():
        # Not fork: no torch or CUDA state may be copied into the workers. The forkserver starts
        # with Math-Verify imported, so a worker killed at a timeout is replaced in milliseconds.
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["soar_env.grading", "math_verify"])  # no-op once it runs
        else:
            ctx = multiprocessing.get_context("spawn")
        _started = ctx.SimpleQueue()
        _pool = ProcessPoolExecutor(
            WORKERS, ctx, initializer=_init_worker, initargs=(_started, WORKER_MEMORY_BYTES)
        )
        _pool_owner = os.getpid()
        for _ in range(WORKERS):  # workers start importing now, not when the first verdict waits
            _pool.submit(_ping)
    return _pool, _started


def _drop_pool(kill: Iterable[int] = ()) -> None:
    """Kill the given workers and forget the pool; the executor then stops its other workers."""
    global _pool
    for pid in kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if _pool is not None and _pool_owner == os.getpid():
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool = None


def _run(pairs: Sequence[tuple[str, str]], timeout: float) -> list[bool]:
    """Math-Verify verdicts on (gold, pred) pairs, each bounded by ``timeout`` s once started."""
    verdicts: dict[int, bool] = {}
    while len(verdicts) < len(pairs):
        fresh = _pool is None or _pool_owner != os.getpid()
        pool, started = _get_pool()
        _read_starts(started, {}, {})  # reports left by earlier batches: drain, or the pipe fills
        # A fresh job id per try, so that late reports from a killed try are ignored.
        jobs = {next(_job_ids): i for i in range(len(pairs)) if i not in verdicts}  # job -> index
        running: dict[int, tuple[int, float]] = {}  # job -> (worker pid, start time)
        stuck: set[int] = set()  # pids of workers still busy on a verdict that ran out of time
        crashed = False
        try:
            futures = {job: pool.submit(_verdict, job, *pairs[i]) for job, i in jobs.items()}
        except BrokenProcessPool:
            futures, crashed = {}, True
        try:
            while futures and not crashed:
                _read_starts(started, futures, running)
                now = time.monotonic()
                for job in [job for job in futures if job in running and now - running[job][1] > timeout]:
                    verdicts[jobs[job]] = False
                    stuck.add(running[job][0])
                    del futures[job]
                # A killed worker breaks the whole pool, so the stuck ones are killed together,
                # once the batch is done or no worker is left to make progress.
                if stuck and (not futures or len(stuck) >= WORKERS):
                    _drop_pool(kill=stuck)
                    _get_pool()  # the replacement starts up now, not in the next call
                    break
                wait(futures.values(), timeout=_POLL_S, return_when=FIRST_COMPLETED)
                for job, future in list(futures.items()):
                    if future.done():
                        try:
                            verdicts[jobs[job]] = bool(future.result())
                        except BrokenProcessPool:
                            crashed = True
                            continue
                        except Exception:
                            verdicts[jobs[job]] = False
                        del futures[job]
        except BaseException:  # e.g. KeyboardInterrupt: leave no worker stuck behind
            _drop_pool(kill=stuck | {pid for job, (pid, _) in running.items() if job in futures})
            raise
        if crashed:
            _read_starts(started, futures, running)
            _drop_pool(kill=stuck)
            suspects = [jobs[job] for job in futures if job in running]  # started, unfinished
            if not suspects and not stuck:
                if fresh:
                    raise RuntimeError(
                        "Math-Verify worker processes died before starting a verdict. They re-import "
                        "the main script: one that grades must run under `if __name__ == '__main__':`."
                    )
                continue  # the pool had died between batches: retry on a fresh one
            # A worker died (a hard abort, say) and we cannot tell which verdict killed it: rerun
            # the suspects alone, so that only the culprit is marked wrong. The loop retries the rest.
            for i in suspects:
                verdicts[i] = False if len(pairs) == 1 else _run([pairs[i]], timeout)[0]
    return [verdicts[i] for i in range(len(pairs))]


def _read_starts(started: Any, jobs: dict[int, Any], running: dict[int, tuple[int, float]]) -> None:
    """Record when each of ``jobs`` started, from the workers' reports."""
    while not started.empty():
        job, pid = started.get()
        if job in jobs:
            running[job] = (pid, time.monotonic())
