"""``TeacherContext``: what an environment tells a teacher, and nothing more.

A teacher gets this from ``env.unwrapped.teacher_context()`` at setup instead of reaching
into the env: the domain (prompts, parsing, capabilities), the sizes of a round, and a way
to start its own model from the student's base weights (the paper's teacher and student
start from the same model). The env's live student, baseline and promotion state stay
private to the env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soar_env.problems import Problem


@dataclass(frozen=True)
class TeacherContext:
    """The env as a teacher may see it.

    Attributes:
        domain: the env's ``Domain`` (``soar_env.domains.base``).
        teacher_prompt: what an LLM teacher is prompted with (the observation's prompt).
        dataset_size: problems per dataset (an action), the paper's ``n``.
        group_size: datasets per round (the paper's ``g``).
        rounds: rounds in an episode (a learning-rate schedule's horizon).
        hard_train: D_train, the hard training questions. Only the Hard-Only baseline reads
            it; a teacher that does is no longer a teacher of unseen problems.
    """

    domain: Any
    teacher_prompt: str
    dataset_size: int
    group_size: int
    rounds: int
    hard_train: tuple[Problem, ...] = field(repr=False)
    _student: Any = field(repr=False, compare=False)
    _base_weights: dict = field(repr=False, compare=False)

    def base_model(self) -> Any:
        """A new copy of the student model (an ``HFStudent``) with the base weights: the
        teacher's own, to train as it likes; the env's student is not touched."""
        copied = self._student.copy()
        copied.restore(self._base_weights)
        return copied
