"""``Episode``: one teacher-training run of the env, round by round.

The env serves the Gym API and runs the experiments; the episode keeps what they add up to:
where the run is (round, position in the round), the round's reward questions and the
baseline's accuracy on them, the round's rewards and its best dataset (the promotion
candidate), the promotion rule, the promoted bank, the inner-step budget, the compute used,
the observation's figures, and the random stream every seed of the episode is drawn from
(the env's ``np_random``). One ``state_dict`` holds all of it (the env adds the baseline's
weights). ``grounded_reward`` turns a step's inner runs into its reward.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from soar_env.config import SoarConfig
from soar_env.inner_jobs import InnerJob
from soar_env.lab import InnerRun, StudentLab
from soar_env.problems import Problem
from soar_env.promotion import PromotedBank, PromotionRule

STATS = ("round_fraction", "round_position", "baseline_accuracy", "last_reward",
         "moving_average", "promotions", "bank_fraction", "inner_steps_fraction")
"""The observation's ``stats``, in order (each clipped to [-1, 1]; ``Episode.stats``)."""


@dataclass
class Candidate:
    """The round's best dataset so far and its median inner run (whose weights a promotion keeps)."""

    reward: float
    dataset: list[Problem]
    run: InnerRun


class Episode:
    """The state of one episode (see the module docstring); the env makes a new one at ``reset``."""

    def __init__(self, config: SoarConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.round = self.position = self.promotions = 0
        self.inner_steps = config.inner_steps
        self.last_reward = self.baseline_accuracy = self.wall_seconds = 0.0
        self.round_rewards: list[float] = []
        self.reward_questions: list[Problem] = []
        self.best: Candidate | None = None
        self.promotion = PromotionRule(config.tau, config.ma_window, config.ma_reset_after_promotion)
        self.bank = PromotedBank()
        self.usage = StudentLab.no_usage()

    @property
    def truncated(self) -> bool:
        return self.round >= self.config.rounds

    @property
    def compute(self) -> dict[str, float]:
        """What this episode used: wall seconds in ``step``, sampled tokens, student updates."""
        return {"wall_seconds": self.wall_seconds, **self.usage}

    # ---- draws: every seed of the episode, in the order the steps need them ---------------
    def seed(self) -> int:
        return int(self.rng.integers(2**31 - 1))

    def measure(self) -> dict[str, Any]:
        """``StudentLab.accuracy``'s settings, with a seed drawn now (none for 'exact')."""
        cfg = self.config
        return {"measure": cfg.accuracy, "samples": cfg.accuracy_samples,
                "max_new_tokens": cfg.rl.max_new_tokens,
                "seed": None if cfg.accuracy == "exact" else self.seed()}

    def draw_reward_questions(self, train: list[Problem]) -> list[Problem]:
        """The round's ``M`` reward questions, drawn from the hard set's train split."""
        size = min(self.config.reward_questions, len(train))
        return [train[i] for i in sorted(self.rng.choice(len(train), size=size, replace=False))]

    def jobs(self, problems: list[Problem], keep_last: bool) -> list[InnerJob]:
        """The r inner runs of a dataset, every seed drawn now (training draws none of the
        episode's); all but the last keep their weights (``keep_last``: the last too)."""
        cfg, jobs = self.config, []
        for j in range(cfg.inner_runs):
            seed, measure = self.seed(), self.measure()
            jobs.append(InnerJob(tuple(problems), self.inner_steps, cfg.rl, seed,
                                 tuple(self.reward_questions), measure, self.baseline_accuracy,
                                 keep_weights=keep_last or j < cfg.inner_runs - 1))
        return jobs

    # ---- rounds ----------------------------------------------------------------------------
    def start_round(self, reward_questions: list[Problem], baseline_accuracy: float) -> None:
        self.reward_questions, self.baseline_accuracy = reward_questions, baseline_accuracy
        self.round_rewards, self.best = [], None

    def count(self, used: dict[str, int]) -> None:
        """Add sampled tokens and student updates, wherever they were used."""
        for key, value in used.items():
            self.usage[key] += value

    @contextmanager
    def counting(self, lab: StudentLab) -> Iterator[None]:
        """Count what the block uses of ``lab`` (the env's own measurements)."""
        with lab.counting() as used:
            yield
        self.count(used)

    def step_info(self, position: int, valid: int, errors: list[str]) -> dict[str, Any]:
        """A step's ``info`` as it opens: where it is, what its action held, the round's figures."""
        return {"round": self.round, "round_position": position, "valid_problems": valid,
                "invalid_problems": len(errors), "parse_errors": errors[:8], "inner_steps": self.inner_steps,
                "baseline_accuracy": self.baseline_accuracy}

    def grounded_reward(self, done: list[tuple[InnerRun | str, dict[str, int]]],
                        info: dict[str, Any]) -> tuple[float | None, InnerRun | None]:
        """A step's reward from its r inner runs (done: each run or its divergence message, and
        what it used, counted here), and the median run (the promotion candidate).

        Runs whose update went non-finite are skipped and listed in ``info['nonfinite_runs']``;
        when every run failed the result is ``(None, None)`` and the step pays ``floor_reward``.
        The runs' figures go in ``info``.
        """
        for _, used in done:  # counted per step, wherever the runs ran
            self.count(used)
        runs = [r for r, _ in done if isinstance(r, InnerRun)]
        failed = [r for r, _ in done if isinstance(r, str)]
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

    def offer(self, reward: float, dataset: list[Problem], run: InnerRun, snapshot: Any) -> None:
        """Keep ``dataset`` as the round's promotion candidate if it beats the best so far;
        ``snapshot()`` gives the run's weights when the run did not keep them (the last run's
        are still live in the student: copied only now that they may be needed)."""
        if self.best is None or reward > self.best.reward:
            if run.weights is None:
                run.weights = snapshot()
            self.best = Candidate(reward, dataset, run)

    def end_step(self, reward: float, info: dict[str, Any]) -> InnerRun | None:
        """Record a step's reward, and in ``info`` the round's and the bank's figures. At the
        end of a round, apply the promotion rule: returns the run whose weights become the
        baseline when it promotes."""
        self.round_rewards.append(reward)
        self.last_reward = reward
        self.position += 1
        info["promoted"] = False
        promoted = self._end_round(info) if self.position == self.config.group_size else None
        info["bank_size"] = len(self.bank)
        info["promotions"] = self.promotions
        return promoted

    def _end_round(self, info: dict[str, Any]) -> InnerRun | None:
        cfg, best, self.best = self.config, self.best, None
        round_mean = float(np.mean(self.round_rewards))
        promote = self.promotion.end_round(round_mean) and best is not None
        info.update(round_mean_reward=round_mean, moving_average=self.promotion.moving_average,
                    promoted=promote)
        if promote:
            self.bank.add(best.dataset, self.round)
            self.promotions += 1
            self.inner_steps = min(cfg.max_inner_steps, self.inner_steps + cfg.promotion_extra_steps)
            info["promoted_reward"] = best.reward
        self.round += 1
        self.position = 0
        return best.run if promote else None

    def clock(self, seconds: float, info: dict[str, Any], timing: bool) -> None:
        """Add a step's wall seconds; ``info["compute"]`` is what the episode used so far (with
        ``timing``, the seconds too: they differ between identical runs)."""
        self.wall_seconds += seconds
        info["compute"] = dict(self.usage)
        if timing:
            info["compute"]["wall_seconds"] = self.wall_seconds
            info["step_seconds"] = seconds

    def stats(self) -> np.ndarray:
        """The observation's ``STATS``, clipped to [-1, 1]."""
        cfg = self.config
        stats = np.array([
            self.round / cfg.rounds, self.position / cfg.group_size, self.baseline_accuracy,
            self.last_reward, self.promotion.moving_average, self.promotions / cfg.rounds,
            len(self.bank) / (cfg.dataset_size * cfg.rounds), self.inner_steps / cfg.max_inner_steps,
        ], dtype=np.float32)
        return np.clip(stats, -1.0, 1.0)

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The episode at a round boundary, as plain data (the problems as dicts). The format
        is the env's since before the episode had a class of its own: older checkpoints load as they are."""
        if self.position != 0:
            raise ValueError(f"Expects a round boundary to save the env, actual position {self.position} "
                             f"of {self.config.group_size} in round {self.round}")
        return {
            "np_random": self.rng.bit_generator.state,
            "promotion": self.promotion.state_dict(),
            "bank": {"problems": [p.to_dict() for p in self.bank.problems], "rounds": list(self.bank.rounds)},
            "round": self.round, "inner_steps": self.inner_steps, "promotions": self.promotions,
            "last_reward": self.last_reward, "round_rewards": list(self.round_rewards),
            "baseline_accuracy": self.baseline_accuracy, "compute": self.compute,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["np_random"]
        self.promotion.load_state_dict(state["promotion"])
        self.bank = PromotedBank([Problem.from_dict(p) for p in state["bank"]["problems"]],
                                 list(state["bank"]["rounds"]))
        self.round, self.position = state["round"], 0
        self.inner_steps, self.promotions = state["inner_steps"], state["promotions"]
        self.last_reward, self.round_rewards = state["last_reward"], list(state["round_rewards"])
        self.baseline_accuracy = state["baseline_accuracy"]
        self.wall_seconds = state["compute"]["wall_seconds"]
        self.usage = {key: state["compute"][key] for key in self.usage}
        self.best = None
