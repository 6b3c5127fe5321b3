"""The SOAR teacher's learning-rate schedule is a setting, not the run's length."""

import pytest

import soar_env  # noqa: F401
from soar_agents import make_teacher_env
from soar_agents.teachers.soar_teacher import SoarTeacher, SoarTeacherConfig


def _lrs(rounds: int, updates: int, **config) -> list[float]:
    teacher = SoarTeacher(SoarTeacherConfig.tiny(**config))
    env = make_teacher_env("SOAR-Tiny-v0", teacher, dataset_size=8, group_size=2, rounds=rounds)
    env.reset(seed=0)
    teacher.setup(env.unwrapped, seed=0)
    lrs = []
    for _ in range(updates):
        lrs.append(teacher.scheduler.get_last_lr()[0])
        teacher.optimizer.step()
        teacher.scheduler.step()
    env.close()
    return lrs


def test_a_short_run_follows_the_long_runs_schedule():
    short, long = _lrs(rounds=12, updates=12), _lrs(rounds=200, updates=12)
    assert short == long
    assert short[2] == pytest.approx(3e-4)  # tiny: full rate after its 3 warmup updates
    assert short[-1] > 0.99 * 3e-4  # 12 of 200 updates: the cosine has barely begun


def test_the_horizon_is_a_checked_setting():
    lrs = _lrs(rounds=12, updates=12, total_rounds=10, warmup_rounds=2)
    assert lrs[-1] == pytest.approx(0.0)  # decayed to zero at its own horizon, not the run's
    with pytest.raises(ValueError, match="total_rounds"):
        SoarTeacherConfig(total_rounds=10, warmup_rounds=20)
