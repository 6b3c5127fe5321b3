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


def learnability_expected(p: float, samples: int = 8) -> float:
    """Expected ``learnability`` (0 if none of ``samples`` succeed, else 1 - p_hat) of a
    question the student solves with probability p: (1 - p) - (1 - p)^samples."""
    return (1.0 - p) - (1.0 - p) ** samples


def rzero(p: float, successes: int, samples: int) -> float:
    """R-Zero's uncertainty reward max(0, 1 - 2|p - 1/2|), before its repetition penalty.

    ``intrinsic_reward('rzero', ..., questions=...)`` subtracts the penalty
    (``repetition_penalties``), as R-Zero's challenger reward does.
    """
    return max(0.0, 1.0 - 2.0 * abs(p - 0.5))


def azr(p: float, successes: int, samples: int) -> float:
    """Absolute Zero's proposer reward: 1 - p, and 0 when always or never solved.

    This is the same function as ``learnability`` (the paper's Intrinsic-T): 1 - p is
    already 0 when always solved. ``azr`` is kept as a documented alias so that runs can be
    named after the source they follow; both give the same rewards for every success count.
    """
    return learnability(p, successes, samples)


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


REPETITION_THRESHOLD = 0.5
"""R-Zero clusters questions whose BLEU distance ``1 - BLEU`` is below this (its tau_BLEU)."""


def repetition_penalties(questions: Sequence[str], threshold: float = REPETITION_THRESHOLD,
                         weight: float = 1.0) -> list[float]:
    """R-Zero's repetition penalty: ``weight * |C(x_i)| / B`` per question of a batch.

    Questions are clustered agglomeratively (average linkage) on the distance
    ``1 - BLEU(x_i, x_j)`` (character BLEU, symmetrised, in [0, 1]) cut at ``threshold``;
    ``C(x_i)`` is the cluster of ``x_i`` and ``B`` the batch size. A batch of distinct
    questions pays ``1 / B`` each; a batch of copies pays ``weight`` each.
    """
    from sacrebleu.metrics import BLEU
    from scipy.cluster.hierarchy import fcluster, linkage

    b = len(questions)
    if b < 2:
        return [weight / max(b, 1)] * b
    bleu = BLEU(tokenize="char", effective_order=True)
    distance = []  # condensed upper triangle, the layout scipy's linkage takes
    for i in range(b):
        for j in range(i + 1, b):
            if questions[i] == questions[j]:
                distance.append(0.0)
                continue
            score = (bleu.sentence_score(questions[i], [questions[j]]).score
                     + bleu.sentence_score(questions[j], [questions[i]]).score) / 200.0
            distance.append(1.0 - score)
    labels = fcluster(linkage(distance, method="average"), t=threshold, criterion="distance")
    sizes = {label: int((labels == label).sum()) for label in set(labels)}
    return [weight * sizes[label] / b for label in labels]


def intrinsic_reward(mode: str, successes: Sequence[int], samples: int,
                     questions: Sequence[str] | None = None) -> float:
    """Mean intrinsic reward of a dataset from per-question success counts.

    For 'rzero', ``questions`` (the dataset's question texts) turn on R-Zero's repetition
    penalty: each question's reward is ``max(0, uncertainty - penalty)``.
    """
    if mode not in INTRINSIC:
        raise ValueError(f"Expects an intrinsic mode in {tuple(INTRINSIC)}, actual {mode!r}")
    if not successes:
        raise ValueError("Expects at least one question, actual none")
    fn = INTRINSIC[mode]
    values = [fn(c / samples, c, samples) for c in successes]
    if mode == "rzero" and questions is not None:
        if len(questions) != len(successes):
            raise ValueError(f"Expects one question per success count, actual {len(questions)} "
                             f"questions for {len(successes)} counts")
        values = [max(0.0, v - pen) for v, pen in zip(values, repetition_penalties(questions))]
    return sum(values) / len(values)
