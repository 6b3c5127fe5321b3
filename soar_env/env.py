"""``SoarEnv``: the student-learning process as a Gymnasium environment."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from soar_env import threads
from soar_env.config import PRESETS, SoarConfig, domain_preset
from soar_env.context import TeacherContext
from soar_env.episode import STATS, Episode
from soar_env.executors import make_executor
from soar_env.hardset import HardSet
from soar_env.lab import InnerRun, StudentLab
from soar_env.machine import Machine
from soar_env.problems import CHARSET, Problem, problems_from_action
from soar_env.promotion import PromotedBank
from soar_env.rewards import INTRINSIC, intrinsic_reward
from soar_env.student.hf import HFStudent
from soar_env.student.vllm_student import configure_engine


class SoarEnv(gym.Env):
    """SOAR: a teacher writes problems, the student trains on them, the reward is what it learned.

    ## Description
    The student-learning process of SOAR ("Teaching Models to Teach Themselves: Reasoning at
    the Edge of Learnability", arXiv 2601.18778). The teacher (the agent) proposes a dataset
    of ``n`` problems; the env trains the baseline student on it with RLOO (``r`` independent
    runs of ``K`` steps, each from the baseline) and pays the mean gain of the student's
    accuracy on ``M`` reward questions from a hard set (problems the base student solved 0
    times in ``k`` tries). ``g`` steps form a round (the paper's outer step): the reward
    questions and the baseline's accuracy are drawn once per round, and at its end the
    promotion rule may replace the baseline (``soar_env.episode``).

    ## Action Space
    ``Tuple`` of ``n`` ``Dict(question=Text, answer=Text)`` (``CHARSET``, at most
    ``domain.max_text`` characters); also lists of ``Problem``, pairs or dicts, and the
    teacher's raw text (``soar_env.problems``). Each problem is judged alone: an unusable one
    is counted in ``info["invalid_problems"]`` (reasons: ``info["parse_errors"]``), never
    trained on. Only a structurally wrong action raises ``ValueError`` (docs/env.md).

    ## Observation Space
    ``Dict(prompt=Text, stats=Box(-1, 1, (8,)))``: the domain's teacher prompt (no example
    problem) and ``stats`` (``soar_env.episode.STATS``): round / rounds, position in round / g,
    baseline accuracy, last reward, moving average of round means, promotions / rounds,
    promoted-bank size / (n * rounds), inner steps / max inner steps.

    ## Rewards
    ``reward_mode='grounded'``: ``mean_j Acc(theta'_j, Q_R) - Acc(theta, Q_R)`` (``Acc`` by
    ``accuracy``: 'greedy', 'sampled' or 'exact'). Intrinsic modes (``soar_env.rewards``) score
    the baseline's success rates and train nothing (``measure_grounded=True`` reports the
    grounded reward too). No valid problem: ``floor_reward`` (0.0: nothing learned).

    ## Starting State
    The base student is the baseline; the first reset builds (or reads) the hard set.

    ## Episode End
    Never terminated; truncated after ``rounds * g`` steps (one teacher-training run).

    ## Arguments
    ``gym.make(id, **overrides)``: any ``SoarConfig`` field, or ``config=``; ``preset`` (the
    defaults, ``soar_env.config.PRESETS``); ``domain=`` (a name or a ``Domain``); the machine
    settings (``soar_env.machine.Machine``) as keywords or ``machine=``; ``timing_in_info``
    (wall seconds in ``info``) and ``progress`` (bars). All of them: docs/env.md.

    ## Version History
    v0: Tiny, MATH, HARP, CHAMP; v1: Tiny (off-target family); v2: Tiny (keys and traps).
    """

    metadata = {"render_modes": []}

    def __init__(self, config: SoarConfig | None = None, preset: str = "tiny",
                 timing_in_info: bool = False, progress: bool = False, domain: Any = None,
                 machine: Machine | None = None, **overrides: Any):
        from soar_env.domains.base import make_domain

        machine = Machine.from_keywords(machine, overrides)  # the rest are SoarConfig fields
        if config is None:
            if preset not in PRESETS:
                raise ValueError(f"preset expects one of {tuple(PRESETS)}, actual {preset!r}")
            config = PRESETS[preset]()
        if isinstance(domain, str):
            overrides["domain"] = domain
        config = config.replace(**overrides) if overrides else config
        # A Domain object (or the registered name in config.domain) decides prompts, grading,
        # hard-set candidates and the default student: nothing below depends on which.
        given = domain is not None and not isinstance(domain, str)
        self.domain = make_domain(domain if given else config.domain, config)
        if given:  # config.domain keeps a registered name; an object records its own name
            config = config.replace(domain=self.domain.name)
        if config.accuracy == "exact" and not self.domain.exact_answers:
            raise ValueError(f"accuracy='exact' needs answers that are one exact string; the "
                             f"{self.domain.name} domain's are not: use 'greedy' or 'sampled'")
        self.config, self.timing_in_info, self.progress = config, timing_in_info, progress
        student = config.student or self.domain.default_student
        if not student:
            raise ValueError(f"The {self.domain.name} domain expects student= (a local model "
                             "folder or hub id); none was given")
        # Where the work runs (soar_env.machine): the lab owns the weights (student, KL
        # reference, base and baseline), the executor runs a round's inner runs.
        machine = machine.place(domain_preset(self.domain).student_device, self.domain.name)
        if machine.threads:
            threads.fix(machine.threads)
        kl = config.rl.kl_coef > 0  # with Ray actors training, this student only measures: no reference
        self.lab = StudentLab.open(student, self.domain, machine, kl and machine.executor != "ray")
        if machine.student_backend == "vllm":  # this env's and each Ray actor's engine options
            machine = replace(machine, vllm_options=configure_engine(
                self.lab.student, self.lab.student_prompt, self.domain.max_text,
                max(config.rl.max_new_tokens, self.domain.max_answer_tokens or 0), machine.vllm_options))
        self.machine = machine
        self._executor = make_executor(machine, self.lab, student, config.kl_reference, kl, progress)
        self.executor = self._executor.name
        self.hard_set: HardSet | None = None
        self.episode: Episode | None = None  # made by reset()
        text = spaces.Text(max_length=self.domain.max_text, min_length=0, charset=sorted(CHARSET))
        problem = spaces.Dict({"question": text, "answer": text})
        self.action_space = spaces.Tuple([problem] * config.dataset_size)
        self.observation_space = spaces.Dict({
            "prompt": spaces.Text(max_length=1024, min_length=0, charset=sorted(CHARSET)),
            "stats": spaces.Box(-1.0, 1.0, (len(STATS),), dtype=np.float32),
        })

    # ---- public state ---------------------------------------------------------------
    @property
    def vllm_options(self) -> dict[str, Any] | None:
        """The vLLM engine's options (``student_backend='vllm'``; else None)."""
        return self.machine.vllm_options

    @property
    def student(self) -> HFStudent:
        """The student model (its weights are the lab's: ``env.lab``)."""
        return self.lab.student

    @property
    def reference(self) -> HFStudent | None:
        """The frozen KL reference (None without a KL term)."""
        return self.lab.reference

    @property
    def compute(self) -> dict[str, float]:
        """What this episode used: wall seconds in ``step``, sampled tokens, student updates."""
        return self.episode.compute if self.episode else {"wall_seconds": 0.0, **StudentLab.no_usage()}

    @property
    def baseline(self) -> dict:
        """The current baseline student's weights (load with ``student.restore``)."""
        return self.lab.baseline

    @property
    def promoted_bank(self) -> PromotedBank:
        return self._episode("promoted_bank").bank

    @property
    def base_weights(self) -> dict:
        """The base student's weights (the start of every episode and of fresh students)."""
        return self.lab.base

    def teacher_context(self) -> TeacherContext:
        """What a teacher may know of this env (after ``reset``): ``soar_env.context``."""
        if self.hard_set is None:
            raise RuntimeError("Call reset() before teacher_context()")
        cfg = self.config
        return TeacherContext(self.domain, self.domain.teacher_prompt, cfg.dataset_size, cfg.group_size,
                              cfg.rounds, tuple(self.hard_set.train), self.lab.student, self.lab.base)

    def student_prompt(self, question: str) -> str:
        """The prompt the student sees for ``question`` (its chat template applied)."""
        return self.lab.student_prompt(question)

    def _episode(self, caller: str) -> Episode:
        if self.episode is None:
            raise RuntimeError(f"Call reset() before {caller}()")
        return self.episode

    # ---- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything an episode has changed, at a round boundary (for resuming a run).

        With ``load_state_dict`` on a fresh env reset with the same seed and config, the
        rest of the episode is what it would have been (same weights, same random streams).
        """
        episode = self._episode("state_dict").state_dict()  # checks the round boundary first
        return {"baseline": None if self.lab.baseline is self.lab.base else self.lab.baseline, **episode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` into an env that has been ``reset``."""
        episode = self._episode("load_state_dict")
        self.lab.set_baseline(state["baseline"], self.config.kl_reference)
        self.lab.load_baseline()
        episode.load_state_dict(state)

    # ---- gymnasium API --------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cfg, lab = self.config, self.lab
        if self.hard_set is None:
            self.hard_set = lab.hard_set(self.domain.hard_candidates(cfg.hard_candidates, cfg.hard_seed),
                                         cfg.hard_k, cfg.hard_seed,
                                         self.domain.max_answer_tokens or cfg.rl.max_new_tokens)
        lab.set_baseline(None)
        lab.load_baseline()
        self.episode = Episode(cfg, self.np_random)  # compute is counted per episode (one teacher run)
        return self.observation(), {"hard_set": dict(self.hard_set.meta)}

    def step(self, action):
        self._episode("step")
        # The last run's weights stay live in the serial case (copied only if promoted).
        return self._steps([action], keep_last=self.executor != "serial")[0]

    def step_round(self, actions) -> list[tuple]:
        """The ``g`` actions of a round at once: what ``g`` calls of ``step`` would return.

        Every seed is drawn first, in the order ``step`` draws them, then all ``g x r`` inner
        runs go to the executor together (``executor='process'`` runs them in parallel), so
        the results equal stepping one by one, bit for bit. Intrinsic reward modes step one
        by one (there is nothing to run in parallel). Starts at a round boundary.
        """
        episode, cfg = self._episode("step_round"), self.config
        if episode.position != 0:
            raise ValueError(f"step_round expects a round boundary, actual position {episode.position}")
        if len(actions) != cfg.group_size:
            raise ValueError(f"step_round expects {cfg.group_size} actions (group_size), "
                             f"actual {len(actions)}")
        if cfg.reward_mode in INTRINSIC:
            return [self.step(action) for action in actions]
        return self._steps(actions, keep_last=True)

    def _steps(self, actions, keep_last: bool) -> list[tuple]:
        """Open each action's step (its seeds drawn), run all their inner runs at once, close each."""
        cfg, episode, started = self.config, self.episode, time.perf_counter()
        trains = cfg.reward_mode not in INTRINSIC or cfg.measure_grounded
        opened, jobs = [], []
        for offset, action in enumerate(actions):
            problems, info = self._open_step(action, episode.position + offset)
            own = episode.jobs(problems, keep_last) if problems and trains else []
            opened.append((problems, info, own))
            jobs += own
        results, out = iter(self._executor.run(jobs) if jobs else []), []
        for problems, info, own in opened:
            done = [next(results) for _ in own] if own else None
            out.append(self._close_step(problems, info, done, started))
            started = time.perf_counter()  # a round's wall time is on its first step
        return out

    def _open_step(self, action, position: int) -> tuple[list[Problem], dict[str, Any]]:
        """Validate an action; the first of a round draws the reward questions."""
        cfg, episode = self.config, self.episode
        problems, errors = problems_from_action(action, self.domain, cfg.dataset_size, self.domain.max_text)
        if position == 0:
            questions = episode.draw_reward_questions(self.hard_set.train)
            self.lab.load_baseline()
            episode.start_round(questions, self.accuracy(questions))
        info = episode.step_info(position, len(problems), errors)
        if self.domain.solver is not None and problems:
            info["answers_correct"] = sum(self.domain.solver.is_correct(p.question, p.answer)
                                          for p in problems)
        return problems, info

    def _close_step(self, problems: list[Problem], info: dict[str, Any],
                    done: list[tuple[InnerRun | str, dict[str, int]]] | None, started: float) -> tuple:
        cfg, episode = self.config, self.episode
        grounded, median = episode.grounded_reward(done, info) if done is not None else (None, None)
        if cfg.reward_mode in INTRINSIC:
            reward = self._intrinsic(problems, info) if problems else cfg.floor_reward
            if grounded is not None:
                info["grounded_reward"] = grounded
        else:
            reward = grounded if grounded is not None else cfg.floor_reward
            if grounded is not None:  # the round's best dataset and its median student (promotion)
                episode.offer(reward, problems, median, self.lab.snapshot)
        promoted = episode.end_step(reward, info)
        if promoted is not None:
            self.lab.set_baseline(promoted.weights, cfg.kl_reference)
        self.lab.load_baseline()
        episode.clock(time.perf_counter() - started, info, self.timing_in_info)
        return self.observation(), float(reward), False, episode.truncated, info

    # ---- measurements on the env's own lab ----------------------------------------
    def accuracy(self, problems: list[Problem]) -> float:
        """The current student's ``Acc`` on ``problems``, by the configured measure."""
        episode = self._episode("accuracy")
        with episode.counting(self.lab):
            return self.lab.accuracy(problems, **episode.measure())

    def _intrinsic(self, problems: list[Problem], info: dict) -> float:
        import torch

        cfg, lab = self.config, self.lab
        lab.load_baseline()
        s = cfg.intrinsic_samples
        generator = torch.Generator(device=lab.student.device.type).manual_seed(self.episode.seed())
        with self.episode.counting(lab):
            successes = lab.success_counts(problems, s, cfg.rl.max_new_tokens, generator)
        info["success_rates"] = [c / s for c in successes]
        return intrinsic_reward(cfg.reward_mode, successes, s, [p.question for p in problems])

    def close(self) -> None:
        """Stop worker processes (``executor='process'``)."""
        if hasattr(self, "_executor"):
            self._executor.close()

    def observation(self) -> dict:
        """The observation of the env's current state (what ``reset``/``step`` return)."""
        return {"prompt": self.domain.teacher_prompt, "stats": self._episode("observation").stats()}
