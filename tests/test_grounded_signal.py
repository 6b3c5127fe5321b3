"""The grounded reward ranks datasets the way the stepping-stone benchmark says it should."""

import statistics

import gymnasium as gym
import pytest

import soar_env  # noqa: F401
from soar_env import embedded

pytestmark = pytest.mark.slow  # each test here runs for tens of seconds


def test_good_stones_earn_more_than_hard_or_narrow_datasets():
    # The tiny preset as a user gets it (n=64, K=10, M=64, exact measure), rounds of 3.
    env = gym.make("SOAR-Tiny-v0", group_size=3)
    rewards = {"good": [], "narrow": [], "hard": []}
    for seed in (0, 1, 2):
        env.reset(seed=seed)
        hard_train = env.unwrapped.hard_set.train
        datasets = {
            "good": embedded.good_stones(64, seed=seed),
            "narrow": embedded.narrow_stones(64, seed=seed),
            "hard": [hard_train[i % len(hard_train)] for i in range(64)],
        }
        # One round: the three datasets are scored against the same Q_R and baseline.
        for kind, dataset in datasets.items():
            rewards[kind].append(env.step(dataset)[1])
    mean = {k: statistics.mean(v) for k, v in rewards.items()}
    assert mean["good"] > mean["narrow"] > mean["hard"], rewards
    assert mean["good"] > 0
