"""Curriculum-learning teachers from Syllabus: any ``syllabus.core.Curriculum`` picks the tasks.

A *task* is a setting of the domain's problem generator: a chain-length bucket x a skill set x
on- or off-target operations (SOAR-Tiny-v1's off-target family; v0 has on-target tasks only):
32 tasks on SOAR-Tiny-v1, 30 on v4 (the default), 16 on v0 (``generator_tasks``). Each round
the curriculum samples one task per dataset, the generator writes the dataset, and the
dataset's grounded reward goes back to the curriculum through Syllabus's own update calls:
``update_task_progress(task, progress)`` and ``update_on_episode(reward, 1, task, progress)``
(one dataset is one episode). ``progress``
is the reward's percentile among the rewards seen so far in the run, in [0, 1]: Syllabus
expects progress in [0, 1], and the grounded reward's scale differs by orders of magnitude
between envs (1e-6 on the tiny ids, 1e-2 on MATH).

Two curricula ship (``make_teacher('plr')``, ``make_teacher('learning-progress')``):

- **plr**, Prioritized Level Replay (Jiang, Grefenstette and Rocktaeschel, ICML 2021,
  arXiv 2010.03934): every task is tried once, then tasks are replayed by the rank of their
  score (temperature 0.1) mixed with staleness (weight 0.1). The scoring, rank and staleness
  code is Syllabus's ``TaskSampler``; the score of a task is its last grounded reward (PLR
  scores by value loss, which a teacher without a value function does not have; the
  grounded reward is the learning the task produced, what PLR's score estimates).
  Syllabus 0.7's own PLR curricula cannot take it: ``CentralPrioritizedLevelReplay`` and
  ``PrioritizedLevelReplay`` score from per-step value predictions, and
  ``DirectPrioritizedLevelReplay.update`` calls a sampler method 0.7 lacks. ``EpisodicPLR``
  below is a ``Curriculum`` that feeds the sampler one score per episode.
- **learning-progress**, Learning Progress (Kanitscheider et al., 2021, arXiv 2106.14876):
  Syllabus's ``OnlineLearningProgress`` (fast and slow moving averages of each task's
  success rate, reweighted, sampled by a z-scored sigmoid of |fast - slow|, mixed with 25%
  uniform), updated once per round. Syllabus counts a success as ``floor(progress)``, i.e.
  only progress 1.0; ``ContinuousLearningProgress`` averages the progress itself instead.

Syllabus draws from numpy's global generator; every call into it here runs on the teacher's
own numpy stream (swapped in and out), so runs are seeded and nothing else's draws move.
The teacher's checkpoint is its seed-free log (tasks and rewards of every round): loading
replays it into a fresh curriculum, which must draw the same tasks (checked).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from soar_env.problems import Problem

from .protocol import Teacher

LENGTH_BUCKETS = ((1, 3), (4, 6), (7, 12), (13, 20))
"""The bandit teacher's chain-length buckets (clipped to the generator's ``max_len``)."""


@dataclass(frozen=True)
class GeneratorTask:
    """One setting of the generator: lengths ``lo..hi``, operations ``skills``."""

    lo: int
    hi: int
    skills: tuple[str, ...]
    off_target: bool

    @property
    def name(self) -> str:
        return f"len{self.lo}-{self.hi}/{''.join(self.skills)}/{'off' if self.off_target else 'on'}"


def generator_tasks(generator: Any) -> list[GeneratorTask]:
    """Length buckets x skill sets (all of a family's operations, or one) x on/off target."""
    families = [(tuple(generator.skills), False)]
    off = tuple(getattr(generator, "off_target", ()) or ())
    if off:
        families.append((off, True))
    tasks = []
    for (lo, hi), (ops, off_target) in itertools.product(LENGTH_BUCKETS, families):
        if lo > generator.max_len:
            continue
        for skills in ([ops] + [(op,) for op in ops]) if len(ops) > 1 else [ops]:
            tasks.append(GeneratorTask(lo, min(hi, generator.max_len), skills, off_target))
    return tasks


def import_syllabus() -> Any:
    """The ``syllabus`` package, or one clear error. Importing its curricula runs
    ``np.seterr(all='raise')`` (in its PLR sampler module): the previous setting is put back,
    so numpy elsewhere in the process keeps warning instead of raising."""
    saved = np.geterr()
    try:
        import syllabus.core
        import syllabus.curricula
        import syllabus.task_space  # noqa: F401
    except ImportError as err:
        raise ImportError(f"The Syllabus teachers need Syllabus: pip install 'soar-env[syllabus]' "
                          f"({err})") from err
    finally:
        np.seterr(**saved)
    import syllabus

    if not _CLEANUP:
        _CLEANUP.append(True)
        atexit.register(_free_import_memory)
    return syllabus


_CLEANUP: list[bool] = []


def _free_import_memory() -> None:
    """Syllabus 0.7 creates a shared-memory list when imported (a class attribute of its
    evaluation wrapper) and never frees it: Python then warns of a leak at every exit."""
    from syllabus.core.evaluator import GymnasiumEvaluationWrapper

    shared = GymnasiumEvaluationWrapper.env_count.shm
    with contextlib.suppress(OSError):
        shared.close()
        shared.unlink()


def progress_percentile(reward: float, history: list[float]) -> float:
    """``reward``'s percentile in ``history`` (which includes it): ties count half."""
    below = sum(r < reward for r in history)
    ties = sum(r == reward for r in history)
    return (below + 0.5 * ties) / len(history)


def make_plr(task_space: Any, group_size: int, **settings: Any) -> Any:
    return _curricula()["EpisodicPLR"](task_space, **settings)


def make_learning_progress(task_space: Any, group_size: int, **settings: Any) -> Any:
    # One update of the moving averages per round; unsampled tasks keep their last rate.
    kwargs = {"update_interval": group_size, "save_last": True, **settings}
    return _curricula()["ContinuousLearningProgress"](task_space, **kwargs)


CURRICULA: dict[str, Callable[..., Any]] = {"plr": make_plr, "learning-progress": make_learning_progress}
"""Built-in curricula by teacher name: ``factory(task_space, group_size, **settings)``."""


@dataclass
class SyllabusTeacherConfig:
    """What a Syllabus teacher's state was made with (checked when a checkpoint is loaded)."""

    curriculum: str
    """A name in ``CURRICULA``, or 'custom' for a curriculum factory."""
    settings: dict[str, Any]
    """Keyword arguments of the curriculum (e.g. PLR's ``temperature``)."""


class SyllabusTeacher(Teacher):
    """A teacher whose datasets come from tasks a Syllabus curriculum samples.

    Args:
        curriculum: a name in ``CURRICULA`` ('plr', 'learning-progress'), or a factory
            ``f(task_space) -> syllabus.core.Curriculum`` for any other Syllabus curriculum
            (e.g. ``lambda space: DomainRandomization(space)``).
        name: the teacher's registry name (default: the curriculum's name, or 'syllabus').
        **settings: keyword arguments of a built-in curriculum.
    """

    def __init__(self, curriculum: str | Callable[[Any], Any] = "plr", name: str | None = None,
                 **settings: Any):
        self.syllabus = import_syllabus()  # a missing library is reported before any training
        if isinstance(curriculum, str) and curriculum not in CURRICULA:
            raise ValueError(f"curriculum expects one of {tuple(CURRICULA)} or a factory, "
                             f"actual {curriculum!r}")
        if callable(curriculum) and settings:
            raise ValueError("settings are for the built-in curricula; a factory takes its own")
        self.curriculum_spec = curriculum
        self.name = name or (curriculum if isinstance(curriculum, str) else "syllabus")
        self.config = SyllabusTeacherConfig(curriculum if isinstance(curriculum, str) else "custom",
                                            dict(settings))

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        generator = self.domain.generator
        if generator is None or not hasattr(generator, "skills"):
            raise ValueError(f"The {self.name} teacher expects a domain with a problem generator (the chain "
                             f"domains), actual {type(self.domain).__name__}")
        self.generator = generator
        self.tasks = generator_tasks(generator)
        self.seed = seed
        self.rng = random.Random(seed)  # the generator's seeds
        self._start_curriculum()

    def _start_curriculum(self) -> None:
        """A fresh curriculum on a fresh numpy stream (``setup`` and checkpoint replay)."""
        self._numpy = np.random.RandomState(self.seed).get_state()
        self.log: list[dict[str, list]] = []  # per round: the sampled tasks and their rewards
        self.rewards_seen: list[float] = []
        space = self.syllabus.task_space.DiscreteTaskSpace(len(self.tasks))
        space.seed(self.seed)
        with self._numpy_stream():
            spec = self.curriculum_spec
            if isinstance(spec, str):
                self.curriculum = CURRICULA[spec](space, self.group_size, **self.config.settings)
            else:
                self.curriculum = spec(space)
        if not isinstance(self.curriculum, self.syllabus.core.Curriculum):
            raise TypeError(f"The curriculum factory expects to return a syllabus Curriculum, "
                            f"actual {type(self.curriculum).__name__}")
        self._chosen: list[int] = []

    @contextlib.contextmanager
    def _numpy_stream(self) -> Iterator[None]:
        """Run Syllabus on this teacher's numpy stream, with its error settings kept local."""
        outer, errors = np.random.get_state(), np.geterr()
        np.random.set_state(self._numpy)
        try:
            yield
        finally:
            self._numpy = np.random.get_state()
            np.random.set_state(outer)
            np.seterr(**errors)

    def _sample(self, count: int) -> list[int]:
        # One task per call: Syllabus 0.7's startup sampling returns one task whatever k is.
        with self._numpy_stream():
            tasks = [int(np.asarray(self.curriculum.sample(k=1)).reshape(-1)[0]) for _ in range(count)]
        for task in tasks:
            if not 0 <= task < len(self.tasks):
                raise RuntimeError(f"The curriculum sampled task {task}, outside its {len(self.tasks)} tasks")
        return tasks

    def _update(self, tasks: list[int], rewards: list[float]) -> list[float]:
        self.rewards_seen += [float(r) for r in rewards]
        progress = [progress_percentile(float(r), self.rewards_seen) for r in rewards]
        with self._numpy_stream():
            for task, reward, p in zip(tasks, rewards, progress):
                self.curriculum.update_task_progress(task, p)
                self.curriculum.update_on_episode(float(reward), 1, task, p)
        self.log.append({"tasks": list(tasks), "rewards": [float(r) for r in rewards]})
        return progress

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        self._chosen = self._sample(count)
        out = []
        for index in self._chosen:
            task = self.tasks[index]
            out.append(self.generator.problems(self.dataset_size, range(task.lo, task.hi + 1),
                                               seed=self.rng.randrange(2**31), skills=task.skills))
        return out

    def learn(self, rewards: list[float], infos: list[dict]) -> dict[str, float]:
        if len(rewards) != len(self._chosen):
            raise ValueError(f"learn expects one reward per proposed dataset ({len(self._chosen)}), "
                             f"actual {len(rewards)}")
        progress = self._update(self._chosen, rewards)
        chosen = [self.tasks[i] for i in self._chosen]
        return {
            "distinct_tasks": float(len(set(self._chosen))),
            "off_target_share": float(np.mean([t.off_target for t in chosen])),
            "mean_min_length": float(np.mean([t.lo for t in chosen])),
            "single_skill_share": float(np.mean([len(t.skills) == 1 for t in chosen])),
            "mean_progress": float(np.mean(progress)),
        }

    def round_stats(self) -> dict[str, float]:
        return {"tasks": float(len(self.tasks))}

    def task_names(self, indices: list[int] | None = None) -> list[str]:
        """Names of ``indices`` (default: the last proposal's tasks), e.g. ``len4-6/+-*/on``."""
        return [self.tasks[i].name for i in (self._chosen if indices is None else indices)]

    # ---- state: the log, replayed -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log": [dict(entry) for entry in self.log]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._start_curriculum()
        for i, entry in enumerate(state["log"]):
            tasks = self._sample(len(entry["tasks"]))
            if tasks != list(entry["tasks"]):
                raise ValueError(f"replaying round {i} drew tasks {tasks}, the checkpoint has "
                                 f"{entry['tasks']} (another Syllabus version or teacher seed)")
            self._update(tasks, entry["rewards"])


# ---- the two curricula, built on Syllabus's classes when first used ----------------------
_CLASSES: dict[str, type] = {}


def _curricula() -> dict[str, type]:
    if not _CLASSES:
        syllabus = import_syllabus()
        _CLASSES.update(_define(syllabus))
    return _CLASSES


def _define(syllabus: Any) -> dict[str, type]:
    from syllabus.curricula import OnlineLearningProgress
    from syllabus.curricula.plr.task_sampler import TaskSampler

    class EpisodicPLR(syllabus.core.Curriculum):
        """Prioritized Level Replay on Syllabus's ``TaskSampler``, one score per episode.

        The score of a task is its last episode return (``alpha=1.0``, PLR's default);
        ``replay_prob=1.0`` with ``rho=1.0``: unseen tasks first, then replay only (the
        finite-level-set case of PLR's proportionate schedule, and the path of 0.7's
        sampler that needs no evaluator). Other keyword arguments go to ``TaskSampler``.
        """

        def __init__(self, task_space: Any, **sampler_settings: Any):
            super().__init__(task_space)
            settings = {"strategy": "value_l1", "replay_schedule": "proportionate", "rho": 1.0,
                        "replay_prob": 1.0, "score_transform": "rank", "temperature": 0.1,
                        "staleness_coef": 0.1, "alpha": 1.0, **sampler_settings}
            self.sampler = TaskSampler(list(self.tasks), num_steps=1, num_actors=1, **settings)

        def update_on_episode(self, episode_return: float, length: int, task: Any, progress: float,
                              env_id: int | None = None) -> None:
            super().update_on_episode(episode_return, length, task, progress, env_id)
            score = float(episode_return)
            self.sampler.update_task_score(0, int(task), score, score, 1)

        def _sample_distribution(self) -> list[float]:
            return list(self.sampler.sample_weights())

        def sample(self, k: int = 1) -> list[int]:
            return [self.sampler.sample() for _ in range(k)]

    class ContinuousLearningProgress(OnlineLearningProgress):
        """``OnlineLearningProgress`` with continuous progress: a task's rate in a window is
        the mean progress of its episodes (Syllabus 0.7 adds ``floor(progress)``, a success
        only at progress 1.0)."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.current_task_success_rates = self.current_task_success_rates.astype(np.float64)

        def _sample_distribution(self) -> list[float]:
            # A list: 0.7's Curriculum.sample compares the distribution with [] (an array fails).
            return list(super()._sample_distribution())

        def update_task_progress(self, task: int, progress: float, env_id: int | None = None) -> None:
            self.current_task_success_rates = self.current_task_success_rates.astype(np.float64)
            self.current_task_success_rates[task] += min(max(float(progress), 0.0), 1.0)
            self.current_task_counts[task] += 1
            self.completed_tasks += 1

    return {"EpisodicPLR": EpisodicPLR, "ContinuousLearningProgress": ContinuousLearningProgress}
