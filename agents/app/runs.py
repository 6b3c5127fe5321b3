"""Runs on disk: train a teacher into a folder, evaluate it with the paper's protocol, bench.

A run folder holds ``run.json`` (env id, teacher, seed, rounds, env overrides), the
training logs and checkpoints of ``train_teacher`` (``manifest.json`` lists them with their
sha256), and ``eval.json`` (pass@k per variant and seed, written as each finishes, so an
interrupted evaluation resumes). Nothing in a run folder is unpickled: folders are shared.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import soar_env
from soar_env import DEFAULT_ENV
from soar_env.diagnostics import proposal_stats
from soar_env.evaluation import (
    EvalConfig,
    EvalResult,
    base_pass_at_k,
    evaluate_curricula,
    evaluate_student,
    interval,
)

from .. import make_teacher
from .checkpoints import RunFolderError, differences, load_weights, read_json, verify_manifest, write_json
from .loop import has_checkpoint, load_checkpoint, make_teacher_env, train_teacher
from .runlock import RunFolderBusy, run_lock

__all__ = ["RunFolderBusy", "RunFolderError", "evaluate_run", "train_run"]

LLM_TEACHERS = {"soar": "Grounded-T", "base": "Base-T", "learnability": "Intrinsic-T"}


def teacher_variant(teacher: str) -> str:
    """The evaluation name of 128 questions sampled from ``teacher`` (paper's names)."""
    return LLM_TEACHERS.get(teacher, f"{teacher}-T")


def train_run(
    out: str | Path,
    env_id: str = DEFAULT_ENV,
    teacher: str = "soar",
    seed: int = 0,
    rounds: int = 20,
    resume: bool = False,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
    teacher_settings: dict[str, Any] | None = None,
    machine: dict[str, Any] | None = None,
    report_to: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Train ``teacher`` on ``env_id`` into the folder ``out`` (``--resume`` continues it).

    ``overrides`` are env settings (dotted keys reach nested configs: ``rl.learning_rate``);
    ``teacher_settings`` change the LLM teacher's config on its env preset. ``machine``:
    env settings that change where work runs, not results (``executor``, ``num_workers``,
    ``max_batch_tokens``); not recorded in ``run.json``, so a resume may change them. The
    folder is locked while it is written: another process writing it raises ``RunFolderBusy``.
    """
    out = Path(out)
    spec = {"env": env_id, "teacher": teacher, "seed": seed, "rounds": rounds, "overrides": overrides or {}}
    if teacher_settings:
        spec["teacher_settings"] = teacher_settings
    with run_lock(out):  # one writer per run folder: before anything is read or written
        return _train_run(out, spec, resume, progress, machine, report_to)


def _train_run(out: Path, spec: dict[str, Any], resume: bool, progress: bool,
               machine: dict[str, Any] | None, report_to: list[str] | None = None) -> list[dict[str, Any]]:
    teacher, rounds, overrides, teacher_settings = (spec["teacher"], spec["rounds"], spec["overrides"],
                                                    spec.get("teacher_settings"))
    if (out / "run.json").is_file() and resume:
        diff = differences(read_json(out / "run.json", "restore it, or use another --out"), spec)
        if diff:
            raise RunFolderError(
                f"--resume expects the settings in {out / 'run.json'} (saved -> given: {'; '.join(diff)}); "
                "use another --out for a new run"
            )
    elif not resume and has_checkpoint(out):
        raise FileExistsError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    if not (resume and (out / "run.json").is_file()):  # a resume keeps it: the manifest has its sha256
        write_json(out / "run.json", spec)
    agent = make_teacher(teacher, **({"settings": teacher_settings} if teacher_settings else {}))
    # The env's horizon is at least one round; a 0-round run (a fixed teacher) is only evaluated.
    settings = {"rounds": max(rounds, 1), **overrides, **(machine or {})}
    env = make_teacher_env(spec["env"], agent, **settings)
    try:
        return train_teacher(agent, env, rounds=rounds, seed=spec["seed"], log_dir=out, progress=progress,
                             resume=resume, report_to=report_to)
    finally:
        env.close()  # worker processes of executor='process' end with the run


def _load_run(run: Path, machine: dict[str, Any] | None = None):
    if not (run / "run.json").is_file() or not has_checkpoint(run):
        raise FileNotFoundError(
            f"Expects a trained run in {run} (run.json, manifest.json), actual none: run "
            f"`soar-env train --out {run}` first"
        )
    manifest = verify_manifest(run)  # before run.json is trusted to build anything
    spec = read_json(run / "run.json")
    try:
        if spec["env"] not in gym.registry:  # gym.make would import any "module:Env" it is given
            raise RunFolderError(f"{run / 'run.json'} names an env that is not registered: {spec['env']!r}")
        settings = spec.get("teacher_settings")
        agent = make_teacher(spec["teacher"], **({"settings": settings} if settings else {}))
        env = make_teacher_env(spec["env"], agent, **{"rounds": max(spec["rounds"], 1), **spec["overrides"],
                                                      **(machine or {})})
        seed = spec["seed"]
    except (KeyError, TypeError) as err:
        raise RunFolderError(f"{run / 'run.json'} lacks {err}; train again into another folder") from err
    env.reset(seed=seed)
    agent.setup(env.unwrapped.teacher_context(), seed)
    load_checkpoint(run, agent, env.unwrapped, seed, manifest)
    return spec, agent, env.unwrapped


def evaluate_run(
    run: str | Path,
    seeds: list[int],
    variants: list[str] | None = None,
    config: EvalConfig | None = None,
    progress: bool = True,
    eval_steps: int | None = None,
    machine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The paper's protocol on a trained run; results accumulate in ``run/eval.json``.

    ``machine``: where it runs (``soar_env.machine.Machine`` fields; not part of the results):
    with ``num_workers >= 2`` the fresh students train in that many worker processes.

    Variants: the teacher's own (``Grounded-T``, ``Intrinsic-T``, ``Base-T`` or
    ``NAME-T``: 128 questions sampled from the trained teacher), ``PQ`` (promoted bank,
    when not empty), ``PQ@128`` (its last 128 questions, when it has more: PQ at a
    teacher sample's size), ``PS`` (best promoted student on D_train, evaluated directly),
    ``Hard-Only`` and ``base``.
    """
    run = Path(run)
    with run_lock(run, create=False):  # eval.json has one writer at a time
        return _evaluate_run(run, seeds, variants, config, progress, eval_steps, machine)


def _evaluate_run(run: Path, seeds: list[int], variants: list[str] | None, config: EvalConfig | None,
                  progress: bool, eval_steps: int | None, machine: dict[str, Any] | None) -> dict[str, Any]:
    spec, agent, env = _load_run(run, machine)
    try:
        return _evaluate_loaded(run, spec, agent, env, seeds, variants, config, progress, eval_steps)
    finally:
        env.close()  # its worker processes, if any, end with the evaluation


def _evaluate_loaded(run: Path, spec: dict[str, Any], agent: Any, env: Any, seeds: list[int],
                     variants: list[str] | None, config: EvalConfig | None, progress: bool,
                     eval_steps: int | None) -> dict[str, Any]:
    config = config or EvalConfig.for_env(env, **({"max_steps": eval_steps} if eval_steps else {}))
    path = run / "eval.json"
    settings = {k: v for k, v in asdict(config).items() if k != "rl"}
    settings["rl"] = asdict(config.rl) if config.rl is not None else None
    settings = json.loads(json.dumps(settings))  # as eval.json stores them (tuples become lists)
    fix = "move it away to evaluate again from scratch (finished results are in it)"
    results = read_json(path, fix) if path.is_file() else {"results": {}, "diversity": {}}
    if not isinstance(results, dict) or not isinstance(results.get("results", {}), dict):
        raise RunFolderError(f"{path} is not an eval.json of this package; {fix}")
    results.setdefault("results", {})
    results.setdefault("diversity", {})
    if results.setdefault("settings", settings) != settings:
        raise RunFolderError(
            f"{path} holds results made with other evaluation settings ({results['settings']}); "
            "use the same settings (e.g. --eval-steps), or move eval.json away to start over"
        )
    # What reproduces these figures: the run's own record, the env config, the package.
    results["run"] = {**spec, "version": soar_env.__version__,
                      "config": json.loads(json.dumps(asdict(env.config), default=str))}
    own = teacher_variant(spec["teacher"])
    promoted = promoted_students(run)
    if variants is None:
        bank = len(env.promoted_bank)
        # Base-T beside the teacher's own: did training the teacher help? (paired by seed)
        variants = [own] + (["Base-T"] if own != "Base-T" else [])
        variants += (["PQ"] if bank else []) + (["PQ@128"] if bank > config.teacher_questions else [])
        variants += ["PS"] if promoted else []
        variants += ["Hard-Only", "base"]
    questions = None
    curricula: dict[str, list] = {}
    todos: dict[str, list[int]] = {}
    for variant in variants:
        done = results["results"].setdefault(variant, {})
        todo = [s for s in seeds if str(s) not in done]
        if not todo:
            continue
        if variant == own:
            if questions is None:
                questions = sample_questions(agent, env, config.teacher_questions)
                results["diversity"][variant] = proposal_stats(env.domain, questions)
            curricula[variant] = questions
        elif variant == "Base-T":
            curricula[variant] = untrained_questions(env, config.teacher_questions, spec["seed"])
        elif variant == "PQ":
            curricula[variant] = env.promoted_bank.problems
        elif variant == "PQ@128":  # the last promoted questions, as many as a teacher's sample
            curricula[variant] = env.promoted_bank.problems[-config.teacher_questions:]
        elif variant == "Hard-Only":
            curricula[variant] = []
        elif variant in ("base", "PS"):
            started = time.perf_counter()
            result = (base_pass_at_k(env, todo, config) if variant == "base"
                      else best_promoted_student(env, promoted, todo, config))
            _record(results, variant, todo, result, (time.perf_counter() - started) / len(todo))
            write_json(path, results)
            continue
        else:
            raise ValueError(
                f"Expects a variant in {[own, 'Base-T', 'PQ', 'PQ@128', 'PS', 'Hard-Only', 'base']}, "
                f"actual {variant!r}"
            )
        todos[variant] = todo
    # Fresh students train together where their seeds agree (evaluate_curricula).
    for todo in sorted({tuple(t) for t in todos.values()}):
        group = {v: curricula[v] for v, t in todos.items() if tuple(t) == todo}
        started = time.perf_counter()
        evaluated = evaluate_curricula(env, group, list(todo), config, progress)
        seconds = (time.perf_counter() - started) / (len(todo) * len(group))
        for variant, result in evaluated.items():
            _record(results, variant, list(todo), result, seconds)
        write_json(path, results)
    return results


def _record(results: dict[str, Any], variant: str, seeds: list[int], result: EvalResult,
            seconds: float) -> None:
    done = results["results"][variant]
    for seed, scores in zip(seeds, result.per_seed):
        done[str(seed)] = {str(k): v for k, v in scores.items()}
        # Wall seconds per (variant, seed), so a resumed bench still reports what it cost.
        results.setdefault("seconds", {}).setdefault(variant, {})[str(seed)] = seconds


def promoted_students(run: str | Path) -> list[Path]:
    """The promoted students the run's manifest lists (so checked), by round: the folders
    ``promoted/round_R/`` (``save_pretrained``), or an older run's files ``promoted/round_R.safetensors``."""
    run = Path(run)
    if not (run / "manifest.json").is_file():
        return []
    names = [n for n in read_json(run / "manifest.json").get("files", {}) if n.startswith("promoted/")]
    students = {run / "promoted" / n.split("/")[1] for n in names}  # one per folder, whatever its files
    return sorted(students, key=lambda p: int(p.stem.split("_")[-1]))


def sample_questions(agent: Any, env: Any, count: int) -> list:
    """``count`` problems proposed by the trained teacher (whole datasets, then cut)."""
    datasets = agent.propose(env.observation(), math.ceil(count / env.config.dataset_size))
    return [p for d in datasets for p in d][:count]


def untrained_questions(env: Any, count: int, seed: int) -> list:
    """``count`` questions from the untrained teacher (Base-T, teacher seed ``seed``), answered
    as the teacher answers them by default (the domain's solver where there is one)."""
    teacher = make_teacher("base")
    keep = env.lab.snapshot()
    try:
        env.lab.load(env.lab.base)
        teacher.setup(env.teacher_context(), seed)
        return sample_questions(teacher, env, count)
    finally:
        env.lab.load(keep)


def best_promoted_student(env: Any, promoted: list[Path], seeds: list[int], config: EvalConfig) -> EvalResult:
    """PS: the promoted student with the best accuracy on D_train, evaluated on D_test."""
    keep = env.student.snapshot()
    try:
        best, best_acc = None, -1.0
        for path in promoted:
            weights = promoted_weights(env.student, path)
            env.student.restore(weights)
            acc = env.accuracy(list(env.hard_set.train))
            if acc > best_acc:
                best, best_acc = weights, acc
        env.student.restore(best)
        return EvalResult("PS", [evaluate_student(env, seed, config) for seed in seeds])
    finally:
        env.student.restore(keep)


def promoted_weights(student: Any, path: Path) -> dict[str, Any]:
    """A promoted student's weights, ready for ``student.restore``: from the folder's
    ``model.safetensors`` or, in older runs, the weight file ``path`` itself."""
    file = path / "model.safetensors" if path.is_dir() else path
    weights = load_weights(file)
    live = student.model.state_dict()
    # save_pretrained leaves out tied copies (the tiny models' lm_head is their embedding):
    # each gets the tensor saved for the key it shares storage with.
    saved_at = {t.data_ptr(): k for k, t in live.items() if k in weights}
    for k, t in live.items():
        if k not in weights and t.data_ptr() in saved_at:
            weights[k] = weights[saved_at[t.data_ptr()]]
    wrong = [k for k, t in live.items() if k not in weights or weights[k].shape != t.shape]
    if wrong:
        raise RunFolderError(
            f"{file} is not a student of this run's model ({wrong[0]} is missing or of another "
            f"shape, {len(wrong)} tensors in all); restore it, or train again"
        )
    return weights


def leaderboard(results: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """Rows of mean, sd, 95% interval and per-seed values of pass@k per variant, best pass@1
    first (the headline: docs/evaluation.md, the protocol for teacher benchmarks)."""
    rows = []
    for variant, per_seed in results.items():
        if not per_seed:
            continue
        seeds = sorted(per_seed, key=int)
        row: dict[str, Any] = {"variant": variant, "seeds": len(seeds), "seed_ids": [int(s) for s in seeds]}
        for k in next(iter(per_seed.values())):
            values = [per_seed[s][k] for s in seeds]
            row[f"pass@{k}"] = {**interval(values), "per_seed": values}
        rows.append(row)
    rows.sort(key=lambda r: -r["pass@1"]["mean"] if "pass@1" in r else 0.0)
    return rows


def paired_differences(results: dict[str, dict[str, dict[str, float]]],
                       against: str = "Base-T") -> dict[str, dict[str, Any]]:
    """Per variant, pass@k minus ``against``'s on the same seeds: per seed, mean and 95% interval."""
    if against not in results:
        return {}
    reference = results[against]
    out = {}
    for variant, per_seed in results.items():
        seeds = sorted(set(per_seed) & set(reference), key=int)
        if variant == against or not seeds:
            continue
        out[variant] = {"seeds": [int(s) for s in seeds]}
        for k in per_seed[seeds[0]]:
            diffs = [per_seed[s][k] - reference[s][k] for s in seeds]
            out[variant][f"pass@{k}"] = {**interval(diffs), "per_seed": diffs}
    return out


def mean_diversity(diversity: list[dict[str, float]], keys: tuple[str, ...]) -> dict[str, float]:
    return {
        k: float(np.mean([d[k] for d in diversity if k in d])) for k in keys if any(k in d for d in diversity)
    }
