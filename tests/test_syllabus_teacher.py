"""Syllabus curricula as teachers: the task space, the reward fed back, seeding, resuming."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import FAST

pytest.importorskip("syllabus")

from soar_agents import make_teacher, train_teacher  # noqa: E402
from soar_agents.teachers.syllabus_teacher import SyllabusTeacher, generator_tasks  # noqa: E402
from soar_env.context import TeacherContext  # noqa: E402
from soar_env.embedded import variant_domain  # noqa: E402


def _context(variant="v1", group_size=4):
    domain = variant_domain(variant)
    return TeacherContext(domain, domain.teacher_prompt, 8, group_size, 10, (), None, None)


def _run(teacher, rounds, reward):
    """``rounds`` rounds with a reward that depends on the task only (no env: fast)."""
    chosen = []
    for _ in range(rounds):
        datasets = teacher.propose({}, teacher.group_size)
        chosen.append(list(teacher._chosen))
        teacher.learn([reward(teacher.tasks[i]) for i in teacher._chosen], [{}] * len(datasets))
    return chosen


def test_task_space_is_lengths_by_skills_by_target():
    v1 = generator_tasks(variant_domain("v1"))
    v0 = generator_tasks(variant_domain("v0"))
    assert len(v1) == 4 * 4 * 2 and len(v0) == 4 * 4  # buckets x (all, each op) x on/off target
    assert {t.off_target for t in v1} == {False, True} and not any(t.off_target for t in v0)
    assert {t.skills for t in v1 if t.off_target} == {("<", ">", "^"), ("<",), (">",), ("^",)}
    assert max(t.hi for t in v1) == 20 and len({t.name for t in v1}) == len(v1)


@pytest.mark.parametrize("name", ["plr", "learning-progress"])
def test_datasets_follow_the_sampled_tasks_and_leave_numpy_alone(name):
    teacher = make_teacher(name)
    errors = np.geterr()
    outer = np.random.get_state()[1].copy()
    teacher.setup(_context(), seed=0)
    datasets = teacher.propose({}, 4)
    assert len(datasets) == 4 and all(len(d) == 8 for d in datasets)
    for index, dataset in zip(teacher._chosen, datasets):
        task = teacher.tasks[index]
        for problem in dataset:
            assert task.lo <= problem.metadata["length"] <= task.hi
            assert set(problem.metadata["skills"]) <= set(task.skills)
    teacher.learn([1e-6, 2e-6, 0.0, -1e-6], [{}] * 4)
    # Syllabus draws from numpy's global generator and sets np.seterr(all='raise') on import:
    # neither reaches the rest of the process.
    assert (np.random.get_state()[1] == outer).all() and np.geterr() == errors


def test_plr_scores_are_the_grounded_rewards_and_it_replays_the_best():
    teacher = make_teacher("plr")
    teacher.setup(_context(), seed=1)
    best = next(i for i, t in enumerate(teacher.tasks)
                if t.lo == 4 and len(t.skills) == 3 and not t.off_target)
    chosen = _run(teacher, 8, lambda task: 1e-5 if teacher.tasks.index(task) == best else 1e-7)
    sampler = teacher.curriculum.sampler
    seen = sorted({i for r in chosen for i in r})
    for i in seen:  # PLR's score of a task is its last reward (alpha = 1)
        assert sampler.task_scores[i] == pytest.approx(1e-5 if i == best else 1e-7)
    # Once every task has been seen, PLR replays by rank: the best task dominates.
    later = _run(teacher, 12, lambda task: 1e-5 if teacher.tasks.index(task) == best else 1e-7)
    assert np.mean([i == best for r in later[-4:] for i in r]) > 0.5


def test_learning_progress_reads_continuous_progress():
    teacher = make_teacher("learning-progress")
    teacher.setup(_context(), seed=0)
    _run(teacher, 3, lambda task: task.lo * 1e-7)  # longer chains pay more: progress in (0, 1)
    rates = teacher.curriculum.task_rates
    assert rates is not None and 0 < rates.max() < 1  # floor(progress) would have given zeros


@pytest.mark.parametrize("name", ["plr", "learning-progress"])
def test_same_seed_same_tasks_and_a_checkpoint_replays_exactly(name):
    first, second = make_teacher(name), make_teacher(name)
    first.setup(_context(), seed=3)
    second.setup(_context(), seed=3)
    reward = lambda task: task.hi * 1e-7 + (1e-6 if task.off_target else 0.0)  # noqa: E731
    assert _run(first, 4, reward) == _run(second, 4, reward)
    resumed = make_teacher(name)
    resumed.setup(_context(), seed=3)
    resumed.load_state_dict(first.state_dict())
    assert resumed.propose({}, 4) == first.propose({}, 4)
    other = make_teacher(name)
    other.setup(_context(), seed=4)  # another seed draws other tasks: the replay refuses it
    with pytest.raises(ValueError, match="replaying round 0"):
        other.load_state_dict(first.state_dict())


def test_any_syllabus_curriculum_can_be_wrapped():
    from syllabus.curricula import DomainRandomization

    teacher = SyllabusTeacher(lambda space: DomainRandomization(space))
    teacher.setup(_context("v0"), seed=0)
    chosen = _run(teacher, 5, lambda task: 1e-6)
    assert teacher.name == "syllabus" and len({i for r in chosen for i in r}) > 4
    with pytest.raises(ValueError, match="curriculum expects"):
        SyllabusTeacher("nope")
    with pytest.raises(TypeError, match="syllabus Curriculum"):
        SyllabusTeacher(lambda space: object()).setup(_context("v0"), seed=0)


@pytest.mark.parametrize("name", ["plr", "learning-progress"])
def test_a_round_on_the_real_env_feeds_the_grounded_rewards(name):
    teacher = make_teacher(name)
    env = gym.make("SOAR-Tiny-v1", **FAST)
    history = train_teacher(teacher, env, rounds=1, seed=0, progress=False)
    rewards = teacher.log[0]["rewards"]
    assert len(rewards) == FAST["group_size"]
    assert history[0]["charts/reward_mean"] == pytest.approx(np.mean(rewards))
    assert history[0]["teacher/distinct_tasks"] >= 1 and "teacher/mean_progress" in history[0]
    env.close()
