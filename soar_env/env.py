"""``SoarEnv``: the student-learning process as a Gymnasium environment."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from soar_env.config import PRESETS, SoarConfig
from soar_env.context import TeacherContext
from soar_env.executors import InnerJob, make_executor
from soar_env.hardset import HardSet, build_hard_set
from soar_env.lab import InnerRun, StudentLab
from soar_env.problems import CHARSET, Problem, problems_from_action
from soar_env.promotion import PromotedBank, PromotionRule
from soar_env.rewards import INTRINSIC, intrinsic_reward
from soar_env.student import BACKENDS, load_student
from soar_env.student.hf import HFStudent
from soar_env.student.vllm_student import configure_engine

STATS = ("round_fraction", "round_position", "baseline_accuracy", "last_reward",
         "moving_average", "promotions", "bank_fraction", "inner_steps_fraction")


class SoarEnv(gym.Env):
    """SOAR: a teacher writes problems, the student trains on them, the reward is what it learned.

    ## Description
    The environment is the student-learning process of SOAR ("Teaching Models to Teach
    Themselves: Reasoning at the Edge of Learnability", arXiv 2601.18778). An agent (the
    teacher) proposes a dataset of ``n`` problems; the environment trains the current
    baseline student on them with RLOO (``r`` independent runs of ``K`` steps, each from the
    baseline and reset after) and pays the mean improvement of the student's accuracy on
    ``M`` reward questions drawn from a hard set: problems the base student solved 0 times
    in ``k`` tries. ``g`` consecutive steps form a round (the paper's outer step): the
    reward questions and the baseline's accuracy are drawn and measured once per round, and
    at the end of each round the promotion rule may replace the baseline.

    ## Action Space
    ``Tuple`` of ``n`` ``Dict(question=Text, answer=Text)``: texts of at most 64 characters
    (SOAR-Tiny-v0) or 4096 (math) over printable ASCII with tab and newline (``CHARSET``).
    Every member of the space is accepted without error. The env also accepts, beyond it:
    a list (or 1-D array) of ``Problem``, of ``(question, answer)`` pairs or of dicts (extra
    keys ignored), and the teacher's raw text in the paper's format
    ``<question>...</question><answer>\\boxed{...}</answer>``. The rules are the same on
    every path and judge each problem, never the whole action: a text over the length, a
    character outside the domain's charset (chain: ``CHARSET``, and ASCII digits where its
    grammar has digits; math: any printable Unicode such as ×, π, ≤, i.e. more than the
    space, but no control character except tab and newline, so the space's ``\\r`` is
    counted invalid there), an empty field or a problem the domain cannot use (unparseable,
    answer of the wrong shape) is counted in ``info["invalid_problems"]`` with its reason in
    ``info["parse_errors"]`` and never trained on. Raw text is read up to
    ``n * 2 * (max length + 64)`` characters and for its first ``n`` pairs; the rest is
    counted invalid (``soar_env.problems.raw_text_cap``). Only a structurally wrong action
    raises ``ValueError`` saying what was expected: not a sequence or str, a count other
    than ``n``, an item that is not a problem, a field that is not a str.

    ## Observation Space
    ``Dict(prompt=Text, stats=Box(-1, 1, (8,)))``: the teacher prompt of the domain (it
    contains no example problem) and ``stats`` = (round / rounds, position in round / g,
    baseline accuracy on the round's reward questions, last reward, moving average of
    round means, promotions / rounds, promoted-bank size / (n * rounds), inner steps /
    max inner steps).

    ## Rewards
    ``reward_mode='grounded'`` (default): ``mean_j Acc(theta'_j, Q_R) - Acc(theta, Q_R)``.
    ``Acc`` is ``accuracy``: 'greedy' (the paper's), 'sampled' (mean pass rate of
    ``accuracy_samples`` samples at temperature 1) or 'exact' (exact expected pass@1,
    ``exp log p(correct answer)``, for exact-match domains; the SOAR-Tiny-v0 default, the
    only measure that separates datasets at 10 inner steps on CPU).
    Intrinsic modes ('learnability', 'rzero', 'azr', 'sqlm', 'spice', see
    ``soar_env.rewards``) score each valid question by the baseline student's success rate
    over ``intrinsic_samples`` samples against the teacher's answer and need no training;
    ``measure_grounded=True`` also reports the grounded reward in ``info``.
    A dataset with no valid problem gets ``floor_reward`` (default 0.0: nothing trained,
    nothing learned).

    ## Starting State
    The baseline student is the base model; the promoted bank is empty; the hard set is
    built (or read from its cache) on the first reset.

    ## Episode End
    Never terminated; truncated after ``rounds * g`` steps (the teacher-training run).

    ## Arguments
    ``gym.make("SOAR-Tiny-v0", **overrides)`` with any ``SoarConfig`` field, e.g.
    ``reward_mode="learnability"``, ``rl=RLOOConfig(...)``; or ``config=SoarConfig(...)``;
    ``preset`` ('tiny', 'tiny_v1' or 'paper') picks the defaults. The math ids (SOAR-MATH-v0,
    SOAR-HARP-v0, SOAR-CHAMP-v0) need ``student=`` (folder or hub id) and, except CHAMP,
    ``dataset=`` (a MATH-format file). ``timing_in_info=True`` adds wall-clock seconds to
    ``info`` (off by default: they differ between identical runs, so Gymnasium's
    determinism check would fail); they are always on ``env.unwrapped.compute``.
    ``progress=True`` shows a transient progress bar over each inner run's RLOO steps.
    ``domain=`` a registered name or a ``Domain`` object (``docs/domains.md``).
    Machine settings (not recorded as algorithm settings): ``max_batch_tokens=N`` bounds
    the tokens of one forward pass (sampling in prompt chunks, updates in micro-batches:
    for large students); ``precision`` is 'fp32' (CPU default), 'bf16-mixed' (CUDA
    default: fp32 master weights, bf16 compute) or 'bf16'; ``student_backend`` is 'hf'
    (default) or 'vllm' (sampling on a colocated vLLM engine, GPU only: docs/scale.md), with
    ``vllm_options={...}`` over defaults derived from the config (``env.vllm_options``);
    ``device`` places the env's own student (default: CUDA when available; the CPU for the
    tiny ids and under ``executor='ray'``, whose actors train); ``executor`` is 'auto'
    (default: 'lockstep' for small CPU Llama students, else 'serial'), 'serial', 'lockstep',
    'process' or 'ray' (``soar_env.executors``).

    ## Version History
    * v0: initial version (SOAR-Tiny-v0, SOAR-MATH-v0, SOAR-HARP-v0, SOAR-CHAMP-v0).
    * v0, package 0.2.0: SOAR-Tiny-v0's promotion threshold 2e-6 -> 4e-6 (the old one was
      below the untrained teacher's reward); SOAR-HARP-v0 evaluates in mixed mode; problems
      outside the charset are counted invalid instead of raising; wall-clock seconds leave
      ``info`` unless ``timing_in_info=True``.
    * v1 (SOAR-Tiny-v1): v0 plus an off-target family of chains (min, max, xor) that the
      student can learn and the hard set never uses, so an intrinsic reward has something to
      fail on; its own model (``chain_variant='v1'``). v0 is unchanged.
    * package 0.4.0: the tiny ids train a round's inner runs in lockstep as one stacked model
      (``executor='auto'`` -> 'lockstep' for small CPU Llamas). Same algorithm and settings;
      the numbers differ from 0.3.0 in float rounding and in the random streams (each run
      draws its own), so grounded rewards are re-recorded and shown equivalent in
      distribution (``benchmarks/equivalence.py``). ``executor='serial'`` keeps 0.3.0's path.
    """

    metadata = {"render_modes": []}

    def __init__(self, config: SoarConfig | None = None, preset: str = "tiny",
                 timing_in_info: bool = False, progress: bool = False, domain: Any = None,
                 max_batch_tokens: int | None = None, precision: str | None = None,
                 executor: str = "auto", num_workers: int | None = None,
                 student_backend: str = "hf", device: str | None = None,
                 vllm_options: dict[str, Any] | None = None, **overrides: Any):
        from soar_env.domains.base import make_domain
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
        self.config = config
        self.timing_in_info = timing_in_info
        self.progress = progress
        student = self.config.student or self.domain.default_student
        if not student:
            raise ValueError(f"The {self.domain.name} domain expects student= (a local model "
                             "folder or hub id); none was given")
        # Small-model domains run on CPU (they are faster there than on a GPU's launch overheads).
        # With Ray actors doing the inner runs, this student only measures: it stays on the
        # CPU unless given a device, so no GPU holds two students (docs/scale.md).
        tiny = self.domain.preset == "tiny"
        device = device or ("cpu" if tiny or executor == "ray" else None)
        # The lab owns the weights: student, KL reference, base and baseline snapshots.
        # Memory knobs of the machine, not of the algorithm (HFStudent): a token budget per
        # forward pass, and the precision ('bf16-mixed' on CUDA by default).
        if student_backend not in BACKENDS:
            raise ValueError(f"student_backend expects one of {BACKENDS}, actual {student_backend!r}")
        if student_backend == "vllm" and tiny:
            raise ValueError(f"student_backend='vllm' samples on a GPU; the {self.domain.name} domain's "
                             "small student runs on the CPU: use student_backend='hf'")
        if vllm_options and student_backend != "vllm":
            raise ValueError(f"vllm_options= is for student_backend='vllm', actual {student_backend!r}")
        here = "hf" if executor == "ray" and device == "cpu" else student_backend  # the actors sample
        model = load_student(student, here, device=device, precision=precision,
                             max_batch_tokens=max_batch_tokens)
        kl = self.config.rl.kl_coef > 0  # a KL reference is for training: none here when actors train
        self.lab = StudentLab(model, self.domain, kl_reference=kl and executor != "ray")
        # The engine's options (this env's engine and each Ray actor's): config defaults, then given.
        self.vllm_options = None if student_backend != "vllm" else configure_engine(
            model, self.lab.student_prompt, self.domain.max_text,
            max(self.config.rl.max_new_tokens, self.domain.max_answer_tokens or 0), vllm_options)
        # Where inner runs run (soar_env.executors): here, one by one or stacked in lockstep
        # ('auto': lockstep for small CPU students), or in worker processes.
        self._executor = make_executor(executor, self.lab, student, num_workers, precision,
                                       self.config.kl_reference, progress=progress,
                                       backend=student_backend, vllm_options=self.vllm_options,
                                       reference_copy=kl)
        self.executor = self._executor.name
        max_text = self.domain.max_text
        self.hard_set: HardSet | None = None
        text = spaces.Text(max_length=max_text, min_length=0, charset=sorted(CHARSET))
        problem = spaces.Dict({"question": text, "answer": text})
        self.action_space = spaces.Tuple([problem] * self.config.dataset_size)
        self.observation_space = spaces.Dict({
            "prompt": spaces.Text(max_length=1024, min_length=0, charset=sorted(CHARSET)),
            "stats": spaces.Box(-1.0, 1.0, (len(STATS),), dtype=np.float32),
        })
        self._max_text = max_text
        self._wall_seconds = 0.0

    # ---- public state ---------------------------------------------------------------
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
        return {"wall_seconds": self._wall_seconds, **self.lab.usage}

    @property
    def baseline(self) -> dict:
        """The current baseline student's weights (load with ``student.restore``)."""
        return self.lab.baseline

    @property
    def promoted_bank(self) -> PromotedBank:
        return self._bank

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

    # ---- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything an episode has changed, at a round boundary (for resuming a run).

        With ``load_state_dict`` on a fresh env reset with the same seed and config, the
        rest of the episode is what it would have been (same weights, same random streams).
        """
        if not hasattr(self, "_promotion"):
            raise RuntimeError("Call reset() before state_dict()")
        if self._pos != 0:
            raise ValueError(f"Expects a round boundary to save the env, actual position {self._pos} "
                             f"of {self.config.group_size} in round {self._round}")
        return {
            "baseline": None if self.lab.baseline is self.lab.base else self.lab.baseline,
            "np_random": self.np_random.bit_generator.state,
            "promotion": self._promotion.state_dict(),
            "bank": {"problems": [p.to_dict() for p in self._bank.problems],
                     "rounds": list(self._bank.rounds)},
            "round": self._round, "inner_steps": self._inner_steps, "promotions": self._promotions,
            "last_reward": self._last_reward, "round_rewards": list(self._round_rewards),
            "baseline_accuracy": self._baseline_accuracy, "compute": dict(self.compute),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` into an env that has been ``reset``."""
        if not hasattr(self, "_promotion"):
            raise RuntimeError("Call reset() before load_state_dict()")
        lab = self.lab
        lab.baseline = lab.base if state["baseline"] is None else state["baseline"]
        lab.load_baseline()
        lab.set_reference(lab.baseline if self.config.kl_reference == "baseline" else lab.base)
        self.np_random.bit_generator.state = state["np_random"]
        self._promotion.load_state_dict(state["promotion"])
        self._bank = PromotedBank([Problem.from_dict(p) for p in state["bank"]["problems"]],
                                  list(state["bank"]["rounds"]))
        self._round, self._pos = state["round"], 0
        self._inner_steps, self._promotions = state["inner_steps"], state["promotions"]
        self._last_reward, self._round_rewards = state["last_reward"], list(state["round_rewards"])
        self._baseline_accuracy = state["baseline_accuracy"]
        self._wall_seconds = state["compute"]["wall_seconds"]
        self.lab.usage = {k: state["compute"][k] for k in self.lab.usage}
        self._best = None

    # ---- gymnasium API --------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cfg = self.config
        if self.hard_set is None:
            self.lab.load(self.lab.base)
            self.hard_set = build_hard_set(
                self.student,
                self.lab,  # prompts in the chat template, the domain's grading
                self._candidates(),
                k=cfg.hard_k, seed=cfg.hard_seed,
                max_new_tokens=self.domain.max_answer_tokens or cfg.rl.max_new_tokens,
                progress=True,
            )
            if len(self.hard_set.train) < 1:
                raise RuntimeError(
                    f"The hard set is empty: none of {cfg.hard_candidates} candidates failed "
                    f"all {cfg.hard_k} tries. Use more candidates or a larger hard_k."
                )
        lab = self.lab
        lab.baseline = lab.base
        lab.load(lab.base)
        # Compute used is counted per episode (one teacher-training run).
        self._wall_seconds = 0.0
        lab.usage = {"sampled_tokens": 0, "student_updates": 0}
        lab.set_reference(lab.base)
        self._promotion = PromotionRule(cfg.tau, cfg.ma_window, cfg.ma_reset_after_promotion)
        self._bank = PromotedBank()
        self._round, self._pos, self._inner_steps = 0, 0, cfg.inner_steps
        self._promotions, self._last_reward = 0, 0.0
        self._round_rewards: list[float] = []
        self._reward_questions: list[Problem] = []
        self._baseline_accuracy = 0.0
        self._best: tuple[float, list[Problem], dict] | None = None
        return self.observation(), {"hard_set": dict(self.hard_set.meta)}

    def step(self, action):
        if not hasattr(self, "_promotion"):
            raise RuntimeError("Call reset() before step()")
        started = time.perf_counter()
        problems, info = self._open_step(action, self._pos)
        cfg = self.config
        results = None
        if problems and (cfg.reward_mode not in INTRINSIC or cfg.measure_grounded):
            # The last run's weights stay live in the serial case (copied only if promoted).
            results = self._executor.run(self._jobs(problems, keep_last=self.executor != "serial"))
        return self._close_step(problems, info, results, started)

    def step_round(self, actions) -> list[tuple]:
        """The ``g`` actions of a round at once: what ``g`` calls of ``step`` would return.

        Every seed is drawn first, in the order ``step`` draws them, then all ``g x r`` inner
        runs go to the executor together (``executor='process'`` runs them in parallel), so
        the results equal stepping one by one, bit for bit. Intrinsic reward modes step one
        by one (there is nothing to run in parallel). Starts at a round boundary.
        """
        if not hasattr(self, "_promotion"):
            raise RuntimeError("Call reset() before step_round()")
        cfg = self.config
        if self._pos != 0:
            raise ValueError(f"step_round expects a round boundary, actual position {self._pos}")
        if len(actions) != cfg.group_size:
            raise ValueError(f"step_round expects {cfg.group_size} actions (group_size), "
                             f"actual {len(actions)}")
        if cfg.reward_mode in INTRINSIC:
            return [self.step(action) for action in actions]
        started = time.perf_counter()
        opened, jobs = [], []
        for position, action in enumerate(actions):
            problems, info = self._open_step(action, position)
            own = self._jobs(problems, keep_last=True) if problems else []
            opened.append((problems, info, len(own)))
            jobs += own
        results = self._executor.run(jobs)
        out, at = [], 0
        for problems, info, count in opened:
            out.append(self._close_step(problems, info, results[at : at + count] if count else None,
                                        started))
            at += count
            started = time.perf_counter()  # the round's wall time is on the first step
        return out

    def _open_step(self, action, position: int) -> tuple[list[Problem], dict[str, Any]]:
        """Validate an action; the first of a round draws the reward questions."""
        cfg = self.config
        problems, errors = problems_from_action(action, self.domain, cfg.dataset_size, self._max_text)
        if position == 0:
            self._start_round()
        info: dict[str, Any] = {
            "round": self._round, "round_position": position,
            "valid_problems": len(problems), "invalid_problems": len(errors),
            "parse_errors": errors[:8], "inner_steps": self._inner_steps,
            "baseline_accuracy": self._baseline_accuracy,
        }
        if self.domain.solver is not None and problems:
            info["answers_correct"] = sum(self.domain.solver.is_correct(p.question, p.answer)
                                          for p in problems)
        return problems, info

    def _close_step(self, problems: list[Problem], info: dict[str, Any],
                    done: list[tuple[InnerRun | str, dict[str, int]]] | None, started: float) -> tuple:
        cfg = self.config
        results = None
        if done is not None:
            results = [result for result, _ in done]
            for _, used in done:  # counted per step, wherever the runs ran
                for key, value in used.items():
                    self.lab.usage[key] += value
        intrinsic = cfg.reward_mode in INTRINSIC
        grounded, median = self._grounded(results, info) if results is not None else (None, None)
        if intrinsic:
            reward = self._intrinsic(problems, info) if problems else cfg.floor_reward
            if grounded is not None:
                info["grounded_reward"] = grounded
        else:
            reward = grounded if grounded is not None else cfg.floor_reward
            if grounded is not None and (self._best is None or reward > self._best[0]):
                # Keep only the round's best dataset and its median student (promotion). The
                # last run's weights are still live: copy them only now that they may be needed.
                if median.weights is None:
                    median.weights = self.lab.snapshot()
                self._best = (reward, problems, median)
        self._round_rewards.append(reward)
        self._last_reward = reward
        self._pos += 1
        info["promoted"] = False
        if self._pos == cfg.group_size:
            info.update(self._end_round())
        info["bank_size"] = len(self._bank)
        info["promotions"] = self._promotions
        self.lab.load_baseline()
        seconds = time.perf_counter() - started
        self._wall_seconds += seconds
        info["compute"] = dict(self.lab.usage)
        if self.timing_in_info:
            info["compute"]["wall_seconds"] = self._wall_seconds
            info["step_seconds"] = seconds
        truncated = self._round >= cfg.rounds
        return self.observation(), float(reward), False, truncated, info

    # ---- rounds, rewards, promotion -----------------------------------------------------
    def _start_round(self) -> None:
        cfg = self.config
        train = self.hard_set.train
        idx = self.np_random.choice(len(train), size=min(cfg.reward_questions, len(train)),
                                    replace=False)
        self._reward_questions = [train[i] for i in sorted(idx)]
        self._round_rewards, self._best = [], None
        self.lab.load_baseline()
        self._baseline_accuracy = self.accuracy(self._reward_questions)

    def _candidates(self) -> list[Problem]:
        return self.domain.hard_candidates(self.config.hard_candidates, self.config.hard_seed)

    def _seed(self) -> int:
        return int(self.np_random.integers(2**31 - 1))

    def _measure(self) -> dict[str, Any]:
        """``lab.accuracy``'s settings, with a seed drawn now (none for 'exact')."""
        cfg = self.config
        return {"measure": cfg.accuracy, "samples": cfg.accuracy_samples,
                "max_new_tokens": cfg.rl.max_new_tokens,
                "seed": None if cfg.accuracy == "exact" else self._seed()}

    def accuracy(self, problems: list[Problem]) -> float:
        """The current student's ``Acc`` on ``problems``, by the configured measure."""
        return self.lab.accuracy(problems, **self._measure())

    def _jobs(self, problems: list[Problem], keep_last: bool) -> list[InnerJob]:
        """The r inner runs of a dataset, every seed drawn now (training draws none of the
        env's); all but the last keep their weights (``keep_last``: the last too)."""
        cfg = self.config
        jobs = []
        for j in range(cfg.inner_runs):
            seed, measure = self._seed(), self._measure()
            jobs.append(InnerJob(tuple(problems), self._inner_steps, cfg.rl, seed,
                                 tuple(self._reward_questions), measure, self._baseline_accuracy,
                                 keep_weights=keep_last or j < cfg.inner_runs - 1))
        return jobs

    def _grounded(self, results: list[InnerRun | str], info: dict) -> tuple[float | None, InnerRun | None]:
        """Mean reward of the r inner runs, and the median run (the promotion candidate).

        Runs whose update went non-finite (a message instead of a run) are skipped and
        listed in ``info['nonfinite_runs']``; when every run failed the result is
        ``(None, None)`` and the step pays ``floor_reward``.
        """
        runs = [r for r in results if isinstance(r, InnerRun)]
        failed = [r for r in results if isinstance(r, str)]
        if failed:
            info["nonfinite_runs"] = failed
        if not runs:
            return None, None
        info["run_rewards"] = [r.reward for r in runs]
        info["accuracy_after"] = [r.accuracy_after for r in runs]
        info["train_reward"] = [float(np.mean(r.train_rewards)) for r in runs]
        info["train_reward_last"] = [r.train_rewards[-1] for r in runs]
        # The median-reward run (lower median for even r) is the promotion candidate.
        median = sorted(runs, key=lambda r: r.reward)[(len(runs) - 1) // 2]
        return float(np.mean(info["run_rewards"])), median

    def _intrinsic(self, problems: list[Problem], info: dict) -> float:
        import torch

        cfg, lab = self.config, self.lab
        lab.load_baseline()
        s = cfg.intrinsic_samples
        generator = torch.Generator(device=lab.student.device.type).manual_seed(self._seed())
        successes = lab.success_counts(problems, s, cfg.rl.max_new_tokens, generator)
        info["success_rates"] = [c / s for c in successes]
        return intrinsic_reward(cfg.reward_mode, successes, s, [p.question for p in problems])

    def _end_round(self) -> dict:
        cfg = self.config
        round_mean = float(np.mean(self._round_rewards))
        promote = self._promotion.end_round(round_mean) and self._best is not None
        out = {"round_mean_reward": round_mean,
               "moving_average": self._promotion.moving_average, "promoted": promote}
        if promote:
            _, dataset, median = self._best
            self.lab.baseline = median.weights
            if cfg.kl_reference == "baseline":
                self.lab.set_reference(self.lab.baseline)
            self._bank.add(dataset, self._round)
            self._promotions += 1
            self._inner_steps = min(cfg.max_inner_steps, self._inner_steps + cfg.promotion_extra_steps)
            out["promoted_reward"] = self._best[0]
        self._best = None
        self._round += 1
        self._pos = 0
        return out

    def close(self) -> None:
        """Stop worker processes (``executor='process'``)."""
        if hasattr(self, "_executor"):
            self._executor.close()

    def observation(self) -> dict:
        """The observation of the env's current state (what ``reset``/``step`` return)."""
        cfg = self.config
        stats = np.array([
            self._round / cfg.rounds, self._pos / cfg.group_size, self._baseline_accuracy,
            self._last_reward, self._promotion.moving_average, self._promotions / cfg.rounds,
            len(self._bank) / (cfg.dataset_size * cfg.rounds), self._inner_steps / cfg.max_inner_steps,
        ], dtype=np.float32)
        return {"prompt": self.domain.teacher_prompt, "stats": np.clip(stats, -1.0, 1.0)}

