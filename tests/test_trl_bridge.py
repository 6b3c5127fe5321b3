"""The TRL bridge (``soar_agents.teachers.trl_bridge``): TRL's trainers train a teacher through
the env, at test size."""

import pytest
from conftest import ROUND, TEACHER_RL

import soar_env  # noqa: F401
from soar_agents.teachers.trl_bridge import DatasetReward, train_with_trl
from soar_env.rl import RLOOConfig

SMALL = {**ROUND, "dataset_size": 4, "inner_runs": 1, "inner_steps": 1, "reward_questions": 8,
         "rl": RLOOConfig(**TEACHER_RL)}


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
