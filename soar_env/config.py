"""Environment configuration: one dataclass, and the presets (named defaults).

Every field has a default and a docstring; construction checks each value's type and range
and names the field when one is wrong (``soar_env.fields``); ``coerce_field(SoarConfig,
'rl.learning_rate', '1e-4')`` reads a ``--set key=value`` string with the same checks.
``paper()`` holds the paper's hyperparameters (Llama-3.2-3B-Instruct on
MATH); ``tiny()`` is the embedded CPU default.

A preset (``PRESETS``, a ``Preset``) is a named set of defaults, and "preset" means nothing
else: an env id starts from one (``gym.make(id, preset=...)``), and a domain names the one
that suits its students (``domain.preset``: 'tiny' or 'paper'), whose explicit fields decide
what the students' size decides outside ``SoarConfig``: where the env's student lives, the
evaluation protocol's and the SOAR teacher's settings, and the scale of the rewards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from soar_env.fields import check_fields, coerce_field, field_names  # noqa: F401 (CLI helpers)
from soar_env.rewards import REWARD_MODES

ACCURACY_MEASURES = ("exact", "greedy", "sampled")


@dataclass
class RLOOConfig:
    """Hyperparameters of one RLOO training run (defaults: the paper's student)."""

    questions_per_step: int = 8
    """Questions per batch (paper: 8)."""
    samples_per_question: int = 32
    """Completions per question; the leave-one-out group (paper: 32)."""
    learning_rate: float = 1e-5
    """AdamW learning rate (paper: 1e-5)."""
    kl_coef: float = 0.001
    """Weight of the per-token KL estimate to the reference (paper: 0.001); 0 disables it."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    temperature: float = 1.0
    """Sampling temperature (paper: 1.0)."""
    max_new_tokens: int = 1024
    """Completion budget per sample (paper: 1024)."""

    BOUNDS: ClassVar[dict[str, tuple]] = {
        "questions_per_step": (">=", 1),
        "samples_per_question": (">=", 2, "the leave-one-out baseline needs a group"),
        "learning_rate": (">", 0), "kl_coef": (">=", 0), "max_grad_norm": (">", 0),
        "weight_decay": (">=", 0), "temperature": (">", 0, "RL sampling"),
        "max_new_tokens": (">=", 1),
    }
    """One-field bounds, checked with the types at construction and by ``fields.coerce_field``."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class SoarConfig:
    """What one SOAR environment does per step and per episode."""

    student: str | None = None
    """Student model folder (or cached hub id); None = the embedded tiny model."""
    domain: str = "chain"
    """Problem domain: a registered name ('chain': embedded; 'math': Math-Verify grading;
    ``soar_env.domains.base.register_domain`` adds more). ``gym.make(id, domain=obj)`` takes a
    Domain object instead; the name then records its ``name``."""
    dataset: str | None = None
    """Math domain: hard-set candidates, a MATH-format file (JSON, JSONL, parquet) or
    'champ' (offline CHAMP). Unused by the chain domain, which generates its candidates."""
    chain_variant: str = "v0"
    """Chain domain: 'v0' (SOAR-Tiny-v0), 'v1' (adds off-target chains; SOAR-Tiny-v1),
    'v2' (keys and traps; SOAR-Tiny-v2), 'v3' (v2's model, one-key hard problems;
    SOAR-Tiny-v3) or 'v4' (v2's model, hard problems on 6 of the 12 keys; SOAR-Tiny-v4).
    Picks the domain and, when student is None, the shipped model (``soar_env.embedded``)."""
    dataset_size: int = 64
    """n: problems in one action (paper: 64)."""
    inner_runs: int = 1
    """r: independent student trainings per dataset (paper: 4)."""
    inner_steps: int = 10
    """K: RLOO steps per inner run (paper: 10)."""
    promotion_extra_steps: int = 5
    """Inner steps added after each promotion (paper: +5)."""
    max_inner_steps: int = 20
    """Cap on inner steps after promotions (paper: 10-20)."""
    reward_questions: int = 64
    """M: reward questions Q_R drawn from D_train once per round (paper: 64)."""
    group_size: int = 4
    """g: datasets (steps) per round, the paper's outer step (paper: 4)."""
    rounds: int = 200
    """T: rounds per episode; the episode is truncated after the last (paper: 200)."""
    tau: float = 0.01
    """Promotion threshold on the moving average of round mean rewards (paper: 0.01)."""
    ma_window: int = 3
    """Rounds in the moving average (paper: 3)."""
    ma_reset_after_promotion: bool = True
    """Restart the moving average after a promotion (the paper is silent)."""
    kl_reference: str = "baseline"
    """Inner-loop KL reference: 'baseline' (current baseline student) or 'base' (the
    initial student). The paper is silent; the baseline is the policy each run starts from."""
    accuracy: str = "greedy"
    """Acc measure on Q_R: 'greedy' (the paper's), 'sampled' (mean pass rate of
    ``accuracy_samples`` samples) or 'exact' (exp log p(correct answer), exact-match domains)."""
    accuracy_samples: int = 8
    """Samples per question for the 'sampled' measure."""
    reward_mode: str = "grounded"
    """'grounded' or an intrinsic mode: learnability, rzero, azr, sqlm, spice."""
    intrinsic_samples: int = 32
    """s: student samples per proposed question for intrinsic rewards (paper: 32)."""
    measure_grounded: bool = False
    """With an intrinsic mode, also run the inner loop and report the grounded reward in
    ``info['grounded_reward']`` (costs the inner training)."""
    floor_reward: float = 0.0
    """Reward of a dataset with no valid problem (nothing to train on: no improvement)."""
    hard_candidates: int = 512
    """Candidates filtered into the hard set (math: the first this many of ``dataset``)."""
    hard_k: int = 128
    """fail@k filter (paper: 128)."""
    hard_seed: int = 0
    """Seed of the hard-set candidates and of the train/test split."""
    eval_mode: str = "curriculum"
    """How the evaluation protocol trains fresh students for this env: 'curriculum'
    (synthetic first, then D_train; the paper's MATH) or 'mixed' (the paper's HARP)."""
    rl: RLOOConfig = field(default_factory=RLOOConfig)
    """The student's inner-loop RLOO settings."""

    INFINITE_OK: ClassVar[tuple[str, ...]] = ("tau",)
    """``tau = inf`` turns promotion off (the baseline stays the base student)."""
    BOUNDS: ClassVar[dict[str, tuple]] = {
        **{name: (">=", 1) for name in (
            "dataset_size", "inner_runs", "inner_steps", "max_inner_steps", "reward_questions",
            "group_size", "rounds", "ma_window", "accuracy_samples", "intrinsic_samples",
            "hard_candidates", "hard_k")},
        "promotion_extra_steps": (">=", 0),
    }
    """One-field bounds, checked with the types at construction and by ``coerce_field``;
    choices and checks between fields are in ``__post_init__``."""

    def __post_init__(self) -> None:
        check_fields(self)  # types, finiteness and BOUNDS, naming the field
        if self.accuracy not in ACCURACY_MEASURES:
            raise ValueError(f"accuracy expects one of {ACCURACY_MEASURES}, actual {self.accuracy!r}")
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode expects one of {REWARD_MODES}, actual {self.reward_mode!r}")
        if self.eval_mode not in ("curriculum", "mixed"):
            raise ValueError(f"eval_mode expects 'curriculum' or 'mixed', actual {self.eval_mode!r}")
        if self.kl_reference not in ("baseline", "base"):
            raise ValueError(f"kl_reference expects 'baseline' or 'base', actual {self.kl_reference!r}")
        if self.max_inner_steps < self.inner_steps:
            raise ValueError(
                f"max_inner_steps expects >= inner_steps ({self.inner_steps}), "
                f"actual {self.max_inner_steps}"
            )
        if not self.domain:
            raise ValueError("domain expects a registered name ('chain', 'math', ...), actual ''")

    def replace(self, **changes) -> SoarConfig:
        """A copy with some fields changed (validated again).

        Dotted keys reach nested configs: ``replace(**{"rl.learning_rate": 1e-5})``.
        """
        nested: dict[str, dict] = {}
        for key in [k for k in changes if "." in k]:
            head, rest = key.split(".", 1)
            nested.setdefault(head, {})[rest] = changes.pop(key)
        for head, sub in nested.items():
            if head != "rl":
                raise ValueError(f"Unknown setting {head}.{next(iter(sub))!r}; nested settings are rl.*")
            changes[head] = replace(changes.get(head, self.rl), **sub)
        return replace(self, **changes)


def paper(**overrides) -> SoarConfig:
    """The paper's setting (Llama-3.2-3B-Instruct on MATH); see docs/math.md."""
    config = SoarConfig(
        student="meta-llama/Llama-3.2-3B-Instruct", domain="math", dataset_size=64,
        hard_candidates=5000,
        inner_runs=4, inner_steps=10, reward_questions=64, group_size=4, rounds=200,
        tau=0.01, ma_window=3, accuracy="greedy", intrinsic_samples=32,
        rl=RLOOConfig(questions_per_step=8, samples_per_question=32, learning_rate=1e-5,
                      kl_coef=0.001, temperature=1.0, max_new_tokens=1024),
    )
    return config.replace(**overrides)


def tiny(**overrides) -> SoarConfig:
    """The embedded CPU default: tiny chain model, exact accuracy measure.

    The exact measure is the default because at 10 inner steps only it separates good
    datasets from bad ones on CPU (docs/embedded-domain.md); tau is on its scale.
    """
    config = SoarConfig(
        student=None, domain="chain", dataset_size=64, inner_runs=1, inner_steps=10,
        reward_questions=64, group_size=4, rounds=50, tau=TINY_TAU, ma_window=3,
        accuracy="exact", intrinsic_samples=8, hard_candidates=256, eval_mode="mixed",
        rl=RLOOConfig(questions_per_step=64, samples_per_question=8, learning_rate=1e-4,
                      kl_coef=0.0, temperature=1.0, max_new_tokens=40),
    )
    return config.replace(**overrides)


TINY_TAU = 4e-6
"""Promotion threshold of the tiny preset (exact pass@1 gain on the hard set), from measured
round-reward noise (``benchmarks/promotion_noise.py``, docs/results.md): over 3 seeds the
untrained teacher's 3-round moving average was 2.9e-6 (sd 0.27e-6, at most 3.4e-6), good
stepping stones' 5.2e-6 (sd 0.36e-6, at least 4.8e-6); 4e-6 sits between them. Until 0.2.0
it was 2e-6, below the untrained teacher's reward, so promotion fired whenever the window
allowed."""


TINY_V1_TAU = 7e-6
"""SOAR-Tiny-v1's promotion threshold: its model and reward scale are its own. Measured like
``TINY_TAU`` (2 seeds): the untrained teacher's moving average 5.4e-6 (sd 0.47e-6, at most
6.0e-6), good stepping stones' 9.0e-6 (sd 0.59e-6, at least 8.4e-6)."""


def tiny_v1(**overrides) -> SoarConfig:
    """SOAR-Tiny-v1: the tiny preset on the chain domain with an off-target family."""
    return tiny(**{"chain_variant": "v1", "tau": TINY_V1_TAU, **overrides})


TINY_V2_TAU = float("inf")
"""SOAR-Tiny-v2's promotion threshold: none yet. Its rewards are on their own scale (the
hard set's base pass@1 is about 1e-8 to 1e-11); the threshold is to be measured like
``TINY_V1_TAU`` before teachers are trained on v2. Until then v2 never promotes."""


def tiny_v2(**overrides) -> SoarConfig:
    """SOAR-Tiny-v2: keys the base student gets wrong, an equally learnable trap family, and
    the paper's curriculum-mode evaluation (docs/embedded-domain.md, docs/evaluation.md)."""
    return tiny(**{"chain_variant": "v2", "tau": TINY_V2_TAU, "eval_mode": "curriculum", **overrides})


def tiny_v3(**overrides) -> SoarConfig:
    """SOAR-Tiny-v3: v2 with hard problems that need one key three times (no promotion
    threshold yet, like v2's)."""
    return tiny(**{"chain_variant": "v3", "tau": TINY_V2_TAU, "eval_mode": "curriculum", **overrides})


TINY_V4_TAU = 1.5e-5
"""SOAR-Tiny-v4's promotion threshold, measured like ``TINY_V1_TAU`` (3 seeds,
docs/results/promotion_noise_v4.json): halfway between the untrained teacher's largest
3-round moving average (3.95e-6) and the useful stones' smallest (2.56e-5)."""


def tiny_v4(**overrides) -> SoarConfig:
    """SOAR-Tiny-v4: v2 with hard problems on 6 of the 12 keys, one key four times."""
    return tiny(**{"chain_variant": "v4", "tau": TINY_V4_TAU, "eval_mode": "curriculum", **overrides})


@dataclass(frozen=True)
class Preset:
    """A named set of defaults (see the module docstring); calling it gives its ``SoarConfig``."""

    config: Callable[..., SoarConfig]
    """The algorithm's defaults (``tiny``, ``paper``, ...)."""
    student_device: str | None
    """Where the env's own student lives unless ``device=`` says: 'cpu' for small students
    (faster there than behind a GPU's launch overheads); None: CUDA when available."""
    small_students: bool
    """The evaluation protocol and the SOAR teacher take their small-model settings
    (``EvalConfig.tiny``, ``SoarTeacherConfig.tiny``) instead of the paper's."""
    reward_scale: float
    """What brings a typical grounded reward near 1 (the TRL bridge multiplies by it):
    1e6 on the chain domain, whose exact pass@1 gains are about 1e-6."""

    def __call__(self, **overrides: Any) -> SoarConfig:
        return self.config(**overrides)


_SMALL = {"student_device": "cpu", "small_students": True, "reward_scale": 1e6}
PRESETS = {
    "tiny": Preset(tiny, **_SMALL),
    "paper": Preset(paper, student_device=None, small_students=False, reward_scale=1.0),
    "tiny_v1": Preset(tiny_v1, **_SMALL),
    "tiny_v2": Preset(tiny_v2, **_SMALL),
    "tiny_v3": Preset(tiny_v3, **_SMALL),
    "tiny_v4": Preset(tiny_v4, **_SMALL),
}


def domain_preset(domain: Any) -> Preset:
    """The preset a domain names (``domain.preset``), or a one-line error."""
    name = getattr(domain, "preset", None)
    if name not in PRESETS:
        raise ValueError(f"The {getattr(domain, 'name', type(domain).__name__)} domain's preset expects one "
                         f"of {tuple(PRESETS)}, actual {name!r}")
    return PRESETS[name]
