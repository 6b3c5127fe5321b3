"""Seconds per grounded round of a tiny id at its defaults, by executor (serial, lockstep,
process, ray), optionally against an older git revision's round (serial by default).

A round is g=4 datasets (n=64 chains of uniform length 1-20, the tiny teacher's
distribution), each trained r x K RLOO steps and measured on M reward questions. Each case
runs in its own process, the cases alternate ``--repeats`` times, so the ratios compare like
with like on a shared machine. serial, process and ray promise equal rewards bit for bit
(checked); lockstep and an older revision give their own numbers, so for them the table
shows how far their mean reward is from the first case's (an equivalence check worth the
name is ``benchmarks/equivalence.py``).

    python benchmarks/round_speed.py --baseline 3fb52dd --executors lockstep lockstep:2  # vs 0.3.0
    python benchmarks/round_speed.py --baseline 1fb130a --baseline-executors lockstep:2 \
        --executors lockstep:2                                              # vs 0.4.0
    python benchmarks/round_speed.py --inner-runs 4 --executors lockstep               # r = 4
    python benchmarks/round_speed.py --executors serial process ray          # pip install '.[ray]'

``--baseline REV`` checks REV out into a temporary git worktree and imports soar_env from
there; a revision without ``step_round`` steps the round's g actions one by one.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_case(env_id: str, executor: str, workers: int, rounds: int, inner_runs: int) -> dict:
    import gymnasium as gym

    import soar_env

    executor, _, share = executor.partition(":")  # lockstep:2 = lockstep in 2 worker processes
    kwargs = {"executor": executor, "inner_runs": inner_runs}
    if executor in ("process", "ray") or share:
        kwargs["num_workers"] = int(share or workers)
    if executor == "ray":
        import ray

        ray.init(num_cpus=workers, log_to_driver=False)  # a local instance: one CPU per actor
    env = gym.make(env_id, rounds=rounds + 1, **kwargs)
    env.reset(seed=0)
    generator = env.unwrapped.domain.generator
    step_round = getattr(env.unwrapped, "step_round", None) or (lambda acts: [env.step(a) for a in acts])
    warm = [generator.problems(64, range(1, 21), seed=100 + i) for i in range(4)]
    step_round(warm)  # worker start-up and first-call costs stay out of the timing
    seconds, rewards = [], []
    for r in range(rounds):
        actions = [generator.problems(64, range(1, 21), seed=10 * r + i) for i in range(4)]
        start = time.perf_counter()
        steps = step_round(actions)
        seconds.append(time.perf_counter() - start)
        rewards += [s[1] for s in steps]
    env.close()
    return {"seconds": seconds, "rewards": rewards, "soar_env": soar_env.__file__}


def _child(case: str, args, tree: Path | None) -> dict:
    env = dict(os.environ)
    if tree is not None:  # import the old revision's soar_env ahead of the installed one
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, __file__, "--case", case, "--env", args.env,
                          "--workers", str(args.workers), "--inner-runs", str(args.inner_runs)],
                         capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode:
        raise SystemExit(f"case {case} failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    expected = tree if tree is not None else REPO
    if not data["soar_env"].startswith(str(expected)):
        raise SystemExit(f"case {case} imported {data['soar_env']}, not the tree {expected}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the cases")
    parser.add_argument("--workers", type=int, default=2)
    # v1, the id of issue 21's target and of every committed round_speed result (the package
    # default moved to v4 in 0.6.0).
    parser.add_argument("--env", default="SOAR-Tiny-v1", help="a tiny id")
    parser.add_argument("--baseline", help="a git revision whose round is timed too")
    parser.add_argument("--baseline-executors", nargs="+", default=["serial"],
                        choices=["serial", "lockstep", "lockstep:2"],
                        help="the baseline revision's executors (default: serial; lockstep needs >= 0.4.0)")
    parser.add_argument("--executors", nargs="+", default=["serial", "lockstep"],
                        choices=["serial", "lockstep", "lockstep:2", "process", "ray"],
                        help="lockstep:2 = lockstep in 2 worker processes; 'ray' needs the [ray] extra")
    parser.add_argument("--inner-runs", type=int, default=1, help="r: inner runs per dataset")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.env, args.case, args.workers, 1, args.inner_runs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        # case name -> (executor, code tree; None: this checkout)
        cases: dict[str, tuple[str, Path | None]] = {}
        old_tree = Path(tmp) / "baseline"
        if args.baseline:
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old_tree),
                            args.baseline], check=True)
            for executor in args.baseline_executors:
                cases[f"{executor} at {args.baseline}"] = (executor, old_tree)
        for executor in args.executors:
            name = f"{executor}, {args.workers} workers" if executor in ("process", "ray") else executor
            cases[name] = (executor, None)
        seconds: dict[str, list] = {name: [] for name in cases}
        rewards: dict[str, list] = {}
        try:
            for _ in range(args.repeats):
                for name, (executor, tree) in cases.items():
                    data = _child(executor, args, tree)
                    seconds[name] += data["seconds"]
                    rewards[name] = data["rewards"]
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)])
    first = next(iter(cases))
    base = statistics.median(seconds[first])
    mean = {n: statistics.fmean(r) for n, r in rewards.items()}
    print(f"{args.env}, one grounded round at its defaults (r = {args.inner_runs}), median of "
          f"{args.repeats}\n")
    print(f"| case | seconds per round | speed-up vs {first} | rewards equal | mean reward vs {first} |\n"
          "|---|---:|---:|---|---:|")
    for name in cases:
        median = statistics.median(seconds[name])
        print(f"| {name} | {median:.1f} | {base / median:.2f}x | {rewards[name] == rewards[first]} | "
              f"{mean[name] / mean[first] - 1:+.1%} |")
    result = {"env": args.env, "inner_runs": args.inner_runs, "repeats": args.repeats,
              "baseline": args.baseline, "per_repeat_seconds": seconds,
              "median_seconds": {n: statistics.median(s) for n, s in seconds.items()},
              "speedup": {n: base / statistics.median(s) for n, s in seconds.items()},
              "rewards": rewards, "rewards_equal": {n: rewards[n] == rewards[first] for n in cases}}
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
