"""A round's inner runs as data: ``InnerJob`` (one run, seeds included) and what running it
gives (``Done``), so that every executor (``soar_env.executors``, ``soar_env.ray_executor``)
runs the same jobs and returns the same results, in job order, wherever they ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soar_env.config import RLOOConfig
from soar_env.lab import InnerRun, StudentLab
from soar_env.problems import Problem
from soar_env.rl import NonFiniteUpdate


@dataclass(frozen=True)
class InnerJob:
    """One inner run, fully specified (seeds included)."""

    problems: tuple[Problem, ...]
    steps: int
    rl: RLOOConfig
    seed: int
    measure_on: tuple[Problem, ...]
    measure: dict[str, Any]
    before: float
    keep_weights: bool


Done = tuple["InnerRun | str", dict[str, int]]
"""A job's inner run (or its divergence message) and what it used (sampled tokens, updates)."""


def run_job(lab: StudentLab, job: InnerJob, progress: Any = None) -> Done:
    """The job's inner run on ``lab`` or the divergence message (the run is then skipped),
    and what it used (the env counts usage per step, wherever the run ran)."""
    with lab.counting() as used:
        try:
            result: InnerRun | str = lab.run_inner(list(job.problems), job.steps, job.rl, job.seed,
                                                   list(job.measure_on), job.measure, job.before,
                                                   job.keep_weights, progress=progress)
        except NonFiniteUpdate as error:
            result = str(error)
    return result, used
