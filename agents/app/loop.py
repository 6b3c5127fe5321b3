"""One loop that runs any teacher on any registered env, with logs and checkpoints.

from soar_agents import make_teacher, train_teacher
teacher = make_teacher("soar")
history = train_teacher(teacher, "SOAR-Tiny-v0", rounds=20, seed=0, log_dir="runs/soar")
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import soar_env
from soar_env.diagnostics import proposal_stats
from soar_env.files import write_atomic_folder

from ..teachers.protocol import Teacher
from .checkpoints import (
    RunFolderError,
    differences,
    folder_files,
    jsonable,
    load_state,
    save_state,
    sha256_file,
    verify_manifest,
    write_json,
)
from .logger import RunLogger
from .runlock import run_lock


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
    report_to: Sequence[str] | None = None,
    **env_overrides: Any,
) -> list[dict[str, Any]]:
    """Train ``teacher`` for ``rounds`` rounds (default: the env's) and return one row per round.

    Each round: the teacher proposes ``g`` datasets, the env is stepped once per dataset,
    the teacher learns from the ``g`` rewards. With ``log_dir``:
    - every round is appended to ``rounds.csv`` and TensorBoard as it ends;
    - every ``checkpoint_every`` rounds (and at the end) the whole run (teacher, env state,
      history) goes to ``checkpoints/round_R.safetensors``, then ``manifest.json`` (sha256
      of every file a resume reads), then the teacher alone to ``teacher.safetensors``;
    - each promoted student goes to ``promoted/round_R/``, a Hugging Face folder (config,
      ``model.safetensors``, tokenizer) that transformers and vLLM load as it is; PS reads
      it, and the manifest lists each of its files (older runs: ``promoted/round_R.safetensors``,
      a bare state dict, still read);
    - at the end the trained teacher (LLM teachers) goes to ``teacher_pretrained/`` and,
      when the run promoted, the final baseline (the last promoted student) to
      ``student_pretrained/``, both Hugging Face folders.
    Nothing is pickled: weights in safetensors, the rest JSON (``checkpoints.py``).
    With ``resume=True`` a run continues from the manifest's checkpoint (refused, with the
    reason, when a file changed or the run's settings differ): on CPU with the same seed
    the remaining rounds are exactly those of an uninterrupted run. ``log_dir`` is locked
    for the whole run (``runlock.py``): another process writing it raises ``RunFolderBusy``.

    Args:
        teacher: any ``Teacher``.
        env: an env or a registered id (made with the teacher's ``env_overrides`` and
            ``env_overrides``).
        rounds: rounds to run; None = the env's ``rounds`` (stops at truncation anyway); 0
            writes an untrained run folder (evaluable, e.g. a fixed teacher's).
        seed: seeds the env's reset and the teacher.
        log_dir: where logs and checkpoints go; None writes nothing.
        progress: show a progress bar.
        checkpoint_every: rounds between checkpoints (0: never).
        resume: continue from ``log_dir``'s checkpoint when it has one.
        save_promoted: save promoted students (1.3 MB each on SOAR-Tiny-v0; the full model
            for large students).
        report_to: where rows go (``trackers.REPORTERS``: csv, tensorboard, trackio);
            None = csv and tensorboard.
    """
    if isinstance(env, str):
        env = make_teacher_env(env, teacher, **env_overrides)
    settings = (rounds, seed, progress, checkpoint_every, resume, save_promoted, report_to)
    if log_dir is None:
        return _run_rounds(teacher, env, None, *settings)
    with run_lock(log_dir):  # one writer per run folder
        return _run_rounds(teacher, env, Path(log_dir), *settings)


def _run_rounds(
    teacher: Teacher, env: gym.Env, run: Path | None, rounds: int | None, seed: int, progress: bool,
    checkpoint_every: int, resume: bool, save_promoted: bool, report_to: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    obs, _ = env.reset(seed=seed)
    unwrapped = env.unwrapped
    teacher.setup(unwrapped.teacher_context(), seed)
    rounds = unwrapped.config.rounds if rounds is None else rounds
    history: list[dict[str, Any]] = []
    start = 0
    promoted: dict[str, str] = {}  # files of the promoted students saved so far -> sha256, for the manifest
    if resume and run is not None and has_checkpoint(run):
        start, history, promoted = load_checkpoint(run, teacher, unwrapped, seed)
        teacher.save(run / "teacher.safetensors")  # a kill may have come before this export
        obs = unwrapped.observation()
    name = unwrapped.spec.id if unwrapped.spec else "env"
    logger = None
    if run is not None:
        meta = {"env": name, "teacher": teacher.name, "seed": seed, "version": soar_env.__version__,
                "config": json.dumps(asdict(unwrapped.config), default=str, sort_keys=True)}
        logger = RunLogger(run, rows=history, meta=meta, report_to=report_to)
    bar = tqdm(desc=f"{teacher.name} on {name}", disable=not progress, unit="round", initial=start,
               total=rounds)
    try:
        for r in range(start, rounds):
            started = time.perf_counter()
            bar.set_postfix_str("teacher proposing")
            datasets = teacher.propose(obs, unwrapped.config.group_size)
            # The round at once: its inner runs go to the env's executor together (parallel
            # with executor='process'); the results equal g step calls.
            bar.set_postfix_str(f"{len(datasets)} env steps")
            steps = unwrapped.step_round(datasets)
            obs, truncated = steps[-1][0], steps[-1][3]
            rewards = [step[1] for step in steps]
            infos = [step[4] for step in steps]
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
                    student = f"promoted/round_{r}"
                    export_student(unwrapped, run / student)
                    promoted.update(folder_files(run, student))
                last = truncated or r + 1 == rounds
                if checkpoint_every and ((r + 1) % checkpoint_every == 0 or last):
                    save_checkpoint(run, r + 1, teacher, unwrapped, history, seed, promoted)
                logger.log(r, row)
            bar.update()  # before a last round's break: the bar ends at rounds/rounds
            if truncated:
                break
        if run is not None and rounds == 0 and not has_checkpoint(run):
            save_checkpoint(run, 0, teacher, unwrapped, history, seed, promoted)
        if run is not None and history:
            # Hugging Face folders (config, safetensors, tokenizer) that vLLM, TRL and the Hub
            # load as they are: the trained teacher (LLM teachers) and the final baseline.
            teacher.export_pretrained(run / "teacher_pretrained")
            if promoted:
                export_student(unwrapped, run / "student_pretrained")
    finally:
        bar.close()
        if logger is not None:
            logger.close()
    return history


def export_student(env: Any, folder: Path) -> None:
    """The env's current baseline student as a ``save_pretrained`` folder (config, one
    ``model.safetensors``, tokenizer), written whole or not at all; the live weights are kept."""
    student = env.student
    keep = student.snapshot()

    def save(tmp: Path) -> None:
        # One weight file whatever the model's size (by default transformers 4 shards above
        # 5 GB, 5 above 50 GB): PS reads model.safetensors.
        student.model.save_pretrained(tmp, max_shard_size="1000GB")
        student.tokenizer.save_pretrained(tmp)

    try:
        student.restore(env.baseline)
        write_atomic_folder(folder, save)
    finally:
        student.restore(keep)


def run_record(teacher: Teacher, env: Any, seed: int) -> dict[str, Any]:
    """What a checkpoint must have been made with to be resumed here (else: other results)."""
    return jsonable({
        "env": env.spec.id if env.spec else None,
        "env_config": asdict(env.config),
        "teacher": teacher.name,
        "teacher_config": teacher.config_record(),
        "seed": seed,
    })


def has_checkpoint(run: Path) -> bool:
    if (run / "manifest.json").is_file():
        return True
    if (run / "checkpoint.pt").is_file():
        raise RunFolderError(
            f"{run} holds a checkpoint.pt of an older soar-env; it is a pickle, which can run code, "
            "so it is never loaded: train again into another folder"
        )
    return False


def saved_rounds(run: Path) -> int:
    """The rounds ``run``'s checkpoint holds, as its manifest names it (0 without one)."""
    try:
        name = json.loads((run / "manifest.json").read_text())["checkpoint"]
        return int(re.fullmatch(r"checkpoints/round_(\d+)\.safetensors", name).group(1))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0


def save_checkpoint(
    run: Path, next_round: int, teacher: Teacher, env: Any, history: list, seed: int, promoted: dict[str, str]
) -> None:
    """The whole run at a round boundary, committed by ``manifest.json``.

    The checkpoint file is new each time and the manifest is replaced last, so a kill at any
    point leaves a manifest that names complete, unchanged files (the previous checkpoint is
    deleted only once the new manifest is in place).
    """
    name = f"checkpoints/round_{next_round}.safetensors"
    own = {"teacher": teacher.name, "config": teacher.config_record(), "state": teacher.state_dict()}
    record = run_record(teacher, env, seed)
    state = {"next_round": next_round, "record": record, "teacher": own, "env": env.state_dict()}
    save_state(run / name, {**state, "history": history})
    files = {name: sha256_file(run / name), **promoted}
    if (run / "run.json").is_file():
        files["run.json"] = sha256_file(run / "run.json")
    write_json(run / "manifest.json", {"checkpoint": name, "files": files})
    stale = [*(run / "checkpoints").glob("round_*.safetensors"), *run.glob(".*.tmp"), *run.glob("*/.*.tmp")]
    for old in stale:
        if old == run / name:
            continue
        if old.is_dir():  # a temporary folder of a killed save_pretrained
            shutil.rmtree(old, ignore_errors=True)
        else:  # older checkpoints, and temporary files of killed writes
            old.unlink(missing_ok=True)
    teacher.save(run / "teacher.safetensors")  # the trained teacher alone, for users


def load_checkpoint(
    run: Path, teacher: Teacher, env: Any, seed: int, manifest: dict[str, Any] | None = None
) -> tuple[int, list[dict[str, Any]], dict[str, str]]:
    """Restore teacher and env from ``run``'s checkpoint, after checking every file and the
    run's settings; returns the next round, the history and the promoted students saved.
    ``manifest``: ``verify_manifest(run)`` when the caller has just checked it."""
    manifest = manifest or verify_manifest(run)
    if (run / "teacher.safetensors").is_file():  # not read back, but a damaged file is reported
        try:
            load_state(run / "teacher.safetensors")
        except RunFolderError as err:
            hint = "the exported teacher: delete it, a resume writes it again"
            raise RunFolderError(f"{err} ({hint})") from err
    path = run / manifest["checkpoint"]
    saved = load_state(path)
    diff = differences(saved.get("record"), run_record(teacher, env, seed))
    if diff:
        raise RunFolderError(
            f"{path} was saved with other settings ({'; '.join(diff)}): resume with the run's own "
            "settings, or use another --out for a new run"
        )
    if not isinstance(saved.get("teacher"), dict):
        raise RunFolderError(f"{path} does not hold a complete run state (no teacher); train again")
    teacher.load_saved(saved["teacher"], path)
    try:
        env.load_state_dict(saved["env"])
        next_round, history = int(saved["next_round"]), list(saved["history"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
        problem = f"{type(err).__name__}: {err}"
        raise RunFolderError(f"{path} does not hold a complete run state ({problem})") from err
    promoted = {k: v for k, v in manifest["files"].items() if k.startswith("promoted/")}
    return next_round, history, promoted


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
