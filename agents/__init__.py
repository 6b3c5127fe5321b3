"""Teacher agents for soar-env, installed as ``soar_agents``.

Agents import ``soar_env``; ``soar_env`` never imports agents. Every teacher implements
``Teacher`` (propose datasets from an observation, learn from a round's rewards) and
``train_teacher`` runs any of them on any registered env:

    from soar_agents import make_teacher, train_teacher
    history = train_teacher(make_teacher("soar"), "SOAR-Tiny-v0", rounds=20, log_dir="runs/soar")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app.loop import make_teacher_env, train_teacher
    from .teachers.protocol import Teacher


def __getattr__(name: str) -> Any:
    """The loop and the protocol load on first use: ``soar-env --help`` imports no torch."""
    if name in ("train_teacher", "make_teacher_env"):
        from .app import loop

        return getattr(loop, name)
    if name == "Teacher":
        from .teachers.protocol import Teacher

        return Teacher
    raise AttributeError(f"module 'soar_agents' has no attribute {name!r}")

TEACHERS = (
    "soar",
    "learnability",
    "rzero",
    "azr",
    "sqlm",
    "spice",
    "base",
    "random",
    "hard-only",
    "curriculum",
    "oracle",
    "bandit",
    "sb3-ppo",
    "plr",
    "learning-progress",
    "prompted",
)
"""Names ``make_teacher`` knows."""


def make_teacher(name: str, **kwargs: Any) -> Teacher:
    """A teacher by name (see ``TEACHERS``); ``kwargs`` go to its constructor."""
    if name == "soar":
        from .teachers.soar_teacher import SoarTeacher

        return SoarTeacher(**kwargs)
    if name == "base":
        from .teachers.soar_teacher import BaseTeacher

        return BaseTeacher(**kwargs)
    if name in ("learnability", "rzero", "azr", "sqlm", "spice"):
        from .teachers.intrinsic_teacher import IntrinsicTeacher

        return IntrinsicTeacher(name, **kwargs)
    if name == "random":
        from .teachers.random_teacher import RandomTeacher

        return RandomTeacher(**kwargs)
    if name == "hard-only":
        from .teachers.hard_only import HardOnlyTeacher

        return HardOnlyTeacher(**kwargs)
    if name == "curriculum":
        from .teachers.curriculum_teacher import CurriculumTeacher

        return CurriculumTeacher(**kwargs)
    if name == "oracle":
        from .teachers.oracle_teacher import OracleTeacher

        return OracleTeacher(**kwargs)
    if name == "bandit":
        from .teachers.bandit_teacher import BanditTeacher

        return BanditTeacher(**kwargs)
    if name in ("plr", "learning-progress"):
        from .teachers.syllabus_teacher import SyllabusTeacher

        return SyllabusTeacher(name, **kwargs)
    if name == "prompted":
        from .teachers.prompted_teacher import PromptedTeacher

        return PromptedTeacher(**kwargs)
    if name == "sb3-ppo":
        from .teachers.sb3_teacher import Sb3Teacher

        return Sb3Teacher(**kwargs)
    raise ValueError(f"Expects a teacher name in {TEACHERS}, actual {name!r}")


__all__ = ["TEACHERS", "Teacher", "make_teacher", "make_teacher_env", "train_teacher"]
