"""The Episode: rounds, promotion, draws and one state_dict (no model needed)."""

import json

import numpy as np
import pytest

from soar_env.config import tiny
from soar_env.episode import Episode
from soar_env.lab import InnerRun
from soar_env.problems import Problem

CONFIG = tiny(group_size=2, rounds=3, dataset_size=2, inner_runs=3, tau=-1.0, ma_window=1,
              inner_steps=10, promotion_extra_steps=5, max_inner_steps=12, reward_questions=2)
DATASET = [Problem("1+1", "2"), Problem("2+2", "4")]
TRAIN = [Problem(f"{i}+0", str(i)) for i in range(9)]


def _episode(seed=0):
    return Episode(CONFIG, np.random.default_rng(seed))


def _play_round(episode, rewards=(0.5, 0.25)):
    """One round: the reward questions drawn, a candidate offered per step; returns the ends."""
    episode.start_round(episode.draw_reward_questions(TRAIN), 0.125)
    ends = []
    for reward in rewards:
        run = InnerRun(reward, 0.5, [0.0, 1.0], weights=None)
        episode.offer(reward, DATASET, run, lambda reward=reward: {"w": reward})
        info = {}
        ends.append((info, episode.end_step(reward, info)))
    return ends


def test_a_round_promotes_the_best_dataset_and_grows_the_inner_steps():
    episode = _episode()
    (first, none), (last, promoted) = _play_round(episode)
    assert first == {"promoted": False, "bank_size": 0, "promotions": 0} and none is None
    assert last["promoted"] and last["promoted_reward"] == 0.5 and last["round_mean_reward"] == 0.375
    assert promoted.weights == {"w": 0.5}  # the best step's run, its weights taken when offered
    assert (episode.round, episode.position, episode.promotions) == (1, 0, 1)
    assert list(episode.bank.rounds) == [0, 0] and episode.inner_steps == 12  # 10 + 5, capped at 12
    stats = episode.stats()
    assert stats.shape == (8,) and stats[0] == pytest.approx(1 / 3) and stats[2] == 0.125


def test_state_dict_is_plain_data_and_resumes_the_draws():
    episode = _episode(seed=7)
    _play_round(episode)
    state = json.loads(json.dumps(episode.state_dict()))  # what a checkpoint stores, as JSON
    resumed = _episode(seed=123)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state
    # The random stream goes on where it was: the next round draws the same questions and seeds.
    assert resumed.draw_reward_questions(TRAIN) == episode.draw_reward_questions(TRAIN)
    assert [j.seed for j in resumed.jobs(DATASET, True)] == [j.seed for j in episode.jobs(DATASET, True)]


def test_state_dict_refuses_a_mid_round_save():
    episode = _episode()
    episode.start_round(TRAIN[:2], 0.0)
    episode.end_step(0.0, {})
    with pytest.raises(ValueError, match="round boundary"):
        episode.state_dict()


def test_a_checkpoint_of_the_previous_format_loads():
    # The env's state before the Episode existed, as 0.4.0 wrote it (its "baseline" is the env's).
    old = {
        "baseline": None,
        "np_random": np.random.default_rng(3).bit_generator.state,
        "promotion": {"history": [0.25]},
        "bank": {"problems": [p.to_dict() for p in DATASET], "rounds": [0, 0]},
        "round": 1, "inner_steps": 12, "promotions": 1, "last_reward": 0.25,
        "round_rewards": [0.5, 0.25], "baseline_accuracy": 0.125,
        "compute": {"wall_seconds": 1.5, "sampled_tokens": 40, "student_updates": 4},
    }
    episode = _episode()
    episode.load_state_dict(old)
    assert episode.state_dict() == {k: v for k, v in old.items() if k != "baseline"}
    assert episode.compute == old["compute"] and len(episode.bank) == 2


def test_the_clock_puts_seconds_in_info_only_when_asked():
    episode, quiet, timed = _episode(), {}, {}
    episode.count({"sampled_tokens": 7, "student_updates": 1})
    episode.clock(0.5, quiet, timing=False)
    episode.clock(0.25, timed, timing=True)
    assert quiet == {"compute": {"sampled_tokens": 7, "student_updates": 1}}
    assert timed["compute"]["wall_seconds"] == 0.75 and timed["step_seconds"] == 0.25


def test_jobs_draw_every_seed_in_order():
    episode = _episode(seed=1)
    episode.start_round(TRAIN[:2], 0.25)
    jobs = episode.jobs(DATASET, keep_last=False)
    assert [j.keep_weights for j in jobs] == [True, True, False]
    assert all(j.measure["seed"] is None for j in jobs)  # the exact measure draws no seed
    rng = np.random.default_rng(1)
    assert [j.seed for j in jobs] == [int(rng.integers(2**31 - 1)) for _ in range(3)]
    assert all(j.before == 0.25 and j.steps == 10 and j.measure_on == tuple(TRAIN[:2]) for j in jobs)


def test_grounded_reward_skips_failed_runs_picks_the_lower_median_and_counts_usage():
    used = {"sampled_tokens": 10, "student_updates": 2}
    runs = [(InnerRun(r, 0.0, [r]), used) for r in (0.3, 0.1, 0.2, 0.4)]
    episode, info = _episode(), {}
    reward, median = episode.grounded_reward([*runs, ("update went non-finite", used)], info)
    assert reward == pytest.approx(0.25) and median.reward == 0.2
    assert info["nonfinite_runs"] == ["update went non-finite"]
    assert info["run_rewards"] == [0.3, 0.1, 0.2, 0.4]
    assert episode.usage == {"sampled_tokens": 50, "student_updates": 10}  # the failed run's too
    assert episode.grounded_reward([("diverged", used)], {}) == (None, None)
