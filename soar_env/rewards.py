"""Teacher rewards from measured student success rates (pure functions).

Grounded: the change in the student's accuracy on hard reward questions after training on
the teacher's dataset (computed by the environment). Intrinsic: functions of the student's
success rate ``p`` on each proposed question, from ``s`` samples graded against the
teacher's answer, averaged over the dataset. Names follow the papers they come from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

SPICE_WIDTH = 0.05
"""Standard deviation of SPICE's Gaussian over the variance p(1-p) (peak at 0.25).

SPICE does not fix one width for every setting; 0.05 gives p = 0.5 reward 1, p = 0.25
(variance 0.1875) reward 0.46 and p = 0.1 (variance 0.09) reward 0.003.
"""


def learnability(p: float, successes: int, samples: int) -> float:
    """The paper's Intrinsic-T: 0 if never solved, else 1 - p."""
    return 0.0 if successes == 0 else 1.0 - p


def rzero(p: float, successes: int, samples: int) -> float:
    """R-Zero's uncertainty reward max(0, 1 - 2|p - 1/2|) (without its repetition penalty)."""
    return max(0.0, 1.0 - 2.0 * abs(p - 0.5))


def azr(p: float, successes: int, samples: int) -> float:
    """Absolute Zero's proposer reward: 1 - p, and 0 when always or never solved."""
    return 0.0 if successes in (0, samples) else 1.0 - p


def sqlm(p: float, successes: int, samples: int) -> float:
    """SQLM: 1 when some but not all samples succeed."""
    return 1.0 if 0 < successes < samples else 0.0


def spice(p: float, successes: int, samples: int) -> float:
    """SPICE: a Gaussian in the variance p(1-p), peaking at 0.25 (width ``SPICE_WIDTH``)."""
    return math.exp(-((p * (1.0 - p) - 0.25) ** 2) / (2 * SPICE_WIDTH**2))


INTRINSIC: dict[str, Callable[[float, int, int], float]] = {
    "learnability": learnability,
    "rzero": rzero,
    "azr": azr,
    "sqlm": sqlm,
    "spice": spice,
}
REWARD_MODES = ("grounded", *INTRINSIC)


def intrinsic_reward(mode: str, successes: Sequence[int], samples: int) -> float:
    """Mean intrinsic reward of a dataset from per-question success counts."""
    if mode not in INTRINSIC:
        raise ValueError(f"Expects an intrinsic mode in {tuple(INTRINSIC)}, actual {mode!r}")
    if not successes:
        raise ValueError("Expects at least one question, actual none")
    fn = INTRINSIC[mode]
    return sum(fn(c / samples, c, samples) for c in successes) / len(successes)
