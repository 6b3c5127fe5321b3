"""Is a completion right? One score per completion, always.

Synthetic domains whose answer is one exact string are graded by exact match of the whole
answer. For the embedded chain domain that is the whole trace: a final-state-only check
succeeds ~10% of the time by chance, so no long chain would ever be 0/128 (see
docs/embedded-domain.md).

Math answers are graded as in the paper: the last ``\\boxed{}`` of the completion against the
reference with Math-Verify (``is_correct``), and the student's RLVR reward is graded
(``graded_reward``). Math-Verify (sympy) can hang or eat memory on a hostile answer
(``9^{9^{9^{9}}}``, a 12x12 symbolic determinant); its own ``signal.alarm`` timeout fails off
the main thread and cannot stop long arithmetic. So verdicts run in a ``soar_env.pool``: worker
processes that get a CPU-time allowance per verdict (the first ``timeout / 8`` free, the rest
from a ``2 * timeout`` budget shared by the batch) and are killed past it, and that die with
their owner. An answer cut short is wrong / not parsed. The pool starts on the first verdict
that needs Math-Verify: exact match never starts it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from soar_env.problems import last_boxed, strip_boxed

if TYPE_CHECKING:
    from soar_env.pool import BoundedPool


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


MAX_ANSWER_CHARS = 2_000  # a longer boxed answer or reference is wrong without parsing
WORKER_MEMORY_BYTES = 2 * 1024**3  # RLIMIT_AS of each worker (Linux only)
WORKERS = max(1, min(4, os.cpu_count() or 1))
REWARD_SCORES = (1.0, 0.2, 0.1, 0.0)  # verified, reference appears, boxed but wrong, no box

_pool: BoundedPool | None = None  # made on the first Math-Verify verdict
_pool_lock = threading.Lock()


def _verifiers() -> BoundedPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            from soar_env.pool import BoundedPool  # here: exact-match users never import the pool

            # The forkserver imports soar_env.grading_warmup once: Math-Verify's lazy set-up, done
            # there, is inherited by every worker (a replaced one answers in milliseconds).
            _pool = BoundedPool(math_verify_verdict, workers=WORKERS, memory_bytes=WORKER_MEMORY_BYTES,
                                preload=["soar_env.grading_warmup", "math_verify"], warm_args=("1", "2"),
                                name="Math-Verify grading")
        return _pool


def last_batch_cpu_seconds() -> float:
    """CPU seconds the grading workers spent on the last guarded batch (benchmarks, tests)."""
    return _pool.last_cpu_seconds if _pool is not None else 0.0


def is_correct(completion: str, reference: str, timeout: float = 2.0, *, fast_path: bool = True) -> bool:
    """Whether the last ``\\boxed{}`` answer of ``completion`` is equivalent to ``reference``.

    Args:
        completion: The student's text; only its last ``\\boxed{...}`` is graded.
        reference: The answer, plain LaTeX or a number, or itself wrapped in ``\\boxed{}``.
        timeout: CPU seconds Math-Verify may spend on this verdict (in a batch, beyond the
            first ``timeout / 8`` they come from the batch's budget: see ``soar_env.pool``).
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
    """Fill the open verdicts (index -> worker arguments) in one pool batch; a repeated
    (gold, pred) pair is graded once, so it costs (and may be cut short) once."""
    if todo:
        unique = list(dict.fromkeys(todo.values()))
        found = dict(zip(unique, _verifiers().run(unique, timeout)))
        for i, args in todo.items():
            verdicts[i] = bool(found[args])  # None: cut short or crashed
    return [bool(v) for v in verdicts]


def shutdown() -> None:
    """Kill the workers without waiting for their verdicts (they restart on the next verdict)."""
    if _pool is not None:
        _pool.shutdown()


def _reference_answer(reference: str) -> str:
    # A boxed reference is graded by its content; strip_boxed leaves plain ones as they are.
    return strip_boxed(reference)


def math_verify_verdict(gold: str, pred: str | None) -> bool:
    """Math-Verify on ``pred`` against ``gold``, or (``pred`` None) whether ``gold`` parses
    to a math object; runs in a worker."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its own timeout is off: we are it
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
        if pred is None:
            return any(not isinstance(item, str) for item in gold_parsed)
        pred_parsed = parse(f"\\boxed{{{pred}}}", parsing_timeout=None)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # MemoryError and RecursionError included: a wrong answer, not a crash
        return False
