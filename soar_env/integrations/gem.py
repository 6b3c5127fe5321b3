"""The soar-env ids in GEM's registry: ``gem.make("soar:SOAR-Tiny-v1")``, string actions.

GEM ("A Gym for Generalist LLMs", ``pip install gem-llm``) names its environments
``category:Name`` and exchanges text: the observation is a string, the action is the agent's
raw reply. Importing this module registers every SOAR id as ``soar:<id>``:

    import gem
    import soar_env.integrations.gem  # registers soar:SOAR-Tiny-v1, soar:SOAR-MATH-v0, ...

    env = gem.make("soar:SOAR-Tiny-v1", dataset_size=8, inner_steps=2)
    prompt, info = env.reset(seed=0)
    prompt, reward, terminated, truncated, info = env.step(reply)

The observation is ``chat_teacher_prompt``: the env's teacher prompt asking for one dataset of
``n`` problems in the paper's ``<question>...</question><answer>\\boxed{...}</answer>`` format.
The action is the reply as it is; the env reads its first ``n`` pairs, counts each malformed
pair in ``info["invalid_problems"]``, and pays ``floor_reward`` for a reply with no valid one. An
episode is the SOAR episode (``rounds * g`` steps, then truncated; never terminated), and
keyword arguments of ``gem.make`` are the env's settings (``SoarConfig`` fields). The env's
numeric state (``stats``) is in ``info["stats"]``.
"""

from __future__ import annotations

from typing import Any

import gem
import gymnasium as gym
from gem.envs.registration import ENV_REGISTRY

import soar_env
from soar_env.integrations.prompts import chat_teacher_prompt, dataset_text

PREFIX = "soar:"


class SoarGemEnv(gem.Env):
    """A SOAR env behind GEM's text interface (see the module docstring).

    Args:
        soar_id: the gymnasium id (default ``soar_env.DEFAULT_ENV``).
        seed: the seed of a ``reset()`` given none (``gem.make_vec`` passes one per env).
        **settings: env settings, as for ``gym.make(soar_id, **settings)``.
    """

    def __init__(self, soar_id: str = soar_env.DEFAULT_ENV, seed: int | None = None, **settings: Any):
        super().__init__()
        self.soar_id, self.seed = soar_id, seed
        self.env = gym.make(soar_id, **settings)
        self.domain = self.env.unwrapped.domain
        self.prompt = chat_teacher_prompt(self.domain, self.env.unwrapped.config.dataset_size)

    def reset(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        seed, self.seed = (self.seed if seed is None else seed), None  # the constructor's, once
        super().reset(seed)  # GEM's convention: a given seed also seeds random and numpy
        _, info = self.env.reset(seed=seed)
        return self.prompt, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise ValueError(f"Expects the teacher's reply as a str, actual {type(action).__name__}")
        observation, reward, terminated, truncated, info = self.env.step(action)
        info["stats"] = observation["stats"].tolist()
        return self.prompt, float(reward), terminated, truncated, info

    def sample_random_action(self) -> str:
        """A dataset from the domain's generator, as text (domains with a generator); else ''."""
        generator = self.domain.generator
        if generator is None:
            return ""
        n = self.env.unwrapped.config.dataset_size
        seed = int(self.env.unwrapped.np_random.integers(2**31 - 1))
        return dataset_text(generator.problems(n, range(1, generator.max_len + 1), seed=seed))

    def close(self) -> None:
        self.env.close()


def register_ids() -> list[str]:
    """Register ``soar:<id>`` for every SOAR id in gymnasium's registry (once); returns them."""
    ids = [f"{PREFIX}{name}" for name in gym.registry if name.startswith("SOAR-")]
    for gem_id in ids:
        if gem_id not in ENV_REGISTRY:
            gem.register(gem_id, f"{__name__}:SoarGemEnv", soar_id=gem_id.removeprefix(PREFIX))
    return ids


GEM_IDS = register_ids()
