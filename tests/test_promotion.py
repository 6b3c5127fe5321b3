"""The promotion rule and bank; and promotion on SOAR-Tiny means what it should."""

import pytest

from soar_env.problems import Problem
from soar_env.promotion import PromotedBank, PromotionRule


def test_rule_waits_for_a_full_window_and_compares_the_mean():
    rule = PromotionRule(tau=1.0, window=3, reset_after=False)
    assert [rule.end_round(r) for r in (5.0, 5.0)] == [False, False]  # window not full yet
    assert rule.end_round(-6.0) is True and rule.moving_average == pytest.approx(4 / 3)
    assert rule.end_round(-6.0) is False  # (5 - 6 - 6) / 3 < 1: the oldest round left


def test_reset_after_promotion_needs_a_fresh_window():
    rule = PromotionRule(tau=1.0, window=2, reset_after=True)
    assert [rule.end_round(r) for r in (2.0, 2.0, 2.0, 2.0, 2.0)] == [False, True, False, True, False]
    kept = PromotionRule(tau=1.0, window=2, reset_after=False)
    assert [kept.end_round(r) for r in (2.0, 2.0, 2.0)] == [False, True, True]


def test_window_of_one_and_state_round_trip():
    rule = PromotionRule(tau=0.5, window=1)
    assert [rule.end_round(r) for r in (0.4, 0.6)] == [False, True]
    a, b = PromotionRule(tau=0.0, window=3, reset_after=False), PromotionRule(tau=0.0, window=3)
    for r in (0.1, -0.2):
        a.end_round(r)
    b.load_state_dict(a.state_dict())
    assert b.moving_average == a.moving_average and b.end_round(0.5) == a.end_round(0.5)
    with pytest.raises(ValueError, match="ma_window"):
        PromotionRule(window=0)


def test_bank_keeps_problems_with_their_rounds():
    bank = PromotedBank()
    bank.add([Problem("q1", "a1"), Problem("q2", "a2")], 3)
    bank.add([Problem("q3", "a3")], 7)
    assert len(bank) == 3 and bank.rounds == [3, 3, 7] and bank.problems[2].question == "q3"


def _promotions(teacher_name: str, seed: int, rounds: int) -> int:
    from soar_agents import make_teacher, train_teacher

    history = train_teacher(make_teacher(teacher_name), "SOAR-Tiny-v0", rounds=rounds, seed=seed,
                            progress=False)
    return int(history[-1]["env/promotions"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_good_stepping_stones_promote_on_the_tiny_preset(seed):
    # The curriculum teacher proposes fresh medium chains (the measured best stones): the
    # first full moving-average window (round 3) already clears tau.
    assert _promotions("curriculum", seed, rounds=3) >= 1


@pytest.mark.slow
def test_the_untrained_teacher_promotes_at_most_once_in_12_rounds():
    # Base-T's round rewards are noise around ~2.7e-6; the threshold sits above that noise.
    # One seed here (12 grounded rounds cost minutes); benchmarks/promotion_noise.py measures 3.
    assert _promotions("base", 0, rounds=12) <= 1
