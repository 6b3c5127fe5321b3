"""Fresh students of the evaluation protocol, trained side by side in lockstep.

``soar_env.evaluation.train_fresh_student`` trains one fresh base student on a curriculum
plus D_train. An evaluation trains many (curricula x student seeds), each independent: here
they train as one stacked model (``soar_env.lockstep``), each run with its own curriculum,
seed, data schedule and stopping rule, and leave the stack when they stop. Their weights are
then measured by the same code as before (``evaluate_student``), one run at a time.

Used by ``evaluate_curricula`` when the env's student can be stacked (small CPU Llamas);
other students keep the one-at-a-time path.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from soar_env.problems import Problem

MAX_STACK = 16
"""Fresh students trained at once (memory grows with it: about 25 MB per tiny student)."""


@dataclass
class FreshRun:
    """One fresh student: its curriculum and seed in, its steps, rewards and weights out."""

    curriculum: list[Problem]
    seed: int
    steps: int = 0
    rewards: list[float] | None = None
    weights: dict | None = None
    failed: str | None = None


def _schedule(run: FreshRun, real: list[Problem], config: Any):
    """The data of each step, as ``train_fresh_student`` chooses it (mixed or curriculum)."""
    synthetic = list(run.curriculum)
    mixed = synthetic + real
    random.Random(run.seed).shuffle(mixed)

    def data(step: int) -> list[Problem]:
        if config.mode == "curriculum" and synthetic:
            return synthetic if step < config.synthetic_steps else real
        return mixed

    return data


OnStep = Callable[[FreshRun, int, Callable[[], dict]], None]
"""``on_step(run, steps_done, weights)``: called after each step for every run still in the
stack; ``weights()`` returns that run's current weights (a copy, only when asked for)."""


def train_fresh_students(env: Any, runs: Sequence[FreshRun], config: Any, progress: bool = False,
                         on_step: OnStep | None = None) -> None:
    """Train every run from the env's base weights, in stacks of at most ``MAX_STACK``;
    fills each run's ``steps``, ``rewards`` and ``weights`` (or ``failed``).

    Where the env's executor keeps lockstep worker processes (``num_workers >= 2``) and no
    ``on_step`` hook needs the weights here, the runs are split into contiguous shares, one
    stack per worker at one torch thread, as the rounds' workers (on 2 cores two processes
    beat one of two threads: docs/scale.md). A share's runs are what the same share gives in
    this process; the split is fixed by the runs' order."""
    rl = config.rl or env.config.rl
    real = list(env.hard_set.train)
    executor = getattr(env, "_executor", None)
    if on_step is None and len(runs) > 1 and getattr(executor, "stacked", False):
        executor.train_fresh(list(runs), config, rl, real, progress)
        return
    train_stacks(env.lab, real, rl, list(runs), config, progress, on_step)


def train_stacks(lab: Any, real: list[Problem], rl: Any, runs: list[FreshRun], config: Any,
                 progress: bool = False, on_step: OnStep | None = None, label: str = "") -> None:
    """``train_fresh_students`` in this process, on ``lab``'s base weights and D_train ``real``."""
    for at in range(0, len(runs), MAX_STACK):
        _train_stack(lab, real, rl, runs[at : at + MAX_STACK], config, progress, on_step, label)


def _train_stack(lab: Any, real: list[Problem], rl: Any, runs: list[FreshRun], config: Any, progress: bool,
                 on_step: OnStep | None, label: str) -> None:
    from tqdm.auto import tqdm

    from soar_env.lockstep import LockstepRLOO
    from soar_env.stopping import SlopeStopper

    trainer = LockstepRLOO(
        lab.student,
        lab.domain.reward_batch,
        lab.student_prompt,
        rl,
        [lab.base] * len(runs),
        [r.seed for r in runs],
        reference=lab.base if rl.kl_coef > 0 else None,
        exact_answers=lab.domain.exact_answers,
    )
    schedules = [_schedule(r, real, config) for r in runs]
    stoppers = [SlopeStopper(config.smoothing, config.stop_fraction, config.min_steps) for _ in runs]
    for r in runs:
        r.rewards = []
    bar = tqdm(
        total=config.max_steps,
        desc=f"eval: {len(runs)} fresh students in lockstep{label} (student seeds "
        f"{', '.join(map(str, sorted({r.seed for r in runs})))})",
        unit="step",
        leave=False,
        disable=not progress,
    )
    for step in range(config.max_steps):
        if config.mode == "curriculum" and step == config.synthetic_steps:
            for i in trainer.runs:
                if runs[i].curriculum:
                    stoppers[i].reset()  # D_train from here: a new reward curve
        stats = trainer.step([schedules[i](step) for i in trainer.runs])
        done = []
        for i, s in zip(list(trainer.runs), stats):
            runs[i].rewards.append(s["reward"])
            runs[i].steps = step + 1
            stop = stoppers[i].update(s["reward"]) and config.early_stop
            if i in trainer.failed or stop or step + 1 == config.max_steps:
                done.append(i)
            if on_step is not None and i not in trainer.failed:
                on_step(runs[i], step + 1, lambda i=i: trainer.weights(i))
        for i in done:
            if i in trainer.failed:
                runs[i].failed = trainer.failed[i]
            else:
                runs[i].weights = trainer.weights(i)
        if done:
            trainer.drop(done)
        bar.update()
        if not trainer.runs:
            break
    bar.close()
