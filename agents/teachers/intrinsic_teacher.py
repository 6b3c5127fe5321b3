"""Intrinsic-reward teachers: the SOAR learner paid by a self-play reward instead.

The same policy-gradient teacher as ``soar_teacher``; only the env's reward changes. The
env scores each valid question by the baseline student's success rate over a few samples
against the teacher's answer, without training the student:
- ``learnability`` (the paper's Intrinsic-T): ``1 - s`` for ``0 < s``, else 0;
- ``rzero`` (R-Zero), ``azr`` (Absolute Zero), ``sqlm`` (SQLM), ``spice`` (SPICE).
See ``soar_env.rewards`` for the formulas.
"""

from __future__ import annotations

from typing import Any

from soar_env.rewards import INTRINSIC

from .soar_teacher import SoarTeacher, SoarTeacherConfig


class IntrinsicTeacher(SoarTeacher):
    """The SOAR teacher on the env's intrinsic reward ``reward_mode``.

    Args:
        reward_mode: one of ``soar_env.rewards.INTRINSIC``.
        config: the teacher's hyperparameters (as for ``SoarTeacher``).
        measure_grounded: also measure the grounded reward of every dataset (in ``info``;
            it costs the student training the intrinsic reward avoids).
    """

    def __init__(
        self,
        reward_mode: str = "learnability",
        config: SoarTeacherConfig | None = None,
        measure_grounded: bool = False,
        settings: dict[str, Any] | None = None,
    ):
        if reward_mode not in INTRINSIC:
            raise ValueError(f"reward_mode expects one of {tuple(INTRINSIC)}, actual {reward_mode!r}")
        super().__init__(config, settings)
        self.name = reward_mode
        self.env_overrides: dict[str, Any] = {
            "reward_mode": reward_mode,
            "measure_grounded": measure_grounded,
        }
