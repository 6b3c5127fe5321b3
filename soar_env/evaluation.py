"""The paper's evaluation protocol: how much does a curriculum help a fresh student?

Given a curriculum (synthetic questions, possibly none), train a fresh base student with
RLOO on it plus D_train, then measure unbiased pass@k on D_test from ``samples`` samples
per problem, over several student seeds:
- ``mode='mixed'``: curriculum and D_train shuffled together (the paper's HARP setting);
- ``mode='curriculum'``: ``synthetic_steps`` steps on the curriculum, then D_train (MATH);
- an empty curriculum is Hard-Only (D_train alone).
Training stops at ``max_steps`` or, when ``early_stop`` is on, when the smoothed
training-reward slope falls below ``stop_fraction`` (15%) of its maximum.

``evaluate_curricula`` runs several curricula at once (every caller goes through it).
Named variants: PQ (the promoted bank), Grounded-T / Intrinsic-T /
Base-T (128 questions sampled from a teacher), Hard-Only; PS (the best promoted student,
evaluated directly) is ``evaluate_student`` on its weights.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from soar_env.config import domain_preset
from soar_env.problems import Problem
from soar_env.rl import RLOOConfig
from soar_env.stopping import SlopeStopper

KS = (1, 4, 8, 16, 32)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct (Chen et al., 2021).

    ``1 - C(n - c, k) / C(n, k)``, computed as a stable product.
    """
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"Expects 0 <= c <= n and k >= 1, actual n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"Expects k <= n samples, actual k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass
class EvalConfig:
    """The evaluation protocol's settings (defaults: the paper's)."""

    mode: str = "curriculum"
    """'curriculum' (synthetic first, then D_train; paper: MATH) or 'mixed' (paper: HARP)."""
    synthetic_steps: int = 64
    """'curriculum' mode: steps on the curriculum before D_train (paper: 64)."""
    max_steps: int = 1500
    """Training budget (paper: up to 1500 steps)."""
    early_stop: bool = True
    """Stop when the smoothed training-reward slope falls below ``stop_fraction`` of its max."""
    stop_fraction: float = 0.15
    """Paper: 15%."""
    smoothing: int = 100
    """Window (steps) of the training-reward moving average and of its slope (see
    ``SlopeStopper``): 100 never stops early on a steady rise with per-step noise 0.02."""
    min_steps: int = 200
    """No early stop before this many steps (after the curriculum -> D_train switch, counted
    from the switch)."""
    samples: int = 32
    """Samples per D_test problem for pass@k (paper: 32)."""
    measure: str = "sampled"
    """'sampled': the unbiased estimator from ``samples`` samples (the paper's). 'exact'
    (exact-match domains): ``1 - (1 - p)^k`` with ``p = exp log p(answer)``, the quantity
    the estimator estimates, without its noise; on SOAR-Tiny-v0 pass@1 is ~1e-6, far below
    what 32 samples can see."""
    ks: tuple[int, ...] = KS
    """k values reported (paper: 1, 4, 8, 16, 32)."""
    teacher_questions: int = 128
    """Questions sampled from a teacher for Grounded-T / Intrinsic-T / Base-T (paper: 128)."""
    rl: RLOOConfig | None = None
    """The student's RLOO settings; None = the env's inner-loop settings."""

    def __post_init__(self) -> None:
        if self.mode not in ("curriculum", "mixed"):
            raise ValueError(f"mode expects 'curriculum' or 'mixed', actual {self.mode!r}")
        if max(self.ks) > self.samples:
            raise ValueError(f"ks expects values <= samples ({self.samples}), actual {self.ks}")
        if self.measure not in ("sampled", "exact"):
            raise ValueError(f"measure expects 'sampled' or 'exact', actual {self.measure!r}")
        if self.max_steps < 1 or self.smoothing < 1:
            raise ValueError("max_steps and smoothing expect >= 1")

    @classmethod
    def tiny(cls, **overrides: Any) -> EvalConfig:
        """SOAR-Tiny: steps of 32 questions x 8 samples, mixed, exact pass@k, up to 300 steps
        with the stopping rule.

        300 steps: ``benchmarks/eval_horizon.py`` trained fresh students for 500 steps on
        fixed curricula (2 seeds, SOAR-Tiny-v0; ``docs/results/eval_horizon.json``). At 60
        steps they rank by how fast they start (short chains first); good stones lead in
        both seeds from 100 to 240 steps only (in seed 0 the uniform curriculum leads from
        260); by 500 the order changes with the seed. The rule fired within 500 steps for no
        curriculum that learns (the curves keep rising slowly), so the budget, not the rule,
        ends most evaluations (docs/results.md).
        """
        base = cls(
            mode="mixed",
            measure="exact",
            max_steps=300,
            early_stop=True,
            rl=RLOOConfig(
                questions_per_step=32,
                samples_per_question=8,
                learning_rate=1e-4,
                kl_coef=0.0,
                max_new_tokens=40,
            ),
        )
        return replace(base, **overrides)

    @classmethod
    def for_env(cls, env: Any, **overrides: Any) -> EvalConfig:
        """The env's protocol: the small-student one or the paper's, as its domain's preset
        declares (``Preset.small_students``), in the config's ``eval_mode`` (HARP: mixed)."""
        base = cls.tiny() if domain_preset(env.domain).small_students else cls()
        return replace(base, mode=env.config.eval_mode, **overrides)


