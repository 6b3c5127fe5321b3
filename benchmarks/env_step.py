"""Seconds per step and per round of SOAR-Tiny-v0 at its default config.

Default config: n=64 problems, r=1 inner run, K=10 RLOO steps, M=64 reward questions,
g=4 steps per round. The action is what a teacher would send: 64 well-formed problems of
uniform chain length 1-20 (the tiny teacher's own distribution). The first reset builds or
reads the hard set and is timed separately. Prints a table, then one JSON line.

    python benchmarks/env_step.py --rounds 2
"""

import argparse
import json
import statistics
import time

import gymnasium as gym

import soar_env  # noqa: F401
from soar_env import embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    env = gym.make("SOAR-Tiny-v0")
    obs, info = env.reset(seed=args.seed)
    setup = time.perf_counter() - t0
    g = env.unwrapped.config.group_size
    domain = embedded.tiny_domain()
    steps, rounds = [], []
    for r in range(args.rounds):
        start = time.perf_counter()
        for i in range(g):
            action = domain.problems(64, range(1, 21), seed=1000 * r + i)
            t = time.perf_counter()
            env.step(action)
            steps.append(time.perf_counter() - t)
        rounds.append(time.perf_counter() - start)
    result = {
        "setup_seconds": round(setup, 2),
        "step_seconds_mean": round(statistics.mean(steps), 3),
        "step_seconds_max": round(max(steps), 3),
        "round_seconds_mean": round(statistics.mean(rounds), 3),
        "steps": len(steps),
        "config": {k: getattr(env.unwrapped.config, k) for k in
                   ("dataset_size", "inner_runs", "inner_steps", "reward_questions", "group_size")},
    }
    print(f"setup (load + hard set): {setup:.1f} s")
    print(f"step:  mean {result['step_seconds_mean']:.2f} s, max {result['step_seconds_max']:.2f} s "
          f"over {len(steps)} steps (target <= 5 s)")
    print(f"round: mean {result['round_seconds_mean']:.2f} s (g = {g})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
