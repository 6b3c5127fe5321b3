"""SOAR-Tiny-v4: v2's model and traps with hard problems on 6 of the 12 keys."""

import pytest

import soar_env  # noqa: F401  (registers the ids)
from soar_env.domains.chain_v2 import KEYS, TRAPS
from soar_env.domains.chain_v4 import HARD_CHAINS, HARD_KEYS, v4_domain


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


def test_v4_threshold_is_the_measured_midpoint():
    """v4's tau is halfway between Base-T's largest and the oracle's smallest 3-round mean in
    the committed noise measurement (docs/results/promotion_noise_v4.json), not v2's inf."""
    import json
    from pathlib import Path

    from soar_env.config import TINY_V4_TAU, tiny_v4

    path = Path(__file__).parents[1] / "docs/results/promotion_noise_v4.json"
    summary = json.loads(path.read_text())["summary"]
    midpoint = (summary["base"]["ma_max"] + summary["oracle"]["ma_min"]) / 2
    assert tiny_v4().tau == TINY_V4_TAU
    assert summary["base"]["ma_max"] < TINY_V4_TAU < summary["oracle"]["ma_min"]
    assert abs(TINY_V4_TAU - midpoint) / midpoint < 0.05  # rounded to two digits
