"""SOAR-Tiny-v4: v2's model and traps with hard problems on 6 of the 12 keys."""

import gymnasium as gym
import pytest
import torch
from conftest import FAST

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.domains.chain_v2 import KEYS, TRAPS
from soar_env.domains.chain_v4 import HARD_CHAINS, HARD_KEYS, ChainV4Domain, v4_domain
from soar_env.evaluation import EvalConfig, evaluate_student


@pytest.fixture(scope="module")
def v4():
    return v4_domain()


def test_hard_candidates_apply_one_of_six_keys_four_times_each_after_an_ordinary_step(v4):
    candidates = v4.hard_candidates(300, seed=3)
    assert len({p.question for p in candidates}) == 300
    used_keys = set()
    for problem in candidates:
        steps = v4.parse_question(problem.question).steps
        assert len(steps) == 8 and all(op in "+-" for op, _ in steps[0::2])
        used = {f"{op}{arg}" for op, arg in steps[1::2]}
        assert len(used) == 1
        used_keys |= used
        assert problem.answer == v4.solve(problem.question)
    assert used_keys == set(HARD_KEYS) and set(HARD_KEYS) < set(KEYS)
    with pytest.raises(ValueError, match=f"at most {HARD_CHAINS}"):
        v4.hard_candidates(HARD_CHAINS + 1, seed=0)


def test_references_drill_the_six_hard_keys_and_labels_call_only_them_useful(v4):
    refs = v4.validity
    oracle = refs.oracle(24, 5)
    assert {refs.label(p.question) for p in oracle} == {"useful"}
    assert {refs.label(p.question) for p in refs.off_target(24, 5)} == {"trap"}
    other_key = v4.one_special_chains(6, 0, KEYS[6:])  # a key no hard problem needs
    assert {refs.label(p.question) for p in other_key} == {"other"}
    # A partial oracle keeps the oracle's chains; uncovered hard keys become their traps.
    half = refs.partial_oracle(0.5, 24, 5)
    assert [len(p.question) for p in half] == [len(p.question) for p in oracle]
    ops = {q.question[i:i + 2] for q in half for i in range(1, len(q.question), 2)}
    assert ops & set(HARD_KEYS) == set(HARD_KEYS[:3]) and ops & set(TRAPS)
    assert refs.partial_oracle(1.0, 24, 5) == oracle


def test_gym_make_v4_reads_its_shipped_hard_set_and_steps():
    env = gym.make("SOAR-Tiny-v4", **FAST)
    unwrapped = env.unwrapped
    assert isinstance(unwrapped.domain, ChainV4Domain) and unwrapped.config.eval_mode == "curriculum"
    assert unwrapped.domain.default_student == str(embedded.TINY_CHAIN_V2_PATH)
    env.reset(seed=0)
    stones = unwrapped.domain.validity.oracle(4, seed=0) + unwrapped.domain.validity.off_target(4, seed=0)
    _, reward, terminated, _, info = env.step(stones)
    assert torch.isfinite(torch.tensor(reward)) and not terminated and info["valid_problems"] == 8
    env.close()


def test_shipped_v4_hard_set_is_found_and_hard_for_the_base_student():
    env = gym.make("SOAR-Tiny-v4")
    env.reset(seed=0)
    hard = env.unwrapped.hard_set
    assert hard.source in ("shipped", "cache")
    assert len(hard.train) + len(hard.test) == hard.meta["hard"] >= 250
    base = evaluate_student(env.unwrapped, 0, EvalConfig.for_env(env.unwrapped))[1]
    assert base < 1e-4  # about q^4
    env.close()
