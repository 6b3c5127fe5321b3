"""verifiers: the single-turn env scores a raw teacher reply by the env's grounded reward."""

import asyncio
import math

import gymnasium as gym
import pytest
from conftest import FAST

vf = pytest.importorskip("verifiers.v1")

from soar_env.embedded import variant_domain  # noqa: E402
from soar_env.integrations.prompts import dataset_text  # noqa: E402
from soar_env.integrations.verifiers import (  # noqa: E402
    SoarChatHarness,
    load_environment,
    reply_trace,
    score_reply,
)

SETTINGS = {**FAST, "rounds": 1}


def test_load_environment_is_a_single_turn_verifiers_env():
    env = load_environment("SOAR-Tiny-v1", settings=SETTINGS, num_tasks=3)
    assert isinstance(env, vf.Env) and isinstance(env._harnesses["agent"], SoarChatHarness)
    assert not SoarChatHarness.EXECUTES_CODE  # a chat turn, nothing run on the machine
    tasks = list(env.taskset)
    assert len(tasks) == 3 and len({t.data.prompt_text for t in tasks}) == 1
    prompt = tasks[0].data.prompt_text
    assert "Write 8 different practice problems" in prompt
    # The prompt's example is one the env accepts.
    example = prompt[prompt.rindex("<question>"):]
    probe = gym.make("SOAR-Tiny-v1", **SETTINGS)
    from soar_env.problems import problems_from_action

    valid, errors = problems_from_action(example, probe.unwrapped.domain, 8, 64)
    assert len(valid) == 1 and not errors
    probe.close()
    with pytest.raises(ValueError, match="registered SOAR id"):
        list(load_environment("SOAR-Nope-v0").taskset)


def test_the_rubric_pays_the_envs_grounded_reward():
    env = load_environment("SOAR-Tiny-v1", settings=SETTINGS, seed=5)
    task = next(iter(env.taskset))
    good = dataset_text(variant_domain("v1").problems(8, range(4, 7), seed=1))
    trace = reply_trace(task, good)
    asyncio.run(task.score(trace))
    reward = trace.rewards["grounded_reward"].score
    assert trace.metrics["valid_problems"] == 8 and trace.reward == reward != 0.0
    # The same reply, stepped on the env itself (promotion off, the same seed): the same reward.
    direct = gym.make("SOAR-Tiny-v1", **SETTINGS, tau=math.inf)
    direct.reset(seed=5)
    assert direct.step(good)[1] == pytest.approx(reward, rel=1e-6, abs=1e-12)
    direct.close()


@pytest.mark.parametrize("reply,invalid", [
    ("I would rather not write problems.", 0),  # no pair at all
    ("<question>7+1</question><answer>\\boxed{8}</answer>", 1),  # not a chain question
    ("<question>5+3..................................</question><answer>8</answer>", 1),  # no box
])
def test_malformed_replies_get_the_floor_reward(reply, invalid):
    task = next(iter(load_environment("SOAR-Tiny-v1", settings=SETTINGS, seed=5).taskset))
    trace = reply_trace(task, reply)
    asyncio.run(task.score(trace))
    assert trace.reward == 0.0 and trace.metrics["valid_problems"] == 0
    assert trace.metrics["invalid_problems"] == invalid
    assert asyncio.run(score_reply(task, reply)) == 0.0
