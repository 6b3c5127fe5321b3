"""A hand-designed curriculum for SOAR-Tiny-v0: the measured best stepping stones.

Every dataset is ``n`` fresh medium chains (lengths 4-6, all skills, correct answers):
the dataset that gave the largest grounded reward in the stepping-stone benchmark. A
reference upper bound for what a teacher can learn to propose on the chain domain.
"""

from __future__ import annotations

import random
from typing import Any

from soar_env.embedded import GOOD_LENGTHS
from soar_env.problems import Problem

from .protocol import Teacher


class CurriculumTeacher(Teacher):
    name = "curriculum"
    learns = False

    def __init__(self, lengths: range = GOOD_LENGTHS):
        self.lengths = lengths

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        if self.domain.generator is None:
            raise ValueError(f"The curriculum teacher expects a domain with a generator (the chain "
                             f"domain), actual {type(self.domain).__name__} without one")
        self.rng = random.Random(seed)

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        return [
            self.domain.generator.problems(self.dataset_size, self.lengths, seed=self.rng.randrange(2**31))
            for _ in range(count)
        ]
