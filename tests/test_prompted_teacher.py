"""The prompted-LLM teacher: any local chat model writes problems from the teacher prompt."""

import gymnasium as gym
import pytest
import torch
from conftest import FAST, build_chat_llama

from soar_agents import make_teacher, train_teacher
from soar_agents.app.cli import parse_settings
from soar_agents.teachers.soar_teacher import TeacherCannotWrite
from soar_env.embedded import TINY_CHAIN_V1_PATH

ONE_ROUND = {**FAST, "rounds": 1}


@pytest.fixture(scope="module")
def env():
    env = gym.make("SOAR-Tiny-v1", **ONE_ROUND)
    env.reset(seed=0)
    yield env
    env.close()


def test_a_config_built_chat_model_gets_its_chat_template(env, tmp_path):
    build_chat_llama(tmp_path / "chat")
    teacher = make_teacher("prompted", settings={"model": str(tmp_path / "chat"), "max_sample_batches": 1,
                                                 "sample_batch": 16})
    teacher.setup(env.unwrapped.teacher_context(), seed=0)
    # conftest's CHAT_TEMPLATE wraps the env's teacher prompt as one user turn.
    assert teacher.prompt.endswith("<user>Q:</user><assistant>") and not teacher.learns
    # A random model writes no chain problem: one clear error within the budget, no crash.
    with pytest.raises(TeacherCannotWrite, match=r"wrote 0 well-formed problems in 16 samples"):
        teacher.propose(env.unwrapped.observation(), 2)


def test_a_local_model_folder_writes_problems_and_never_learns(env):
    teacher = make_teacher("prompted", settings={"model": str(TINY_CHAIN_V1_PATH)})
    history = train_teacher(teacher, env, rounds=1, seed=0, progress=False)
    assert history[0]["teacher/well_formed"] > 0 and history[0]["env/invalid_problems"] == 0
    weights = {k: v.clone() for k, v in teacher.policy.model.state_dict().items()}
    teacher.learn([1e-6, 0.0], [{}, {}])
    assert all(torch.equal(weights[k], v) for k, v in teacher.policy.model.state_dict().items())


def test_the_model_is_required_and_settable_from_the_command_line(env):
    teacher = make_teacher("prompted")
    with pytest.raises(ValueError, match="teacher.model=PATH"):
        teacher.setup(env.unwrapped.teacher_context(), seed=0)
    _, settings = parse_settings("SOAR-Tiny-v1", "prompted",
                                 ["teacher.model=/models/chat", "teacher.answers=teacher"])
    assert settings == {"model": "/models/chat", "answers": "teacher"}
