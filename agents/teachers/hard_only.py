"""Hard-only: no teacher. Every dataset is drawn from the env's own D_train hard problems.

The paper's Hard-Only baseline trains the student on D_train alone; as a teacher it
proposes ``n`` hard training problems per dataset (without replacement within a dataset).
On a fail@k hard set this gives RL almost no signal: the reference that stepping stones
must beat. Evaluation (fresh student on D_train only) uses the same idea.
"""

from __future__ import annotations

import random
from typing import Any

from soar_env.problems import Problem

from .protocol import Teacher


class HardOnlyTeacher(Teacher):
    name = "hard-only"
    learns = False

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        self.pool = list(self.context.hard_train)
        self.rng = random.Random(seed)

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        n = self.dataset_size
        out = []
        for _ in range(count):
            if n <= len(self.pool):
                out.append(self.rng.sample(self.pool, n))
            else:  # a small hard set: all of it, then repeats
                out.append([self.pool[i % len(self.pool)] for i in range(n)])
        return out