@dataclass
class EvalResult:
    """pass@k of one curriculum over student seeds."""

    name: str
    per_seed: list[dict[int, float]]
    steps: list[int] = field(default_factory=list)
    train_reward: list[list[float]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per k: mean, sd and the 95% interval half-width (t distribution) over seeds."""
        return {f"pass@{k}": interval([s[k] for s in self.per_seed]) for k in self.per_seed[0]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "per_seed": [{str(k): v for k, v in s.items()} for s in self.per_seed],
            "steps": self.steps,
            "summary": self.summary(),
        }


def interval(values: list[float]) -> dict[str, float]:
    """Mean, sd and the 95% interval half-width (t distribution) of per-seed values."""
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "ci95": _t95(len(values)) * sd / math.sqrt(len(values))}


def _t95(n: int) -> float:
    """Two-sided 95% t quantile for n samples (n - 1 degrees of freedom)."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def evaluate_student(
    env: Any, seed: int, config: EvalConfig, problems: Sequence[Problem] | None = None
) -> dict[int, float]:
    """pass@k of the env's *current* student weights on D_test (or ``problems``)."""
    import torch

    problems = list(problems if problems is not None else env.hard_set.test)
    lab = env.lab
    if config.measure == "exact":
        prompts = [lab.student_prompt(p.question) for p in problems]
        p = lab.student.exact_pass_at_1(prompts, [p.answer for p in problems]).double()
        return {k: float((1.0 - (1.0 - p) ** k).mean()) for k in config.ks}
    max_new = env.domain.max_answer_tokens or (config.rl or env.config.rl).max_new_tokens
    generator = torch.Generator(device=lab.student.device.type).manual_seed(seed)
    totals = {k: 0.0 for k in config.ks}
    batch = max(1, 2048 // config.samples)
    for i in range(0, len(problems), batch):
        for c in lab.success_counts(problems[i : i + batch], config.samples, max_new, generator):
            for k in config.ks:
                totals[k] += pass_at_k(config.samples, c, k)
    return {k: v / len(problems) for k, v in totals.items()}


def train_fresh_student(
    env: Any, curriculum: Sequence[Problem], seed: int, config: EvalConfig,
    on_step: Callable[[int], None] | None = None,
) -> tuple[int, list[float]]:
    """Train the env's student from the base weights on ``curriculum`` + D_train, in place.

    ``on_step(steps_done)`` is called after every step (e.g. to measure a learning curve).
    Returns the steps taken and the training reward per step.
    """
    rl = config.rl or env.config.rl
    lab = env.lab
    lab.load(lab.base)
    real = list(env.hard_set.train)
    trainer = lab.trainer(rl, seed)
    lab.set_reference(lab.base)
    synthetic = list(curriculum)
    mixed = synthetic + real
    random.Random(seed).shuffle(mixed)
    rewards: list[float] = []
    stopper = SlopeStopper(config.smoothing, config.stop_fraction, config.min_steps)
    for step in range(config.max_steps):
        if config.mode == "curriculum" and synthetic:
            if step == config.synthetic_steps:
                stopper.reset()  # D_train from here: a new reward curve
            data = synthetic if step < config.synthetic_steps else real
        else:
            data = mixed
        rewards.append(trainer.step(data)["reward"])
        if on_step is not None:
            on_step(step + 1)
        if stopper.update(rewards[-1]) and config.early_stop:
            return step + 1, rewards
    return config.max_steps, rewards


def evaluate_curriculum(
    env: Any,
    curriculum: Sequence[Problem],
    seeds: Sequence[int],
    config: EvalConfig | None = None,
    name: str = "curriculum",
    progress: bool = False,
) -> EvalResult:
    """The protocol for one curriculum: train a fresh student per seed, pass@k on D_test.

    The env's student is restored to the env's current baseline afterwards.
    """
    from tqdm.auto import tqdm

    config = config or EvalConfig.for_env(env)
    if getattr(env, "executor", None) == "lockstep":  # the seeds' students train side by side
        return _evaluate_in_lockstep(env, {name: curriculum}, seeds, config, progress)[name]
    keep = env.lab.snapshot()
    result = EvalResult(name, [])
    try:
        for seed in seeds:
            bar = tqdm(total=config.max_steps, desc=f"eval {name}, student seed {seed}", unit="step",
                       disable=not progress, leave=False)
            steps, rewards = train_fresh_student(env, curriculum, seed, config,
                                                 on_step=lambda _, bar=bar: bar.update())
            bar.close()
            result.per_seed.append(evaluate_student(env, seed, config))
            result.steps.append(steps)
            result.train_reward.append(rewards)
    finally:
        env.lab.load(keep)
    return result


def evaluate_curricula(
    env: Any,
    curricula: dict[str, list[Problem]],
    seeds: Sequence[int],
    config: EvalConfig | None = None,
    progress: bool = False,
) -> dict[str, EvalResult]:
    """The protocol for several curricula at once: a fresh student per curriculum and seed.

    Every caller that trains fresh students goes through here (the bench, ``soar-env eval``
    and ``soar-env validate``), so that one trainer can run them together. Each run starts
    as ``evaluate_curriculum`` on that curriculum alone, within float rounding (a stacked
    product sums in an order set by the stack's shape); over hundreds of steps sampling
    amplifies that rounding, so a run's exact value depends on which runs share its stack
    (a fixed call is deterministic; docs/results.md, the v2 horizon study). The env's
    student is restored to its current weights afterwards.
    """
    config = config or EvalConfig.for_env(env)
    if getattr(env, "executor", None) == "lockstep":  # every (curriculum, seed) student side by side
        return _evaluate_in_lockstep(env, dict(curricula), seeds, config, progress)
    return {name: evaluate_curriculum(env, curriculum, seeds, config, name, progress)
            for name, curriculum in curricula.items()}


def base_pass_at_k(env: Any, seeds: Sequence[int], config: EvalConfig | None = None) -> EvalResult:
    """pass@k of the untrained base student (the paper's 'base' row)."""
    config = config or EvalConfig.for_env(env)
    keep = env.lab.snapshot()
    try:
        env.lab.load(env.lab.base)
        return EvalResult("base", [evaluate_student(env, seed, config) for seed in seeds])
    finally:
        env.lab.load(keep)


def _evaluate_in_lockstep(
    env: Any,
    curricula: dict[str, Sequence[Problem]],
    seeds: Sequence[int],
    config: Any,
    progress: bool = False,
) -> dict[str, Any]:
    """``evaluate_curriculum`` for several curricula at once: every (curriculum, seed) run
    trains in the same stacks, then each is measured on D_test. Returns name -> EvalResult."""
    from soar_env.fresh_students import FreshRun, train_fresh_students
    from soar_env.rl import NonFiniteUpdate

    runs = {
        (name, seed): FreshRun(list(curriculum), seed)
        for name, curriculum in curricula.items()
        for seed in seeds
    }
    train_fresh_students(env, list(runs.values()), config, progress)
    keep = env.lab.snapshot()
    results = {name: EvalResult(name, []) for name in curricula}
    try:
        for (name, seed), run in runs.items():
            if run.failed:
                raise NonFiniteUpdate(f"fresh student {name!r}, seed {seed}: {run.failed}")
            env.lab.load(run.weights)
            results[name].per_seed.append(evaluate_student(env, seed, config))
            results[name].steps.append(run.steps)
            results[name].train_reward.append(run.rewards)
    finally:
        env.lab.load(keep)
    return results
