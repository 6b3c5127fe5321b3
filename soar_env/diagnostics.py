"""Diagnostics of what a teacher proposes: diversity, well-formedness, domain profile.

The paper's findings make these the first things to look at: intrinsic-reward teachers
collapse in diversity, and well-posed questions matter more than correct answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from soar_env.problems import Problem


def distinct_fraction(questions: Sequence[str]) -> float:
    """Distinct questions / questions (1.0: no repeats; 0.0 for none)."""
    return len(set(questions)) / len(questions) if questions else 0.0


def proposal_stats(domain: Any, problems: Sequence[Problem], samples: int | None = None) -> dict[str, float]:
    """Per-round diagnostics of a teacher's valid proposals.

    Args:
        domain: the env's domain; its ``is_correct`` (answer checks) and ``profile``
            (domain histograms, e.g. chain lengths and skills) are used when it has them.
        problems: the valid problems the teacher proposed in a round.
        samples: teacher samples drawn to get them (malformed included), for the
            well-formedness rate; None leaves the rate out.
    """
    questions = [p.question for p in problems]
    stats = {"proposals": float(len(problems)), "distinct_fraction": distinct_fraction(questions)}
    if samples:
        stats["well_formed"] = len(problems) / samples
    if problems and hasattr(domain, "is_correct"):
        stats["answers_correct"] = sum(domain.is_correct(p.question, p.answer) for p in problems) / len(
            problems
        )
    if hasattr(domain, "profile"):
        stats.update(domain.profile(questions))
    return stats
