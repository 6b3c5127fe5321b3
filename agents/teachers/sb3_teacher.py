"""A stable-baselines3 teacher: PPO over the domain generator's parameters.

PPO learns through its own ``learn`` loop on ``ParametricTeacherWrapper(env)``: an action
is (chain length, skill set), the observation the env's 8 numeric stats. ``Sb3Teacher``
then runs a trained policy inside ``train_teacher`` like any other teacher.

    python -m soar_agents.teachers.sb3_teacher --timesteps 2048 --out runs/sb3_ppo
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from soar_env.problems import Problem
from soar_env.wrappers.parametric import SKILL_SETS, ParametricTeacherWrapper

from .protocol import Teacher


def make_wrapped_env(env_id: str = "SOAR-Tiny-v0", **overrides: Any) -> ParametricTeacherWrapper:
    """``gym.make(env_id, **overrides)`` behind the parametric action wrapper."""
    import soar_env  # noqa: F401  (registers the ids)

    return ParametricTeacherWrapper(gym.make(env_id, **overrides))


def train_ppo(
    env_id: str = "SOAR-Tiny-v0",
    total_timesteps: int = 2048,
    seed: int = 0,
    log_dir: str | Path | None = None,
    ppo_kwargs: dict | None = None,
    progress: bool = False,
    **env_overrides: Any,
):
    """Train SB3 PPO as a teacher; logs CSV and TensorBoard under ``log_dir``; returns the model."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    env = make_wrapped_env(env_id, **env_overrides)
    kwargs = {"n_steps": 64, "batch_size": 32, "n_epochs": 4, "learning_rate": 3e-4, **(ppo_kwargs or {})}
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, **kwargs)
    if log_dir is not None:
        model.set_logger(configure(str(log_dir), ["csv", "tensorboard"]))
    model.learn(total_timesteps=total_timesteps, progress_bar=progress)
    if log_dir is not None:
        model.save(Path(log_dir) / "ppo_teacher.zip")
    return model


class Sb3Teacher(Teacher):
    """Runs a trained SB3 policy (``model`` or a saved ``path``) as a teacher.

    Each dataset of a round is the policy's (deterministic) action on the current stats;
    the env's stats do not change within a round except the position, so datasets differ
    by the generator's seed and, for stochastic policies, the action.
    """

    name = "sb3-ppo"

    def __init__(self, model: Any = None, path: str | Path | None = None, deterministic: bool = False):
        if model is None and path is None:
            raise ValueError("Sb3Teacher expects a trained model= or a path= to one (see train_ppo)")
        self.model, self.path, self.deterministic = model, path, deterministic

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        if self.model is None:
            from stable_baselines3 import PPO

            if not Path(self.path).is_file():
                raise FileNotFoundError(f"Expects a saved SB3 model at {self.path}, actual none")
            self.model = PPO.load(self.path, device="cpu")
        self.model.set_random_seed(seed)
        self.rng = np.random.default_rng(seed)

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        out = []
        for _ in range(count):
            action, _ = self.model.predict(observation["stats"], deterministic=self.deterministic)
            length, skills = int(action[0]) + 1, SKILL_SETS[int(action[1])]
            seed = int(self.rng.integers(2**31 - 1))
            out.append(self.domain.generator.problems(self.dataset_size, [length], seed, skills))
        return out

    def save(self, path: str | Path) -> None:
        self.model.save(Path(path).with_suffix(".zip"))

    def load(self, path: str | Path) -> None:
        from stable_baselines3 import PPO

        self.model = PPO.load(Path(path).with_suffix(".zip"), device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description="Train SB3 PPO as a teacher on SOAR-Tiny-v0")
    parser.add_argument("--env", default="SOAR-Tiny-v0")
    parser.add_argument("--timesteps", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/sb3_ppo")
    args = parser.parse_args()
    train_ppo(args.env, args.timesteps, args.seed, log_dir=args.out, progress=True)
    print(f"saved {Path(args.out) / 'ppo_teacher.zip'}; logs (CSV, TensorBoard) in {args.out}")


if __name__ == "__main__":
    main()
