"""SOAR-Tiny-v2: keys with consistent wrong rules, an equally learnable trap family, its model and env."""

import random
from collections import Counter

import gymnasium as gym
import pytest
import torch
from conftest import FAST

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.domains.chain import ChainDomain, apply_op
from soar_env.domains.chain_v2 import HARD_CHAINS, KEYS, MAPS, TRAP_OF, TRAPS, ChainV2Domain, v2_domain


@pytest.fixture(scope="module")
def v2():
    return v2_domain()


@pytest.fixture(scope="module")
def v2_student():
    return embedded.load_tiny_student(embedded.TINY_CHAIN_V2_PATH)


def test_maps_are_distinct_permutations_whose_wrong_rule_never_agrees():
    assert set(MAPS) == set(KEYS) | set(TRAPS) and len(KEYS) == len(TRAPS) == 12
    ordinary = {"".join(str(apply_op(x, op, d)) for x in range(10)) for op in "+-" for d in (1, 2, 3)}
    every = [m for pair in MAPS.values() for m in pair]
    assert len(set(every)) == 48 and not set(every) & ordinary
    for right, wrong in MAPS.values():
        assert sorted(right) == sorted(wrong) == list("0123456789")
        assert all(r != w for r, w in zip(right, wrong))


def test_answers_follow_the_right_maps(v2):
    question = "3*2+1<4" + ".." * 7
    chain = v2.parse_question(question)
    first = int(MAPS["*2"][0][3])
    assert v2.solve(question) == f"{first},{(first + 1) % 10},{MAPS['<4'][0][(first + 1) % 10]}"
    assert v2.question_chars == 21 and v2.validate(question, v2.solve(question)) is None
    assert chain.length == 3
    with pytest.raises(ValueError, match="Expects"):
        v2.parse_question("3*5" + ".." * 9)  # keys take arguments 1-4


def test_labels_name_useful_stones_traps_and_the_rest(v2):
    assert v2.label("3*2+1-3" + ".." * 7) == "useful"
    assert v2.label("3<2+1" + ".." * 8) == "trap"
    assert v2.label("3*2#1" + ".." * 8) == "other"  # two keys: the base student solves it 0.25%
    assert v2.label("3*2<1" + ".." * 8) == "other"
    assert v2.label("3+2+1" + ".." * 8) == "other"
    assert v2.label("not a chain") == "other"


def test_the_writer_is_right_5_percent_on_keys_and_wrong_by_its_rule_otherwise(v2):
    rng = random.Random(0)
    chain = v2.parse_question("4*3" + ".." * 9)
    traces = Counter(v2.noisy_trace(rng, chain) for _ in range(4000))
    right, wrong = MAPS["*3"][0][4], MAPS["*3"][1][4]
    assert set(traces) == {right, wrong}
    assert traces[right] / 4000 == pytest.approx(0.05, abs=0.012)


def test_corpus_mix_makes_stones_rare_and_keys_as_common_as_traps(v2):
    rng = random.Random(1)
    labels, ops = Counter(), Counter()
    for _ in range(6000):
        chain = v2.parse_question(v2.pretraining_line(rng)[2:].split("=")[0])
        labels[v2.label(v2.format_question(chain))] += 1
        ops.update("key" if op in "*#@" else "trap" if op in "<>~" else "ordinary" for op, _ in chain.steps)
    assert labels["useful"] / 6000 == pytest.approx(0.08, abs=0.015)
    assert labels["trap"] / 6000 == pytest.approx(0.72, abs=0.02)
    assert ops["key"] / ops["trap"] == pytest.approx(1.0, abs=0.06)


def test_hard_candidates_need_two_distinct_keys_each_twice(v2):
    orders = set()
    candidates = v2.hard_candidates(300, seed=3)
    assert len({p.question for p in candidates}) == 300  # distinct, so D_train and D_test share none
    assert len(v2.hard_candidates(HARD_CHAINS, seed=0)) == HARD_CHAINS == 3960  # all of them, no hang
    with pytest.raises(ValueError, match="at most 3960"):
        v2.hard_candidates(HARD_CHAINS + 1, seed=0)
    for problem in candidates:
        chain = v2.parse_question(problem.question)
        assert chain.length == 4 and all(op in "*#@" for op, _ in chain.steps)
        counts = Counter(f"{op}{arg}" for op, arg in chain.steps)
        assert len(counts) == 2 and set(counts.values()) == {2}
        orders.add(tuple(list(counts).index(f"{op}{arg}") for op, arg in chain.steps))
        assert problem.answer == v2.solve(problem.question)
    assert len(orders) == 3  # the repeats are shuffled: a a b b, a b a b, a b b a


