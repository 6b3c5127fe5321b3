"""A cheap non-LLM teacher: a non-stationary bandit over the generator's parameters.

In the spirit of Teacher-Student Curriculum Learning (Matiisen et al., 2017): each arm is
a setting of the domain's generator (a chain-length bucket x a skill set); an arm's value
is an exponential moving average of the rewards it earned, so it tracks a student that
changes (after promotions); arms are picked epsilon-greedily, one per dataset of a round.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from soar_env.problems import Problem

from .protocol import Teacher

LENGTH_BUCKETS = ((1, 3), (4, 6), (7, 12), (13, 20))
ARM_SKILL_SETS = (("+", "-", "*"), ("+",), ("-",), ("*",))
"""The bandit's skill choices: all skills, or one (not the parametric wrapper's 7 subsets)."""


class BanditTeacher(Teacher):
    """Epsilon-greedy over (length bucket, skill set) arms with EMA values.

    Args:
        epsilon: probability of a uniformly random arm.
        step_size: EMA weight of a new reward (constant: non-stationary).
    """

    name = "bandit"

    def __init__(self, epsilon: float = 0.2, step_size: float = 0.3):
        if not 0 <= epsilon <= 1 or not 0 < step_size <= 1:
            raise ValueError(
                f"Expects 0 <= epsilon <= 1 and 0 < step_size <= 1, actual {epsilon}, {step_size}"
            )
        self.epsilon, self.step_size = epsilon, step_size
        self.arms = list(itertools.product(range(len(LENGTH_BUCKETS)), range(len(ARM_SKILL_SETS))))

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        if self.domain.generator is None:
            raise ValueError(
                f"The bandit teacher expects a domain with a generator, actual {type(self.domain).__name__}"
            )
        self.generator = self.domain.generator
        self.rng = random.Random(seed)
        self.values = [0.0] * len(self.arms)
        self.pulls = [0] * len(self.arms)
        self.chosen: list[int] = []  # the arms of the last proposal, one per dataset

    def _pick(self) -> int:
        untried = [i for i, n in enumerate(self.pulls) if n == 0]
        if untried:
            return self.rng.choice(untried)
        if self.rng.random() < self.epsilon:
            return self.rng.randrange(len(self.arms))
        best = max(self.values)
        return self.rng.choice([i for i, v in enumerate(self.values) if v == best])

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        self.chosen = [self._pick() for _ in range(count)]
        out = []
        for arm in self.chosen:
            (lo, hi), skills = LENGTH_BUCKETS[self.arms[arm][0]], ARM_SKILL_SETS[self.arms[arm][1]]
            out.append(
                self.generator.problems(
                    self.dataset_size,
                    range(lo, min(hi, self.generator.max_len) + 1),
                    seed=self.rng.randrange(2**31),
                    skills=skills,
                )
            )
        return out

    def learn(self, rewards: list[float], infos: list[dict]) -> dict[str, float]:
        for arm, reward in zip(self.chosen, rewards):
            self.pulls[arm] += 1
            self.values[arm] += self.step_size * (reward - self.values[arm])
        best = max(range(len(self.arms)), key=lambda i: self.values[i])
        (lo, _), skills = LENGTH_BUCKETS[self.arms[best][0]], ARM_SKILL_SETS[self.arms[best][1]]
        return {
            "best_arm": float(best),
            "best_arm_min_length": float(lo),
            "best_arm_skills": float(len(skills)),
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "values": list(self.values), "pulls": list(self.pulls)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.values, self.pulls = list(state["values"]), list(state["pulls"])
