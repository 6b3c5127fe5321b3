"""SOAR-Tiny-v1: the chain domain with an off-target family, its model and its env."""

import hashlib
import random

import gymnasium as gym
import pytest
import torch
from conftest import FAST

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.domains.chain import (
    ALPHABET,
    OFF_TARGET_SKILLS,
    SKILLS,
    Chain,
    ChainDomain,
    apply_op,
    v1_domain,
)

V0_WEIGHTS_SHA256 = "7328916ee407134256c35a8948890aade97574a5bd9b1bc55d43b90a08bdf57c"


@pytest.fixture(scope="module")
def v1():
    return v1_domain()


@pytest.fixture(scope="module")
def v1_student():
    return embedded.load_tiny_student(embedded.TINY_CHAIN_V1_PATH)


def test_off_target_ops_and_answers(v1):
    assert [apply_op(6, "<", 3), apply_op(2, "<", 7), apply_op(1, ">", 4), apply_op(9, ">", 6)] \
        == [3, 2, 4, 9]
    assert [apply_op(9, "^", 2), apply_op(8, "^", 3), apply_op(5, "^", 1)] == [1, 1, 4]
    chain = Chain(6, (("<", 5), ("^", 3), (">", 4)))
    question = v1.format_question(chain)
    assert question == "6<5^3>4" + ".." * 17
    assert v1.parse_question(question) == chain
    assert v1.solve(question) == "5,6,6"
    assert v1.validate(question, "5,6,6") is None and v1.validate(question, "5,6") is not None
    # On-target questions read the same in both variants.
    on = "5+3*7-2" + ".." * 17
    assert v1.solve(on) == ChainDomain().solve(on) == "8,6,4"


@pytest.mark.parametrize("bad", ["6<4" + ".." * 19, "6^7" + ".." * 19, "6>x" + ".." * 19])
def test_off_target_arguments_are_checked(v1, bad):
    with pytest.raises(ValueError, match="Expects"):
        v1.parse_question(bad)


def test_v0_rejects_off_target_ops():
    with pytest.raises(ValueError, match="Expects"):
        ChainDomain().parse_question("6<5" + ".." * 19)


def test_pretraining_writes_each_family_half_the_time(v1):
    rng = random.Random(0)
    families = []
    for _ in range(2000):
        question = v1.pretraining_line(rng)[2:].split("=")[0]
        ops = {op for op, _ in v1.parse_question(question).steps}
        assert ops <= set(SKILLS) or ops <= set(OFF_TARGET_SKILLS)  # one family per chain
        families.append(ops <= set(OFF_TARGET_SKILLS))
    assert sum(families) / len(families) == pytest.approx(0.5, abs=0.04)


def test_profile_reports_off_target_fraction(v1):
    on = v1.problems(6, [3], seed=0)
    off = v1.problems(2, [3], seed=0, skills=OFF_TARGET_SKILLS)
    profile = v1.profile([p.question for p in on + off])
    assert profile["off_target_fraction"] == 0.25 and "skill_^" in profile
    assert "off_target_fraction" not in ChainDomain().profile([p.question for p in on])


def test_bad_variant_and_config_say_what_to_change():
    with pytest.raises(ValueError, match="chain_variant"):
        embedded.variant_domain("v9")
    with pytest.raises(ValueError, match="off_target_share"):
        ChainDomain(off_target_share=0.5)


def test_v0_domain_and_model_are_unchanged():
    assert embedded.variant_domain("v0") == embedded.tiny_domain() == ChainDomain()
    assert ChainDomain().alphabet == ALPHABET == "0123456789+-*.=,Q:"
    weights = (embedded.TINY_CHAIN_PATH / "model.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == V0_WEIGHTS_SHA256
    assert embedded.variant_model_path("v0") == embedded.TINY_CHAIN_PATH


def test_v1_model_is_small_and_keeps_v0_token_ids(v1_student):
    files = list(embedded.TINY_CHAIN_V1_PATH.iterdir())
    assert sum(f.stat().st_size for f in files) < 2 * 2**20
    tokenizer = v1_student.tokenizer
    v0 = embedded.load_tiny_student().tokenizer
    assert all(tokenizer.convert_tokens_to_ids(c) == v0.convert_tokens_to_ids(c) for c in ALPHABET)
    assert tokenizer.decode(tokenizer("Q:6<5^3>4=")["input_ids"]) == "Q:6<5^3>4="


@pytest.mark.parametrize("skills", [SKILLS, OFF_TARGET_SKILLS])
def test_v1_model_greedy_solves_short_chains_of_both_families(v1, v1_student, skills):
    problems = v1.problems(64, range(1, 3), seed=0, skills=skills)
    outputs = v1_student.greedy([v1.student_prompt(p.question) for p in problems], 44)
    accuracy = sum(v1.grade(o, p.answer) for o, p in zip(outputs, problems)) / len(problems)
    assert accuracy > 0.8  # the writer's most likely step is the right one


def test_v1_model_samples_the_writers_noise(v1, v1_student):
    """Sampled one-step accuracy per op reproduces the writer's (the RL headroom)."""
    problems = v1.problems(300, [1], seed=1, skills=SKILLS + OFF_TARGET_SKILLS)
    p = v1_student.exact_pass_at_1([v1.student_prompt(q.question) for q in problems],
                                   [q.answer for q in problems])
    for op, target in v1.writer_accuracy.items():
        rate = float(p[[q.metadata["skills"] == op for q in problems]].mean())
        assert rate == pytest.approx(target, abs=0.1), (op, rate)


def test_gym_make_v1_builds_resets_and_steps():
    env = gym.make("SOAR-Tiny-v1", **FAST)
    unwrapped = env.unwrapped
    assert unwrapped.config.chain_variant == "v1" and unwrapped.domain == v1_domain()
    obs, _ = env.reset(seed=0)
    # The hard set: long on-target chains only.
    hard = unwrapped.hard_set.train + unwrapped.hard_set.test
    assert hard and all(not set(p.question) & set(OFF_TARGET_SKILLS) for p in hard)
    assert all(18 <= unwrapped.domain.parse_question(p.question).length for p in hard)
    stones = embedded.off_target_stones(4, seed=0) + embedded.good_stones(4, seed=0)
    obs, reward, terminated, truncated, info = env.step(stones)
    assert torch.isfinite(torch.tensor(reward)) and not terminated
    env.close()
