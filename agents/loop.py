"""One loop that runs any teacher on any registered env, with logs and checkpoints.

from soar_agents import make_teacher, train_teacher
teacher = make_teacher("soar")
history = train_teacher(teacher, "SOAR-Tiny-v0", rounds=20, seed=0, log_dir="runs/soar")
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import soar_env
from soar_env.diagnostics import proposal_stats

from .logger import RunLogger
from .protocol import Teacher, save_atomic


def make_teacher_env(env_id: str, teacher: Teacher, **overrides: Any) -> gym.Env:
    """``gym.make(env_id)`` with the settings the teacher needs (e.g. its reward mode)."""
    import soar_env  # noqa: F401  (registers the ids)

    return gym.make(env_id, **{**teacher.env_overrides, **overrides})


def train_teacher(
    teacher: Teacher,
    env: gym.Env | str,
    rounds: int | None = None,
    seed: int = 0,
    log_dir: str | Path | None = None,
    progress: bool = True,
    checkpoint_every: int = 1,
    resume: bool = False,
    save_promoted: bool = True,
    **env_overrides: Any,
) -> list[dict[str, Any]]:
    """Train ``teacher`` for ``rounds`` rounds (default: the env's) and return one row per round.

    Each round: the teacher proposes ``g`` datasets, the env is stepped once per dataset,
    the teacher learns from the ``g`` rewards. With ``log_dir``:
    - every round is appended to ``rounds.csv`` and TensorBoard as it ends;
    - every ``checkpoint_every`` rounds (and at the end) the teacher (``teacher.pt``) and the
      whole run (``checkpoint.pt``: teacher, env state, history) are saved atomically;
    - each promoted student's weights go to ``promoted/round_R.pt`` (for PS evaluation).
    With ``resume=True`` a run continues from ``checkpoint.pt``: on CPU with the same seed
    the remaining rounds are exactly those of an uninterrupted run.

    Args:
        teacher: any ``Teacher``.
        env: an env or a registered id (made with the teacher's ``env_overrides`` and
            ``env_overrides``).
        rounds: rounds to run; None = the env's ``rounds`` (stops at truncation anyway).
        seed: seeds the env's reset and the teacher.
        log_dir: where logs and checkpoints go; None writes nothing.
        progress: show a progress bar.
        checkpoint_every: rounds between checkpoints (0: never).
        resume: continue from ``log_dir/checkpoint.pt`` when it exists.
        save_promoted: save promoted students (1.3 MB each on SOAR-Tiny-v0; the full model
            for large students).
    """
    from tqdm.auto import tqdm

    if isinstance(env, str):
        env = make_teacher_env(env, teacher, **env_overrides)
    obs, _ = env.reset(seed=seed)
    unwrapped = env.unwrapped
    teacher.setup(unwrapped, seed)
    rounds = rounds or unwrapped.config.rounds
    history: list[dict[str, Any]] = []
    start = 0
    checkpoint = Path(log_dir) / "checkpoint.pt" if log_dir is not None else None
    if resume and checkpoint is not None and checkpoint.is_file():
        start, history = load_checkpoint(checkpoint, teacher, unwrapped)
        obs = unwrapped.observation()
    name = unwrapped.spec.id if unwrapped.spec else "env"
    logger = None
    if log_dir is not None:
        meta = {"env": name, "teacher": teacher.name, "seed": seed, "version": soar_env.__version__,
                "config": json.dumps(asdict(unwrapped.config), default=str, sort_keys=True)}
        logger = RunLogger(log_dir, rows=history, meta=meta)
    bar = tqdm(
        range(start, rounds),
        desc=f"{teacher.name} on {name}",
        disable=not progress,
        unit="round",
        initial=start,
        total=rounds,
    )
    try:
        for r in bar:
            started = time.perf_counter()
            bar.set_postfix_str("teacher proposing")
            datasets = teacher.propose(obs, unwrapped.config.group_size)
            rewards, infos, truncated = [], [], False
            for i, dataset in enumerate(datasets):
                # A round can take minutes on a loaded machine: show where it is.
                bar.set_postfix_str(f"env step {i + 1}/{len(datasets)}")
                obs, reward, _, truncated, info = env.step(dataset)
                rewards.append(reward)
                infos.append(info)
            bar.set_postfix_str("teacher learning")
            learned = teacher.learn(rewards, infos)
            row = round_row(unwrapped, teacher, datasets, rewards, infos, learned)
            row["time/round_seconds"] = time.perf_counter() - started
            history.append(row)
            bar.set_postfix(
                reward=f"{row['charts/reward_mean']:.3g}", promotions=infos[-1].get("promotions", 0)
            )
            if logger is not None:
                if save_promoted and infos[-1].get("promoted"):
                    save_atomic(unwrapped.baseline, Path(log_dir) / "promoted" / f"round_{r}.pt")
                last = truncated or r + 1 == rounds
                if checkpoint_every and ((r + 1) % checkpoint_every == 0 or last):
                    teacher.save(Path(log_dir) / "teacher.pt")
                    save_checkpoint(checkpoint, r + 1, teacher, unwrapped, history)
                logger.log(r, row)
            if truncated:
                break
    finally:
        if logger is not None:
            logger.close()
    return history


def save_checkpoint(path: Path, next_round: int, teacher: Teacher, env: Any, history: list) -> None:
    """The whole run at a round boundary: teacher state, env state, history."""
    save_atomic(
        {
            "next_round": next_round,
            "teacher_name": teacher.name,
            "teacher": teacher.state_dict(),
            "env": env.state_dict(),
            "history": history,
        },
        path,
    )


def load_checkpoint(path: Path, teacher: Teacher, env: Any) -> tuple[int, list[dict[str, Any]]]:
    """Restore teacher and env from ``save_checkpoint``; returns the next round and the history."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise RuntimeError(
            f"The run checkpoint {path} is corrupted ({type(err).__name__}); delete it to start the run over"
        ) from err
    if not isinstance(saved, dict) or saved.get("teacher_name") != teacher.name:
        found = saved.get("teacher_name") if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"Expects a checkpoint of the {teacher.name!r} teacher, actual {found!r}")
    teacher.load_state_dict(saved["teacher"])
    env.load_state_dict(saved["env"])
    return saved["next_round"], list(saved["history"])


