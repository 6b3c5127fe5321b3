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
