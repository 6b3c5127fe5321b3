"""Intrinsic rewards pinned to their sources' formulas for known success counts."""

import math

import pytest

from soar_env.rewards import (
    INTRINSIC,
    intrinsic_reward,
    learnability,
    learnability_expected,
    repetition_penalties,
)

S = 8  # samples per question
COUNTS = (0, 1, 2, 4, 6, 8)


@pytest.mark.parametrize(("mode", "expected"), [
    # p = c / 8 for c in COUNTS
    ("learnability", (0.0, 0.875, 0.75, 0.5, 0.25, 0.0)),
    ("azr", (0.0, 0.875, 0.75, 0.5, 0.25, 0.0)),
    ("rzero", (0.0, 0.25, 0.5, 1.0, 0.5, 0.0)),
    ("sqlm", (0.0, 1.0, 1.0, 1.0, 1.0, 0.0)),
])
def test_reward_values(mode, expected):
    assert [INTRINSIC[mode](c / S, c, S) for c in COUNTS] == pytest.approx(expected)


def test_spice_peaks_at_half():
    values = [INTRINSIC["spice"](c / S, c, S) for c in COUNTS]
    assert values[3] == pytest.approx(1.0)
    assert values[0] == pytest.approx(math.exp(-(0.25**2) / (2 * 0.05**2)))
    assert values[1] < values[2] < values[3] and values[2] == pytest.approx(values[4])


def test_azr_is_a_documented_alias_of_learnability():
    for c in range(S + 1):
        assert INTRINSIC["azr"](c / S, c, S) == INTRINSIC["learnability"](c / S, c, S)
    assert "alias" in INTRINSIC["azr"].__doc__


def test_rzero_repetition_penalty_clusters_near_duplicates():
    distinct = ["Q:1+2*3=", "Q:7-3-1*2+3=", "Q:2*7*7*2-1-3=", "Q:9-1="]
    assert repetition_penalties(distinct) == pytest.approx([0.25] * 4)
    copies = ["Q:1+2*3="] * 4
    assert repetition_penalties(copies) == pytest.approx([1.0] * 4)
    near = ["Q:1+2*3-1+2*3=", "Q:1+2*3-1+2*2=", "Q:9-3=", "Q:7*2+1-1-1-1-3="]
    pen = repetition_penalties(near)
    assert pen[0] == pen[1] == pytest.approx(0.5) and pen[2] == pytest.approx(0.25)
    # Four copies at p = 1/2 earn uncertainty 1 each, minus penalty 1: nothing.
    assert intrinsic_reward("rzero", [4] * 4, S, copies) == 0.0
    assert intrinsic_reward("rzero", [4] * 4, S, distinct) == pytest.approx(0.75)
    assert intrinsic_reward("rzero", [4] * 4, S) == pytest.approx(1.0)  # no texts: no penalty


def test_intrinsic_reward_rejects_bad_input():
    with pytest.raises(ValueError, match="intrinsic mode"):
        intrinsic_reward("grounded", [1], S)
    with pytest.raises(ValueError, match="at least one"):
        intrinsic_reward("sqlm", [], S)


def test_expected_learnability_matches_the_reward_over_sample_counts():
    for p in (0.0, 0.1, 0.5, 0.9, 1.0):
        exact = sum(math.comb(S, c) * p**c * (1 - p) ** (S - c) * learnability(c / S, c, S)
                    for c in range(S + 1))
        assert abs(learnability_expected(p, S) - exact) < 1e-12