def round_row(
    env: Any,
    teacher: Teacher,
    datasets: list,
    rewards: list[float],
    infos: list[dict],
    learned: dict[str, float],
) -> dict[str, Any]:
    """The logged figures of one round: rewards, env state, teacher stats, proposals."""
    last = infos[-1]
    row: dict[str, Any] = {
        "charts/reward_mean": float(np.mean(rewards)),
        "charts/reward_max": float(np.max(rewards)),
        "charts/reward_min": float(np.min(rewards)),
        "env/baseline_accuracy": float(last.get("baseline_accuracy", 0.0)),
        "env/promoted": float(last.get("promoted", False)),
        "env/promotions": float(last.get("promotions", 0)),
        "env/bank_size": float(last.get("bank_size", 0)),
        "env/invalid_problems": float(sum(i.get("invalid_problems", 0) for i in infos)),
        "env/sampled_tokens": float(last.get("compute", {}).get("sampled_tokens", 0)),
    }
    grounded = [i["grounded_reward"] for i in infos if "grounded_reward" in i]
    if grounded:
        row["charts/grounded_reward_mean"] = float(np.mean(grounded))
    row.update({f"teacher/{k}": v for k, v in {**teacher.round_stats(), **learned}.items()})
    problems = [p for dataset in datasets for p in dataset]
    row.update({f"proposals/{k}": v for k, v in proposal_stats(env.domain, problems).items()})
    return row
