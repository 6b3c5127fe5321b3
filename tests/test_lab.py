"""StudentLab: measurements and inner runs on the student it owns."""

import dataclasses

import pytest
import torch

from soar_env import embedded
from soar_env.config import RLOOConfig
from soar_env.lab import StudentLab
from soar_env.rl import NonFiniteUpdate

RL = RLOOConfig(questions_per_step=8, samples_per_question=4, learning_rate=1e-3, kl_coef=0.0,
                max_new_tokens=40)


def _same(a, b):
    return all(torch.equal(v, b[k]) for k, v in a.items())


def test_measures_are_seeded_and_short_chains_beat_long_ones(student, domain):
    lab = StudentLab(student, domain)
    short = domain.problems(16, range(1, 2), seed=0)
    long = embedded.hard_candidates(16, seed=0)
    exact = lab.accuracy(short, "exact", samples=1, max_new_tokens=40, seed=None)
    prompts = [lab.student_prompt(p.question) for p in short]
    assert exact == pytest.approx(float(student.exact_pass_at_1(prompts, [p.answer for p in short]).mean()))
    sampled = [lab.accuracy(short, "sampled", samples=4, max_new_tokens=40, seed=s) for s in (1, 1, 2)]
    assert sampled[0] == sampled[1]  # the seed decides
    counts_short = lab.success_counts(short, 8, 40, torch.Generator().manual_seed(0))
    counts_long = lab.success_counts(long, 8, 40, torch.Generator().manual_seed(0))
    assert all(0 <= c <= 8 for c in counts_short + counts_long)
    assert sum(counts_short) > sum(counts_long)
    assert lab.usage["sampled_tokens"] > 0


def test_an_inner_run_starts_from_the_baseline_and_keeps_weights_when_asked(student, domain):
    lab = StudentLab(student, domain)
    stones = embedded.good_stones(16, seed=0)
    questions = domain.problems(16, range(2, 4), seed=1)
    measure = {"measure": "exact", "samples": 1, "max_new_tokens": 40, "seed": None}
    before = lab.accuracy(questions, **measure)
    first = lab.run_inner(stones, 2, RL, 7, questions, measure, before, keep_weights=True)
    assert first.reward == pytest.approx(first.accuracy_after - before)
    assert len(first.train_rewards) == 2 and _same(first.weights, lab.snapshot())
    assert not _same(first.weights, lab.base)  # it trained
    again = lab.run_inner(stones, 2, RL, 7, questions, measure, before, keep_weights=False)
    assert again.weights is None and again.reward == first.reward  # from the baseline, same seed
    assert lab.usage["student_updates"] > 0


def test_a_diverged_run_raises_and_leaves_the_baseline(student, domain):
    lab = StudentLab(student, domain)
    lab.baseline = lab.snapshot()
    bad = dataclasses.replace(RL)
    bad.learning_rate = float("inf")  # past validation: stands for any update that diverges
    measure = {"measure": "exact", "samples": 1, "max_new_tokens": 40, "seed": None}
    with pytest.raises(NonFiniteUpdate):
        lab.run_inner(embedded.good_stones(16, seed=0), 2, bad, 0, embedded.good_stones(8, seed=1),
                      measure, 0.0, keep_weights=False)
    assert _same(lab.snapshot(), lab.baseline)
