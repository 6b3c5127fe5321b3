"""``StudentLab``: the student's weights, and every experiment run on them.

One object owns the student model, its KL reference, and the base and baseline weights.
The env, the hard-set builder, the evaluation protocol and the stepping-stone experiment
ask it for what they need instead of restoring and training the model themselves:

- ``accuracy(problems, ...)``: the paper's ``Acc`` by a measure (exact, greedy, sampled);
- ``success_counts(problems, k, ...)``: successes in k samples per problem (fail@k filter,
  pass@k, intrinsic rewards);
- ``run_inner(problems, steps, ...)``: one inner RLOO run from the baseline, measured on
  reward questions; the result holds its weights when asked to (promotion candidates);
- ``trainer(rl, seed)``: an ``RLOOTrainer`` on the student, with the reference when the
  config has a KL term (fresh students, stepping stones).

Seeds are always arguments: the caller (the env) draws them, so results never depend on
which process or order runs an experiment. Sampled tokens and updates add up in ``usage``
(since the lab was made); ``with lab.counting() as used:`` gives what one block used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from soar_env.config import RLOOConfig
from soar_env.problems import Problem
from soar_env.rl import NonFiniteUpdate, RLOOTrainer
from soar_env.student.hf import HFStudent

if TYPE_CHECKING:
    from soar_env.hardset import HardSet
    from soar_env.machine import Machine

Weights = dict[str, torch.Tensor]


@dataclass
class InnerRun:
    """One inner run: what the student gained on the reward questions, and its weights."""

    reward: float
    accuracy_after: float
    train_rewards: list[float]
    weights: Weights | None = field(default=None, repr=False)


class StudentLab:
    """The student, its reference, base and baseline weights (see the module docstring).

    Args:
        student: the model (its weights are this lab's to change).
        domain: prompts and grading (``soar_env.domains.base.Domain``).
        kl_reference: keep a frozen copy for a KL term (``rl.kl_coef > 0``).
    """

    def __init__(self, student: HFStudent, domain: Any, kl_reference: bool = False):
        self.student, self.domain = student, domain
        self.reference: HFStudent | None = None
        if kl_reference:
            self.reference = student.copy()
            # Frozen: it never trains, and autocast then casts its weights one layer at a time
            # instead of keeping a bf16 copy of all of them through its forward (6.4 GB at 3B).
            self.reference.model.requires_grad_(False)
        self.base: Weights = student.snapshot()
        self.baseline: Weights = self.base
        self.usage = self.no_usage()

    @classmethod
    def open(cls, name: str, domain: Any, machine: Machine, kl_reference: bool = False) -> StudentLab:
        """A lab on the student ``name`` (folder or hub id), loaded where ``machine`` says
        (device, backend, precision, tokens per forward pass)."""
        from soar_env.student import load_student

        model = load_student(name, machine.local_backend, device=machine.device, precision=machine.precision,
                             max_batch_tokens=machine.max_batch_tokens)
        return cls(model, domain, kl_reference=kl_reference)

    @staticmethod
    def no_usage() -> dict[str, int]:
        """What ``usage`` counts, at zero."""
        return {"sampled_tokens": 0, "student_updates": 0}

    # ---- prompts and grading (the lab is a graded domain for the hard-set builder) --------
    def student_prompt(self, question: str) -> str:
        """The domain's prompt in the student's chat template (when it has one)."""
        return self.student.chat_prompt(self.domain.student_prompt(question))

    def grade_batch(self, completions: list[str], problems: list[Problem]) -> list[float]:
        return self.domain.grade_batch(completions, problems)

    # ---- weights ----------------------------------------------------------------------
    def load(self, weights: Weights) -> None:
        """Put ``weights`` in the student (the lab's weights are never shared tensors)."""
        self.student.restore(weights)

    def load_baseline(self) -> None:
        self.student.restore(self.baseline)

    def set_baseline(self, weights: Weights | None, reference: str = "baseline") -> None:
        """Make ``weights`` (None: the base) the baseline every inner run starts from; the KL
        reference (if any) follows it when ``reference`` is 'baseline', else stays the base."""
        self.baseline = self.base if weights is None else weights
        self.set_reference(self.baseline if reference == "baseline" else self.base)

    def set_reference(self, weights: Weights) -> None:
        if self.reference is not None:
            self.reference.restore(weights)

    def snapshot(self) -> Weights:
        return self.student.snapshot()

    @contextmanager
    def counting(self) -> Iterator[dict[str, int]]:
        """What the block uses of this lab (sampled tokens, updates), in the dict it yields:
        filled when the block ends, also when it raises."""
        before, used = dict(self.usage), {}
        try:
            yield used
        finally:
            used.update({key: self.usage[key] - value for key, value in before.items()})

    # ---- measurements -----------------------------------------------------------------
    def accuracy(self, problems: Sequence[Problem], measure: str, samples: int,
                 max_new_tokens: int, seed: int | None) -> float:
        """The current weights' mean accuracy: ``exact`` (likelihood of the answer; no seed),
        ``greedy`` (one greedy answer) or ``sampled`` (``samples`` at temperature 1)."""
        prompts = [self.student_prompt(p.question) for p in problems]
        if measure == "exact":
            return float(self.student.exact_pass_at_1(prompts, [p.answer for p in problems]).mean())
        samples = 1 if measure == "greedy" else samples
        temperature = 0.0 if measure == "greedy" else 1.0
        generator = torch.Generator(device=self.student.device.type).manual_seed(seed)
        rollout = self.student.sample(prompts, samples, max_new_tokens, temperature, generator)
        self.usage["sampled_tokens"] += rollout.num_tokens
        scores = self.domain.grade_batch(rollout.texts, [p for p in problems for _ in range(samples)])
        return float(np.mean(scores))

    def success_counts(self, problems: Sequence[Problem], k: int, max_new_tokens: int,
                       generator: torch.Generator, temperature: float = 1.0) -> list[int]:
        """Per problem, how many of ``k`` samples the domain grades 1.0 (one sampling call)."""
        rollout = self.student.sample([self.student_prompt(p.question) for p in problems], k,
                                      max_new_tokens, temperature, generator)
        self.usage["sampled_tokens"] += rollout.num_tokens
        scores = self.domain.grade_batch(rollout.texts, [p for p in problems for _ in range(k)])
        return [int(sum(s >= 1.0 for s in scores[i * k : (i + 1) * k])) for i in range(len(problems))]

    def hard_set(self, candidates: Sequence[Problem], k: int, seed: int, max_new_tokens: int) -> HardSet:
        """The base student's fail@k filter over ``candidates`` (``soar_env.hardset``: read from
        its cache when built before); raises when no candidate failed all ``k`` tries."""
        from soar_env.hardset import build_hard_set

        self.load(self.base)
        hard = build_hard_set(self.student, self, candidates, k=k, seed=seed, max_new_tokens=max_new_tokens,
                              progress=True)
        if len(hard.train) < 1:
            raise RuntimeError(f"The hard set is empty: none of {len(candidates)} candidates failed all {k} "
                               "tries. Use more candidates or a larger hard_k.")
        return hard

    # ---- training -----------------------------------------------------------------------
    def trainer(self, rl: RLOOConfig, seed: int) -> RLOOTrainer:
        """An RLOO trainer on the student (the domain's reward; the reference when KL is on)."""
        return RLOOTrainer(self.student, self.domain.reward_batch, self.student_prompt, rl,
                           reference=self.reference if rl.kl_coef > 0 else None, seed=seed)

    def run_inner(self, problems: Sequence[Problem], steps: int, rl: RLOOConfig, seed: int,
                  measure_on: Sequence[Problem], measure: dict[str, Any], before: float,
                  keep_weights: bool, progress: Any = None) -> InnerRun:
        """Train from the baseline for ``steps`` RLOO steps on ``problems``, then measure.

        ``measure`` holds ``accuracy``'s settings (``measure``, ``samples``,
        ``max_new_tokens``, ``seed``); the reward is the accuracy on ``measure_on`` minus
        ``before``. The trained weights stay live in the student; ``keep_weights`` copies
        them into the result. Raises ``NonFiniteUpdate`` when the run diverged (the student
        is then back on the baseline).
        """
        self.load_baseline()
        trainer = self.trainer(rl, seed)
        try:
            stats = [trainer.step(problems) for _ in (progress if progress is not None else range(steps))]
            after = self.accuracy(measure_on, **measure)
            if not np.isfinite(after):
                raise NonFiniteUpdate(f"accuracy after training is {after}")
        except NonFiniteUpdate:
            self.load_baseline()
            raise
        self.usage["sampled_tokens"] += sum(int(s["sampled_tokens"]) for s in stats)
        self.usage["student_updates"] += int(sum(s["updated"] for s in stats))
        return InnerRun(after - before, after, [s["reward"] for s in stats],
                        self.snapshot() if keep_weights else None)
