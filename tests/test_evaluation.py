"""The evaluation protocol: the stopping rule, intervals and the per-env mode."""

import numpy as np
import pytest

from soar_env.evaluation import EvalConfig, SlopeStopper, interval


def _stop_step(curve) -> int:
    stopper = SlopeStopper()  # the EvalConfig defaults: window 100, 15%, patience 50
    return next((t + 1 for t, r in enumerate(curve) if stopper.update(r)), len(curve))


def test_stopper_waits_for_a_noisy_steady_rise():
    # A reward rising 0.10 -> 0.30 over 1500 steps with per-step sd 0.02 (the probe in the
    # fidelity issue): the rule must not stop before 80% of the rise in >= 95% of trials.
    rng = np.random.default_rng(0)
    rise = np.linspace(0.10, 0.30, 1500)
    stops = np.array([_stop_step(rise + rng.normal(0, 0.02, rise.size)) for _ in range(200)])
    assert (stops >= 1200).mean() >= 0.95


def test_stopper_stops_soon_after_a_plateau():
    # Rises for 200 steps, then flat: stops within 2 * window + patience = 250 steps.
    rng = np.random.default_rng(1)
    t = np.arange(1500)
    curve = 0.10 + 0.20 * np.minimum(t / 200, 1.0)
    stops = np.array([_stop_step(curve + rng.normal(0, 0.02, t.size)) for _ in range(50)])
    assert stops.min() > 200 and stops.max() <= 200 + 250


def test_stopper_never_stops_without_a_rise_or_before_min_steps():
    flat = SlopeStopper(window=5)
    assert not any(flat.update(0.0) for _ in range(100))  # no rise: no maximum to fall from
    early = SlopeStopper(window=5, min_steps=40)
    curve = [min(0.01 * t, 0.2) for t in range(100)]  # plateau from step 20
    stop = next(t + 1 for t, r in enumerate(curve) if early.update(r))
    assert 40 <= stop <= 40 + early.patience
    early.reset()
    assert early.rewards == [] and early.best_slope == 0.0


def test_curriculum_switch_restarts_the_stopper(tiny_student):
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_env.embedded import good_stones
    from soar_env.evaluation import train_fresh_student
    from soar_env.rl import RLOOConfig

    env = gym.make("SOAR-Tiny-v0", hard_candidates=32, hard_k=8).unwrapped
    env.reset(seed=0)
    rl = RLOOConfig(questions_per_step=4, samples_per_question=2, learning_rate=1e-4,
                    kl_coef=0.0, max_new_tokens=40)
    config = EvalConfig(mode="curriculum", synthetic_steps=8, smoothing=2, min_steps=4,
                        max_steps=30, measure="exact", rl=rl)
    steps, rewards = train_fresh_student(env, good_stones(16, 0), seed=0, config=config)
    # The rule starts again at the switch to D_train: no stop before 8 + 4 steps.
    assert steps >= 12 and len(rewards) == steps


def test_interval_uses_the_t_distribution():
    values = [float(v) for v in range(20)]
    half = interval(values)["ci95"]
    assert half == pytest.approx(2.093 * np.std(values, ddof=1) / np.sqrt(20), rel=1e-3)


def test_eval_mode_follows_the_env_id():
    import gymnasium as gym

    import soar_env  # noqa: F401

    assert gym.spec("SOAR-HARP-v0").kwargs["eval_mode"] == "mixed"
    assert "eval_mode" not in gym.spec("SOAR-MATH-v0").kwargs  # the paper's MATH: curriculum
    assert EvalConfig().mode == "curriculum"
