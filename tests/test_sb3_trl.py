"""The SB3 teacher through the parametric wrapper, and the TRL bridge, at test size."""

import numpy as np
import pytest

import soar_env  # noqa: F401
from soar_agents import make_teacher, train_teacher
from soar_agents.teachers.sb3_teacher import make_wrapped_env, train_ppo
from soar_agents.teachers.trl_bridge import DatasetReward, train_with_trl
from soar_env.rl import RLOOConfig

SMALL = dict(dataset_size=4, group_size=2, inner_runs=1, inner_steps=1, reward_questions=8,
             rl=RLOOConfig(questions_per_step=4, samples_per_question=4, learning_rate=1e-4, kl_coef=0.0,
                           max_new_tokens=40))


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


@pytest.mark.parametrize("trainer", ["rloo", "grpo"])
def test_trl_bridge_trains_the_teacher_through_the_env(trainer, tmp_path):
    import torch

    from soar_env.embedded import load_tiny_student

    model, history = train_with_trl("SOAR-Tiny-v0", trainer=trainer, rounds=2, output_dir=str(tmp_path),
                                    **SMALL)
    base = load_tiny_student().model.state_dict()
    assert any(not torch.equal(v.cpu(), base[k]) for k, v in model.state_dict().items())
    assert len(history) == 2
    assert all(len(h["rewards"]) == 2 and 0.0 <= h["well_formed"] <= 1.0 for h in history)


def test_dataset_reward_groups_completions_into_datasets():
    import gymnasium as gym

    env = gym.make("SOAR-Tiny-v0", **SMALL)
    env.reset(seed=0)
    domain = env.unwrapped.domain
    questions = [p.question + "=" for p in domain.problems(8, [4], seed=1)]
    completions = questions[:4] + ["garbage"] + questions[5:]  # one malformed sample in dataset 2
    reward = DatasetReward(env, malformed_penalty=1.0, scale=1.0)
    out = reward(["Q:"] * 8, completions)
    r0, r1 = reward.history[0]["rewards"]
    assert out[:4] == [r0] * 4 and out[5:] == [r1] * 3
    assert out[4] == pytest.approx(min(r0, r1) - abs(r0 - r1) / 2)  # lowest minus one spread
    assert reward.history[0]["well_formed"] == 7 / 8
    with pytest.raises(ValueError, match="multiple of g\\*n"):
        reward(["Q:"] * 3, questions[:3])
