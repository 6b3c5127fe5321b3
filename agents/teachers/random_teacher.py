"""A random procedural teacher: uniform draws from the domain's own problem generator.

For domains with a generator (the chain domain's ``problems(n, lengths, seed, skills)``):
every dataset is ``n`` problems with lengths drawn uniformly from 1..max_len and all skills,
answered correctly. A reference point with no learning and full diversity.
"""

from __future__ import annotations

import random
from typing import Any

from soar_env.problems import Problem

from .protocol import Teacher


class RandomTeacher(Teacher):
    name = "random"
    learns = False

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        if self.domain.generator is None:
            raise ValueError(
                f"The random teacher expects a domain with a problem generator, actual "
                f"{type(self.domain).__name__} (use 'base' or 'soar' on math envs)"
            )
        self.rng = random.Random(seed)

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        generator = self.domain.generator
        lengths = range(1, generator.max_len + 1)
        return [
            generator.problems(self.dataset_size, lengths, seed=self.rng.randrange(2**31))
            for _ in range(count)
        ]
