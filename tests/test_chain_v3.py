"""SOAR-Tiny-v3: v2's model and references with hard problems that need one key three times."""

import pytest

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.domains.chain_v2 import KEYS, ChainV2Domain
from soar_env.domains.chain_v3 import HARD_CHAINS, ChainV3Domain, v3_domain


@pytest.fixture(scope="module")
def v3():
    return v3_domain()


def test_hard_candidates_apply_one_key_three_times_each_after_an_ordinary_step(v3):
    candidates = v3.hard_candidates(300, seed=3)
    assert len({p.question for p in candidates}) == 300  # distinct: D_train and D_test share none
    keys = set()
    for problem in candidates:
        steps = v3.parse_question(problem.question).steps
        assert len(steps) == 6
        assert all(op in "+-" for op, _ in steps[0::2])
        used = {f"{op}{arg}" for op, arg in steps[1::2]}
        assert len(used) == 1 and used <= set(KEYS)
        keys |= used
        assert problem.answer == v3.solve(problem.question)
    assert keys == set(KEYS)
    assert [p.question for p in v3.hard_candidates(20, seed=3)] == [p.question for p in candidates[:20]]
    with pytest.raises(ValueError, match=f"at most {HARD_CHAINS}"):
        v3.hard_candidates(HARD_CHAINS + 1, seed=0)


def test_v3_keeps_v2_model_references_and_labels(v3):
    v2 = embedded.variant_domain("v2")
    mine = embedded.variant_domain("v3")
    assert isinstance(mine, ChainV3Domain) and isinstance(mine, ChainV2Domain)
    assert mine.default_student == v2.default_student == str(embedded.TINY_CHAIN_V2_PATH)
    assert embedded.variant_hardset_path("v3") == embedded.TINY_CHAIN_V3_PATH
    assert embedded.variant_hardset_path("v2") == embedded.TINY_CHAIN_V2_PATH
    refs2, refs3 = v2.validity, mine.validity
    assert refs3.oracle(24, 5) == refs2.oracle(24, 5)
    assert refs3.partial_oracle(0.5, 24, 5) == refs2.partial_oracle(0.5, 24, 5)
    assert refs3.off_target(24, 5) == refs2.off_target(24, 5)
    hard = v3.hard_candidates(8, seed=0)
    assert {refs3.label(p.question) for p in hard} == {"other"}  # three keys: not a one-key stone