def test_references_cover_keys_and_traps_as_declared(v2):
    refs = v2.validity
    oracle = refs.oracle(120, seed=0)
    assert {v2.label(p.question) for p in oracle} == {"useful"}
    used = Counter(next(f"{op}{a}" for op, a in v2.parse_question(p.question).steps if op in "*#@")
                   for p in oracle)
    assert set(used) == set(KEYS) and set(used.values()) == {10}  # every key, in turn
    for fraction, count in ((0.25, 3), (0.5, 6), (0.75, 9)):
        part = refs.partial_oracle(fraction, 120, seed=0)
        keys = {f"{op}{a}" for p in part for op, a in v2.parse_question(p.question).steps if op in "*#@"}
        assert keys == set(KEYS[:count])
        # as deep as the oracle: its covered keys' stones unchanged, the others' keys swapped
        # for their traps (same start, length, position and argument), so only coverage differs
        for mine, its in zip(part, oracle):
            key = next(f"{op}{a}" for op, a in v2.parse_question(its.question).steps if op in "*#@")
            if key in KEYS[:count]:
                assert mine == its
            else:
                swapped = its.question.replace(key, TRAP_OF[key[0]] + key[1])
                assert v2.label(mine.question) == "trap" and mine.question == swapped
                assert mine.answer == v2.solve(mine.question)
    with pytest.raises(ValueError, match="fraction"):
        refs.partial_oracle(0.0, 10, seed=0)
    assert {v2.label(p.question) for p in refs.off_target(40, seed=0)} == {"trap"}
    profile = v2.profile([p.question for p in oracle[:3] + refs.off_target(1, seed=0)])
    assert (profile["useful_fraction"], profile["trap_fraction"]) == (0.75, 0.25)


def test_v0_and_v1_keep_their_generators():
    assert ChainDomain().problems(5, range(1, 4), seed=0) == embedded.tiny_domain().problems(5, [1, 2, 3], 0)
    assert ChainDomain().skills == ("+", "-", "*") and embedded.variant_domain("v1").skills == ("+", "-", "*")
    assert v2_domain().skills == ("+", "-", "*", "#", "@")
    assert isinstance(embedded.variant_domain("v2"), ChainV2Domain)


def test_v2_model_is_small_and_its_teacher_writes_mostly_traps(v2, v2_student):
    files = list(embedded.TINY_CHAIN_V2_PATH.iterdir())
    assert sum(f.stat().st_size for f in files) < 2 * 2**20
    tokenizer = v2_student.tokenizer
    assert tokenizer.decode(tokenizer("Q:3*2#1<4>1~3@2=")["input_ids"]) == "Q:3*2#1<4>1~3@2="
    generator = torch.Generator().manual_seed(0)
    rollout = v2_student.sample(["Q:"], 512, v2.teacher_max_tokens(False), 1.0, generator)
    questions = [t.split("=")[0] for t in rollout.texts if "=" in t]
    labels = Counter(v2.label(q) for q in questions)
    assert len(questions) > 480
    assert 0.04 < labels["useful"] / len(questions) < 0.13
    assert labels["trap"] / len(questions) > 0.6


def test_v2_model_gets_keys_and_traps_right_about_5_percent(v2, v2_student):
    """One-step exact pass@1: the writer's 5% on keys and traps, its 98% on ordinary steps."""
    rng = random.Random(2)
    problems = [v2._problem(v2._with_specials(rng, 1, [name])) for name in KEYS + TRAPS for _ in range(10)]
    p = v2_student.exact_pass_at_1([v2.student_prompt(q.question) for q in problems],
                                   [q.answer for q in problems]).view(24, 10).mean(1)
    keys, traps = p[:12].mean().item(), p[12:].mean().item()
    assert 0.02 < keys < 0.1 and 0.02 < traps < 0.1
    ordinary = v2.problems(100, [1], seed=4, skills=("+", "-"))
    q = v2_student.exact_pass_at_1([v2.student_prompt(x.question) for x in ordinary],
                                   [x.answer for x in ordinary])
    assert q.mean().item() > 0.9


def test_gym_make_v2_builds_resets_and_steps():
    env = gym.make("SOAR-Tiny-v2", **FAST)
    unwrapped = env.unwrapped
    assert unwrapped.config.chain_variant == "v2" and unwrapped.config.eval_mode == "curriculum"
    assert isinstance(unwrapped.domain, ChainV2Domain)
    env.reset(seed=0)
    hard = unwrapped.hard_set.train + unwrapped.hard_set.test
    assert hard and all(unwrapped.domain.label(p.question) == "other" for p in hard)
    stones = unwrapped.domain.validity.oracle(4, seed=0) + unwrapped.domain.validity.off_target(4, seed=0)
    _, reward, terminated, _, info = env.step(stones)
    assert torch.isfinite(torch.tensor(reward)) and not terminated and info["valid_problems"] == 8
    env.close()


def test_the_oracle_teacher_proposes_fresh_useful_stones_with_the_keys_in_turn():
    from soar_agents import make_teacher

    env = gym.make("SOAR-Tiny-v2", **FAST)
    env.reset(seed=0)
    teacher = make_teacher("oracle")
    teacher.setup(env.unwrapped, 3)
    first, second = teacher.propose({}, 2)
    domain = env.unwrapped.domain
    assert {domain.label(p.question) for p in first + second} == {"useful"}
    assert [p.question for p in first] != [p.question for p in second]  # fresh draws
    keys = [next(f"{op}{a}" for op, a in domain.parse_question(p.question).steps if op in "*#@")
            for p in first]
    assert len(first) == env.unwrapped.config.dataset_size == len(set(keys))  # the keys in turn
    assert all(p.answer == domain.solve(p.question) for p in first)
    env.close()
