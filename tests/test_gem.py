"""GEM: `gem.make("soar:SOAR-Tiny-v1")` speaks text, and its episodes are the env's."""

import pytest
from conftest import FAST

# `gem` on PyPI is another library: the GEM of gem-llm has this module.
pytest.importorskip("gem.envs.registration")

import gem  # noqa: E402

from soar_env.embedded import variant_domain  # noqa: E402
from soar_env.integrations.gem import GEM_IDS  # noqa: E402
from soar_env.integrations.prompts import dataset_text  # noqa: E402

ONE_ROUND = {**FAST, "rounds": 1}


def test_every_soar_id_is_registered():
    assert {"soar:SOAR-Tiny-v0", "soar:SOAR-Tiny-v1", "soar:SOAR-MATH-v0"} <= set(GEM_IDS)
    with pytest.raises(ValueError, match="not found"):
        gem.make("soar:SOAR-Nope-v0")


def test_reset_step_round_trip_with_string_actions():
    env = gem.make("soar:SOAR-Tiny-v1", **ONE_ROUND)
    prompt, info = env.reset(seed=0)
    assert isinstance(prompt, str) and "<question>" in prompt and "hard_set" in info
    good = dataset_text(variant_domain("v1").problems(8, range(4, 7), seed=1))
    prompt2, reward, terminated, truncated, info = env.step(good)
    assert prompt2 == prompt and isinstance(reward, float) and not terminated and not truncated
    assert info["valid_problems"] == 8 and info["invalid_problems"] == 0 and len(info["stats"]) == 8
    assert reward != 0.0  # the student trained on the reply: the grounded reward moved
    # A malformed reply: counted, floor reward, and the episode (1 round of 2 steps) ends.
    _, reward, terminated, truncated, info = env.step("<question>7+1</question><answer>8</answer>")
    assert reward == 0.0 and info["valid_problems"] == 0 and info["invalid_problems"] == 1
    assert truncated and not terminated
    with pytest.raises(ValueError, match="as a str"):
        env.step(["not", "text"])
    assert "<question>" in env.sample_random_action()
    env.close()


def test_vector_envs_of_gem():
    envs = gem.make_vec(["soar:SOAR-Tiny-v1"] * 2, seed=3, **ONE_ROUND)
    prompts, _ = envs.reset()
    actions = [env.sample_random_action() for env in envs.envs]
    _, rewards, _, _, infos = envs.step(actions)
    assert len(prompts) == 2 and rewards.shape == (2,) and all(i["valid_problems"] == 8 for i in infos)
