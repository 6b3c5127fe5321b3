"""A parametric action wrapper: generator parameters in, a dataset out (for SB3 teachers).

stable-baselines3 accepts Box/Discrete/MultiDiscrete/MultiBinary spaces, not a tuple of
texts. This wrapper lets any such agent act as a teacher of a domain with a generator:
- **action** ``MultiDiscrete([max_len, 7])``: chain length - 1 and a non-empty skill set
  (index into ``SKILL_SETS``); the dataset is ``n`` fresh problems of that length and those
  skills from the domain's generator, seeded from the wrapper's generator.
- **observation** the env's numeric ``stats`` (``Box(-1, 1, (8,))``); the teacher prompt
  carries nothing an SB3 policy can use.
Rewards, truncation and info are the env's. ``info["action_params"]`` names the choice.
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def skill_subsets(skills: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The non-empty subsets of a generator's skills, smallest first."""
    return tuple(combo for r in range(1, len(skills) + 1) for combo in itertools.combinations(skills, r))


SKILL_SETS: tuple[tuple[str, ...], ...] = skill_subsets(("+", "-", "*"))
"""The 7 non-empty subsets of the chain domain's (on-target) skills: the wrapper's second action."""


class ParametricTeacherWrapper(gym.Wrapper):
    """``SoarEnv`` with a MultiDiscrete action (length, skill set) and a Box observation.

    Args:
        env: a ``SoarEnv`` (or a wrapper of one) whose domain declares a generator
            (``soar_env.domains.base.Generator``, e.g. the chain domain).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        domain = env.unwrapped.domain
        if domain.generator is None:
            raise ValueError(
                "ParametricTeacherWrapper expects a domain with a generator (problems(n, lengths, seed, "
                f"skills) and max_len), actual {type(domain).__name__} without one"
            )
        self.generator = domain.generator
        self.skill_sets = skill_subsets(tuple(self.generator.skills))
        self.action_space = spaces.MultiDiscrete([self.generator.max_len, len(self.skill_sets)])
        self.observation_space = env.observation_space["stats"]
        self._rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        return obs["stats"], info

    def dataset(self, action) -> tuple[list, dict[str, Any]]:
        """The dataset an action stands for, and its parameters."""
        action = np.asarray(action).reshape(-1)
        if action.shape != (2,) or not self.action_space.contains(action.astype(np.int64)):
            raise ValueError(f"Expects an action in {self.action_space}, actual {action.tolist()}")
        length, skills = int(action[0]) + 1, self.skill_sets[int(action[1])]
        seed = int(self._rng.integers(2**31 - 1))
        problems = self.generator.problems(self.env.unwrapped.config.dataset_size, [length], seed, skills)
        return problems, {"length": length, "skills": "".join(skills)}

    def step(self, action):
        problems, params = self.dataset(action)
        obs, reward, terminated, truncated, info = self.env.step(problems)
        info["action_params"] = params
        return obs["stats"], reward, terminated, truncated, info
