"""SoarEnv on the embedded default, with configs small enough for CI."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import FAST
from gymnasium.utils.env_checker import check_env

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.problems import Problem


@pytest.fixture(scope="module")
def env():
    env = gym.make("SOAR-Tiny-v0", **FAST)
    yield env
    env.close()


# Every embedded id, read from the registry so that a new version is checked the day it is registered.
TINY_IDS = sorted(k for k in gym.registry if k.startswith("SOAR-Tiny-"))


@pytest.mark.parametrize("env_id", TINY_IDS)
def test_check_env_passes_on_the_id_as_it_comes(env_id):
    # No arguments: the shipped hard sets make this cheap.
    check_env(gym.make(env_id).unwrapped)


def test_check_env_passes():
    # Wall-clock seconds differ between identical runs, so they stay out of info by default
    # (Gymnasium's determinism check compares infos); they remain on env.compute.
    check_env(gym.make("SOAR-Tiny-v0", **FAST).unwrapped)


def test_timing_in_info_is_opt_in():
    env = gym.make("SOAR-Tiny-v0", timing_in_info=True, **FAST)
    env.reset(seed=0)
    info = env.step(embedded.good_stones(8, seed=0))[-1]
    assert info["step_seconds"] > 0 and info["compute"]["wall_seconds"] > 0


def test_nonfinite_update_is_skipped_and_flagged():
    from soar_env.rl import RLOOConfig

    rl = RLOOConfig(questions_per_step=8, samples_per_question=8, learning_rate=1e-4,
                    kl_coef=0.0, max_new_tokens=40)
    rl.learning_rate = float("inf")  # past validation: stands for any update that diverges
    env = gym.make("SOAR-Tiny-v0", **{**FAST, "inner_runs": 2}, rl=rl)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped.student.snapshot()
    obs, reward, _, _, info = env.step(embedded.good_stones(8, seed=0))
    assert np.isfinite(reward) and reward == env.unwrapped.config.floor_reward
    assert len(info["nonfinite_runs"]) == 2 and "learning_rate" in info["nonfinite_runs"][0]
    assert env.observation_space.contains(obs)
    # The baseline is untouched and the next step samples without a torch error.
    after = env.unwrapped.student.snapshot()
    assert all(bool((after[k] == base[k]).all()) for k in base)
    env.step(embedded.good_stones(8, seed=1))


def test_unknown_id_and_bad_config_errors():
    with pytest.raises(gym.error.Error):
        gym.make("SOAR-Nope-v0")
    with pytest.raises(ValueError, match="reward_mode"):
        gym.make("SOAR-Tiny-v0", reward_mode="vibes")
    with pytest.raises(ValueError, match="dataset="):
        gym.make("SOAR-MATH-v0")


def test_paper_preset_holds_the_paper_hyperparameters():
    from soar_env.config import paper

    cfg = paper()
    assert (cfg.dataset_size, cfg.inner_runs, cfg.inner_steps, cfg.reward_questions) == (64, 4, 10, 64)
    assert (cfg.group_size, cfg.rounds, cfg.tau, cfg.ma_window) == (4, 200, 0.01, 3)
    assert (cfg.rl.learning_rate, cfg.rl.kl_coef, cfg.rl.questions_per_step,
            cfg.rl.samples_per_question, cfg.rl.max_new_tokens) == (1e-5, 0.001, 8, 32, 1024)
    assert cfg.accuracy == "greedy"


def test_actions_in_every_accepted_form(env):
    env.reset(seed=0)
    good = embedded.good_stones(8, seed=0)
    as_dicts = tuple(p.to_dict() for p in good)
    as_pairs = [(p.question, p.answer) for p in good]
    raw = "".join(f"<question>{p.question}</question><answer>\\boxed{{{p.answer}}}</answer>\n"
                  for p in good)
    for action in (good, as_dicts, as_pairs, raw):
        _, reward, terminated, _, info = env.step(action)
        assert info["valid_problems"] == 8 and info["invalid_problems"] == 0
        assert not terminated and np.isfinite(reward)


def test_malformed_problems_are_counted_not_trained(env):
    env.reset(seed=0)
    good = embedded.good_stones(8, seed=0)
    bad = [Problem("", ""), Problem("5+3", "8"), Problem(good[0].question, "x,y"),
           Problem("9" * 64, "1")]
    _, reward, _, _, info = env.step(good[:4] + bad)
    assert info["valid_problems"] == 4 and info["invalid_problems"] == 4
    assert len(info["parse_errors"]) == 4
    _, reward, _, _, info = env.step(tuple(bad * 2))
    assert info["valid_problems"] == 0 and reward == env.unwrapped.config.floor_reward
    assert "run_rewards" not in info  # nothing was trained
    _, reward, _, _, info = env.step("no tags at all")
    assert info["valid_problems"] == 0 and reward == 0.0
    # Over-long and non-ASCII texts are the problem's fault, not the action's: counted.
    _, _, _, _, info = env.step(good[:6] + [("q" * 65, "a"), ("q\u00e9", "a")])
    assert info["valid_problems"] == 6 and info["invalid_problems"] == 2
    assert "over 64 characters" in info["parse_errors"][0]
    assert "outside printable ASCII" in info["parse_errors"][1]


@pytest.mark.parametrize("action, match", [
    (42, "Expects a dataset"),
    ([("1", "2")] * 3, "Expects 8 problems"),
    ([{"question": 1, "answer": "2"}] * 8, "as str"),
    ([object()] * 8, "as a dict"),
])
def test_actions_outside_the_space_raise(env, action, match):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_space_samples_are_legal_actions(env):
    env.reset(seed=0)
    env.action_space.seed(0)
    obs, reward, _, _, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert info["invalid_problems"] + info["valid_problems"] == 8


def _rollout(seed, actions, **overrides):
    env = gym.make("SOAR-Tiny-v0", **{**FAST, **overrides})
    env.reset(seed=seed)
    out = []
    for action in actions:
        _, reward, _, truncated, info = env.step(action)
        assert "step_seconds" not in info and "wall_seconds" not in info["compute"]
        out.append((reward, truncated, info))
    return out


def test_same_seed_same_actions_same_rewards_and_infos():
    actions = [embedded.good_stones(8, seed=1), embedded.narrow_stones(8, seed=1)] * 2
    a, b = _rollout(3, actions), _rollout(3, actions)
    assert a == b
    assert [t for _, t, _ in a] == [False, False, False, True]  # 2 rounds of 2 steps
    assert a[1][2]["round_position"] == 1 and a[2][2]["round"] == 1
    c = _rollout(4, actions)
    assert [r for r, _, _ in c] != [r for r, _, _ in a]


@pytest.mark.parametrize("mode", ["learnability", "rzero", "azr", "sqlm", "spice"])
def test_intrinsic_modes_need_no_training(mode):
    easy = embedded.tiny_domain().problems(8, [1, 2], seed=0)
    (reward, _, info), = _rollout(0, [easy], reward_mode=mode)
    assert "run_rewards" not in info and info["compute"]["student_updates"] == 0
    assert len(info["success_rates"]) == 8
    # The reward is the mode's function of the measured success counts (tests/test_rewards.py
    # pins each function's values).
    from soar_env.config import tiny
    from soar_env.rewards import intrinsic_reward

    samples = tiny().intrinsic_samples
    successes = [round(rate * samples) for rate in info["success_rates"]]
    assert reward == intrinsic_reward(mode, successes, samples, [p.question for p in easy])


def test_intrinsic_with_grounded_measurement():
    easy = embedded.tiny_domain().problems(8, [2, 3], seed=0)
    (reward, _, info), = _rollout(0, [easy], reward_mode="learnability", measure_grounded=True)
    assert "grounded_reward" in info and info["compute"]["student_updates"] > 0
    assert reward > 0  # short chains: solved sometimes, not always


def test_accuracy_measures():
    good = embedded.good_stones(8, seed=0)
    (reward, _, info), = _rollout(0, [good], accuracy="sampled")
    assert info["baseline_accuracy"] == 0.0  # fail@k problems: never solved when sampled
    # The reward is what the inner runs gained over the baseline, on average.
    assert reward == pytest.approx(np.mean(info["accuracy_after"]) - info["baseline_accuracy"], abs=1e-12)
    # Greedy decoding takes the most likely step, which the noisy writer made the right
    # one: it solves most hard chains, so greedy accuracy does not measure this domain.
    (reward, _, info), = _rollout(0, [good], accuracy="greedy")
    assert info["baseline_accuracy"] > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("inner_runs", [1, 3])
def test_forced_high_rewards_promote_the_median_student(inner_runs):
    # tau below any possible reward: every full window promotes.
    env = gym.make("SOAR-Tiny-v0", **{**FAST, "tau": -1.0, "ma_window": 1, "rounds": 3,
                                      "inner_runs": inner_runs})
    env.reset(seed=0)
    unwrapped = env.unwrapped
    base_hash = unwrapped.student.weights_hash()
    infos = [env.step(embedded.good_stones(8, seed=i))[4] for i in range(4)]
    assert [i["promoted"] for i in infos] == [False, True, False, True]
    assert infos[1]["bank_size"] == 8 and infos[3]["bank_size"] == 16
    assert infos[3]["promotions"] == 2
    assert len(unwrapped.promoted_bank) == 16
    # The baseline moved, and inner runs grew by the configured steps after promotion.
    unwrapped.student.restore(unwrapped.baseline)
    assert unwrapped.student.weights_hash() != base_hash
    assert infos[2]["inner_steps"] == FAST["inner_steps"] + 5
    best = max(np.mean(infos[0]["run_rewards"]), np.mean(infos[1]["run_rewards"]))
    assert infos[1]["promoted_reward"] == pytest.approx(best)
    # The new baseline is the median run of the best dataset: round 1's baseline accuracy is
    # that run's accuracy after training (FAST's Q_R is the whole 16-question D_train).
    best_info = max(infos[:2], key=lambda i: np.mean(i["run_rewards"]))
    median_after = sorted(best_info["accuracy_after"])[(inner_runs - 1) // 2]
    assert infos[2]["baseline_accuracy"] == pytest.approx(median_after, rel=1e-5)


def test_no_promotion_below_tau(env):
    env.reset(seed=0)
    infos = [env.step(embedded.good_stones(8, seed=i))[4] for i in range(4)]
    assert not any(i["promoted"] for i in infos) and infos[-1]["bank_size"] == 0


def test_step_before_reset_says_so():
    env = gym.make("SOAR-Tiny-v0", disable_env_checker=True, **FAST)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(embedded.good_stones(8, seed=0))
