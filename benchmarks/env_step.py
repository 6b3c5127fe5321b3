"""Seconds per step of SOAR-Tiny-v0 at its default config, quiet and beside a busy process.

Default config: n=64 problems, r=1 inner run, K=10 RLOO steps, M=64 reward questions,
g=4 steps per round. The action is what a teacher would send: 64 well-formed problems of
uniform chain length 1-20 (the tiny teacher's own distribution).

Each case runs in its own process (OpenMP reads its wait policy when torch loads), one after
another in this run, so the ratios compare like with like on a shared machine:
- ``mode`` adaptive (soar-env's default: ``soar_env.threads`` drops to one torch thread while
  another process holds a core), fixed (torch's default thread count with OpenMP's default
  waiting: what soar-env did before 0.2.0) or passive (fixed threads, OMP_WAIT_POLICY=PASSIVE);
- ``busy`` 0 or 1 other CPU-bound processes running during the timed steps.

    python benchmarks/env_step.py --steps 2              # the four cases, a table and JSON
    python benchmarks/env_step.py --threads 1 --steps 2  # torch threads (0: torch's default)
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def run_case(steps: int, seed: int, threads: int, busy: int) -> dict:
    """Time ``steps`` env steps in this process (called in a child per case)."""
    import gymnasium as gym
    import torch

    import soar_env  # noqa: F401
    from soar_env import embedded

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    env = gym.make("SOAR-Tiny-v0")
    env.reset(seed=seed)
    setup = time.perf_counter() - t0
    domain = embedded.tiny_domain()
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    times = []
    try:
        for i in range(steps):
            action = domain.problems(64, range(1, 21), seed=1000 + i)
            t = time.perf_counter()
            env.step(action)
            times.append(time.perf_counter() - t)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    return {"setup_seconds": setup, "step_seconds": statistics.mean(times),
            "torch_threads": torch.get_num_threads(),
            "wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "busy": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: WAIT,BUSY in a child
    args = parser.parse_args()
    if args.case:
        busy = int(args.case.split(",")[1])
        print(json.dumps(run_case(args.steps, args.seed, args.threads, busy)))
        return
    results = []
    modes = {"adaptive": {}, "fixed": {"SOAR_ENV_THREADS": "0"},
             "passive": {"SOAR_ENV_THREADS": "0", "OMP_WAIT_POLICY": "PASSIVE"}}
    for wait, extra in modes.items():
        for busy in (0, 1):
            env = {**os.environ, **extra}
            out = subprocess.run(
                [sys.executable, __file__, "--case", f"{wait},{busy}", "--steps", str(args.steps),
                 "--seed", str(args.seed), "--threads", str(args.threads)],
                env=env, capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[-1]
            r["mode"] = wait
            print(f"{wait:<8} busy={busy}  threads at the end={r['torch_threads']}  "
                  f"step {r['step_seconds']:.2f} s  (setup {r['setup_seconds']:.1f} s)", flush=True)
    quiet = {r["mode"]: r["step_seconds"] for r in results if r["busy"] == 0}
    loaded = {r["mode"]: r["step_seconds"] for r in results if r["busy"] == 1}
    summary = {m: {"loaded_over_own_quiet": loaded[m] / quiet[m],
                   "quiet_over_fixed_quiet": quiet[m] / quiet["fixed"],
                   "loaded_over_fixed_quiet": loaded[m] / quiet["fixed"]} for m in quiet}
    for m, s in summary.items():
        print(f"{m:<8} loaded / own quiet {s['loaded_over_own_quiet']:.2f}x; vs the old quiet step: "
              f"quiet {s['quiet_over_fixed_quiet']:.2f}x, loaded {s['loaded_over_fixed_quiet']:.2f}x")
    print(json.dumps({"cases": results, "ratios": summary}))


if __name__ == "__main__":
    main()
