"""Seconds and peak memory of an evaluation step late in training, this checkout against an
older revision, side by side.

The main job's evaluation trains ten fresh students in one stack (five curricula x two
student seeds) for up to 300 steps, and its late steps cost several times its first ones:
once the students answer, most groups stay live and the update covers them all. So the
steps are timed where the evaluation spends its time:

1. once, in this checkout: ten fresh students (good stones and generator chains of 128
   problems, two student seeds each, SOAR-Tiny-v1's mixed protocol) train ``--warm`` steps
   in lockstep; their weights are saved;
2. each case, in its own process: a ``LockstepRLOO`` stack of those weights, built by the
   case's tree with its own defaults (memory bounds, attention), takes one step untimed,
   then ``--steps`` timed steps; the process's peak RSS is recorded. The cases alternate
   ``--repeats`` times.
3. with ``--split``: this checkout's stack again, as two processes at one torch thread
   each, side by side, each with half of the students (what ``soar-env train`` does with
   its 2 workers); a step's time is the slower half's.

    python benchmarks/eval_step_speed.py --baseline 1fb130a --out docs/results/speed/eval_step_0.5.0.json
    python benchmarks/eval_step_speed.py --split --out docs/results/speed/eval_step_split.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "SOAR-Tiny-v1"
SEEDS = (0, 1)


def _curricula(env):
    from soar_env.embedded import good_stones

    generator = env.unwrapped.lab.domain.generator
    return [list(good_stones(128, seed=s)) for s in range(3)] + [
        generator.problems(128, [3, 4, 5, 6], seed=s) for s in range(2)
    ]


def warm(steps: int, path: str) -> None:
    """Step 1: train the stack ``steps`` steps and save each student's weights."""
    from dataclasses import replace

    import gymnasium as gym
    import torch

    import soar_env  # noqa: F401
    from soar_env.evaluation import EvalConfig
    from soar_env.fresh_students import FreshRun, train_fresh_students

    env = gym.make(ENV)
    env.reset(seed=0)
    config = replace(EvalConfig.for_env(env.unwrapped), max_steps=steps, early_stop=False)
    runs = [FreshRun(c, seed) for c in _curricula(env) for seed in SEEDS]
    train_fresh_students(env.unwrapped, runs, config)
    torch.save([r.weights for r in runs], path)


