"""SOAR-Tiny-v3 and v4 (v2's model, their own hard sets): each id finds its shipped hard set
and steps."""

import gymnasium as gym
import pytest
import torch
from conftest import FAST

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.domains.chain_v3 import ChainV3Domain
from soar_env.domains.chain_v4 import ChainV4Domain
from soar_env.evaluation import EvalConfig, evaluate_student

IDS = {  # id: (domain class, variant, fewest hard problems kept, base pass@1 bounds)
    "SOAR-Tiny-v3": (ChainV3Domain, "v3", 240, (1e-5, 1e-3)),  # about q^3
    "SOAR-Tiny-v4": (ChainV4Domain, "v4", 250, (0.0, 1e-4)),  # about q^4
}


@pytest.mark.parametrize("env_id", list(IDS))
def test_gym_make_builds_resets_and_steps_on_v2s_model(env_id):
    domain_class, variant, _, _ = IDS[env_id]
    env = gym.make(env_id, **FAST)
    unwrapped = env.unwrapped
    assert isinstance(unwrapped.domain, domain_class) and unwrapped.config.chain_variant == variant
    assert unwrapped.config.eval_mode == "curriculum"
    assert unwrapped.domain.default_student == str(embedded.TINY_CHAIN_V2_PATH)
    env.reset(seed=0)
    stones = unwrapped.domain.validity.oracle(4, seed=0) + unwrapped.domain.validity.off_target(4, seed=0)
    _, reward, terminated, _, info = env.step(stones)
    assert torch.isfinite(torch.tensor(reward)) and not terminated and info["valid_problems"] == 8
    env.close()


@pytest.mark.parametrize("env_id", list(IDS))
def test_shipped_hard_set_is_found_and_hard_for_the_base_student(env_id):
    _, variant, fewest, (low, high) = IDS[env_id]
    env = gym.make(env_id)  # the defaults: 256 candidates, fail@128
    env.reset(seed=0)
    hard = env.unwrapped.hard_set
    assert hard.source in ("shipped", "cache")  # no sampling on a fresh machine
    assert len(hard.train) + len(hard.test) == hard.meta["hard"] >= fewest
    assert any(embedded.variant_hardset_path(variant).glob(f"hardset-{hard.meta['key']}.json"))
    base = evaluate_student(env.unwrapped, 0, EvalConfig.for_env(env.unwrapped))[1]
    assert low < base < high
    env.close()
