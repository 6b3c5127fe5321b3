"""The SB3 teacher (``soar_agents.teachers.sb3_teacher``) through the parametric wrapper, at test size."""

import numpy as np
import pytest
from conftest import ROUND, TEACHER_RL

import soar_env  # noqa: F401
from soar_agents import make_teacher, train_teacher
from soar_agents.teachers.sb3_teacher import make_wrapped_env, train_ppo
from soar_env.rl import RLOOConfig

SMALL = {**ROUND, "dataset_size": 4, "inner_runs": 1, "inner_steps": 1, "reward_questions": 8,
         "rl": RLOOConfig(**TEACHER_RL)}


def test_wrapper_passes_sb3_env_checker_and_maps_actions():
    from stable_baselines3.common.env_checker import check_env

    env = make_wrapped_env("SOAR-Tiny-v0", timing_in_info=False, **SMALL)
    check_env(env, warn=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8,) and env.observation_space.contains(obs)
    problems, params = env.dataset(np.array([4, 0]))  # length 5, skills ('+',)
    assert params == {"length": 5, "skills": "+"}
    assert all(p.metadata["length"] == 5 and set(p.metadata["skills"]) == {"+"} for p in problems)
    _, reward, _, _, info = env.step(np.array([2, 6]))
    assert info["action_params"] == {"length": 3, "skills": "+-*"} and info["valid_problems"] == 4
    with pytest.raises(ValueError, match="Expects an action in"):
        env.step(np.array([99, 0]))


@pytest.mark.slow
def test_ppo_trains_256_steps_and_acts_as_a_teacher(tmp_path):
    model = train_ppo("SOAR-Tiny-v0", total_timesteps=256, seed=0, log_dir=tmp_path, **SMALL)
    assert model.num_timesteps >= 256
    assert (tmp_path / "ppo_teacher.zip").is_file() and (tmp_path / "progress.csv").is_file()
    teacher = make_teacher("sb3-ppo", path=tmp_path / "ppo_teacher.zip")
    history = train_teacher(teacher, "SOAR-Tiny-v0", rounds=1, seed=0, progress=False, **SMALL)
    assert history[0]["proposals/proposals"] == 8 and history[0]["env/invalid_problems"] == 0
    with pytest.raises(ValueError, match="trained model"):
        make_teacher("sb3-ppo")