def case(weights: str, steps: int, half: int | None = None) -> dict:
    """Step 2 in whichever tree is imported: time ``steps`` steps of the saved stack (or of
    its ``half``: 0 the first students, 1 the others)."""
    import gymnasium as gym
    import torch

    import soar_env
    from soar_env.evaluation import EvalConfig
    from soar_env.lockstep import LockstepRLOO

    env = gym.make(ENV)
    env.reset(seed=0)
    u = env.unwrapped
    rl, lab = EvalConfig.for_env(u).rl, u.lab
    real = list(u.hard_set.train)
    data = []
    for curriculum in _curricula(env):
        for seed in SEEDS:
            mixed = curriculum + real
            random.Random(seed).shuffle(mixed)
            data.append(mixed)
    starts = torch.load(weights)
    seeds = [s for _ in range(len(starts) // len(SEEDS)) for s in SEEDS]
    if half is not None:
        cut = len(starts) // 2
        keep = slice(0, cut) if half == 0 else slice(cut, None)
        starts, seeds, data = starts[keep], seeds[keep], data[keep]
    trainer = LockstepRLOO(lab.student, lab.domain.reward_batch, lab.student_prompt, rl, starts, seeds,
                           exact_answers=lab.domain.exact_answers)
    trainer.step(data)  # first-call costs stay out
    seconds, rewards = [], []
    for _ in range(steps):
        start = time.perf_counter()
        stats = trainer.step(data)
        seconds.append(time.perf_counter() - start)
        rewards.append(statistics.fmean(s["reward"] for s in stats))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {"seconds": seconds, "rewards": rewards, "peak_rss_gb": peak,
            "version": soar_env.__version__, "soar_env": soar_env.__file__}


def _start(weights: str, steps: int, tree: Path | None, half: int | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if tree is not None:  # import the old revision's soar_env ahead of the installed one
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")])
    if half is not None:
        env["SOAR_ENV_THREADS"] = "1"  # as a worker of soar-env train runs
    command = [sys.executable, __file__, "--case", weights, "--steps", str(steps)]
    command += [] if half is None else ["--half", str(half)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tempfile.gettempdir())


def _child(weights: str, steps: int, tree: Path | None) -> dict:
    return _finish(_start(weights, steps, tree), tree)


def _split(weights: str, steps: int) -> dict:
    """Two halves side by side; the steps' times are the slower half's, the memory their sum."""
    halves = [_finish(p, None) for p in [_start(weights, steps, None, h) for h in (0, 1)]]
    slower = max(halves, key=lambda h: sum(h["seconds"]))
    return {"seconds": slower["seconds"],
            "rewards": [(a + b) / 2 for a, b in zip(halves[0]["rewards"], halves[1]["rewards"])],
            "peak_rss_gb": halves[0]["peak_rss_gb"] + halves[1]["peak_rss_gb"],
            "version": halves[0]["version"], "soar_env": halves[0]["soar_env"],
            "halves_seconds": [h["seconds"] for h in halves]}


def _finish(process: subprocess.Popen, tree: Path | None) -> dict:
    stdout, stderr = process.communicate()
    if process.returncode:
        raise SystemExit(f"case failed:\n{stderr[-3000:]}")
    data = json.loads(stdout.strip().splitlines()[-1])
    expected = tree if tree is not None else REPO
    if not data["soar_env"].startswith(str(expected)):
        raise SystemExit(f"case imported {data['soar_env']}, not the tree {expected}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=False, help="the older revision (e.g. 1fb130a: 0.4.0)")
    parser.add_argument("--warm", type=int, default=120, help="steps trained before the timed ones")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per case")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--split", action="store_true",
                        help="also this checkout's stack as two processes of one thread (the CLI's workers)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--half", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.steps, args.half)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = str(Path(tmp) / "weights.pt")
        started = time.perf_counter()
        warm(args.warm, weights)
        print(f"warm-up: {args.warm} steps in {time.perf_counter() - started:.0f} s", flush=True)
        trees: dict[str, Path | str | None] = {}
        old = Path(tmp) / "baseline"
        if args.baseline:
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old),
                            args.baseline], check=True)
            trees[f"at {args.baseline}"] = old
        trees["this checkout"] = None
        if args.split:
            trees["this checkout, 2 processes of 1 thread"] = "split"
        results: dict[str, list] = {name: [] for name in trees}
        try:
            for _ in range(args.repeats):
                for name, tree in trees.items():
                    results[name].append(_split(weights, args.steps) if tree == "split"
                                         else _child(weights, args.steps, tree))
                    last = results[name][-1]
                    print(f"{name} ({last['version']}): {statistics.fmean(last['seconds']):.2f} s a step, "
                          f"peak {last['peak_rss_gb']:.2f} GB", flush=True)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)])
    first = next(iter(trees))
    base = statistics.median(s for r in results[first] for s in r["seconds"])
    print(f"\n{ENV}: ten stacked fresh students after {args.warm} steps, {args.steps} steps x "
          f"{args.repeats} repeats\n")
    print(f"| tree | seconds a step (median) | vs {first} | peak RSS |\n|---|---:|---:|---:|")
    summary = {}
    for name in trees:
        median = statistics.median(s for r in results[name] for s in r["seconds"])
        peak = max(r["peak_rss_gb"] for r in results[name])
        summary[name] = {"version": results[name][0]["version"], "median_seconds": median,
                         "speedup": base / median, "peak_rss_gb": peak}
        version = summary[name]["version"]
        print(f"| {name} ({version}) | {median:.2f} | {base / median:.2f}x | {peak:.2f} GB |")
    result = {"env": ENV, "baseline": args.baseline, "warm_steps": args.warm, "steps": args.steps,
              "repeats": args.repeats, "summary": summary,
              "per_seed": {"0": {name: [{"seconds": r["seconds"], "mean_reward": r["rewards"],
                                         "peak_rss_gb": r["peak_rss_gb"]} for r in rs]
                                 for name, rs in results.items()},
                           "note": "one warm-up (student seeds 0 and 1 in one stack), every repeat"}}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
