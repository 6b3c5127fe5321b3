"""Peak memory and time of ten stacked fresh students (the main job's evaluation) under
``LockstepRLOO``'s memory bounds, side by side.

Ten fresh students (five curricula of 128 good stones x two student seeds, as ``soar-env
train`` evaluates five variants at two seeds) train in one stack on SOAR-Tiny-v1's hard set
in curriculum mode for ``--steps`` steps, without early stopping. Each case runs in its own
process and the cases alternate ``--repeats`` times; the peak is the process's RSS sampled
every 10 ms. The mean reward of each student's last 10 steps shows that the bounds change
how a step is computed, not what it trains.

    python benchmarks/lockstep_memory.py --steps 80 --repeats 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

CASES = {
    "0.4.0: one pass of 65,536 tokens, every row decoded at once": (1 << 16, 1 << 30),
    "0.4.0 bounded: passes of 8,192 tokens, decoding in slices of 2,048 rows": (1 << 13, 1 << 11),
    "0.5.0 (halved): passes of 4,096 tokens, decoding in slices of 1,024 rows": (1 << 12, 1 << 10),
    "passes of 4,096 tokens, decoding in slices of 2,048 rows": (1 << 12, 1 << 11),
    "passes of 8,192 tokens, decoding in slices of 1,024 rows": (1 << 13, 1 << 10),
}


def run_case(steps: int, max_pass_tokens: int, max_decode_rows: int) -> dict:
    import gymnasium as gym
    import psutil

    import soar_env  # noqa: F401 (registers the ids)
    from soar_env import embedded, fresh_students, lockstep
    from soar_env.evaluation import EvalConfig

    init = lockstep.LockstepRLOO.__init__

    def bounded(self, *args, **kwargs):
        kwargs.update(max_pass_tokens=max_pass_tokens, max_decode_rows=max_decode_rows)
        init(self, *args, **kwargs)

    lockstep.LockstepRLOO.__init__ = bounded
    env = gym.make("SOAR-Tiny-v1", disable_env_checker=True).unwrapped
    env.reset(seed=0)
    runs = [fresh_students.FreshRun(embedded.good_stones(128, seed=i // 2), i % 2) for i in range(10)]
    process, peak, done = psutil.Process(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    start_rss = process.memory_info().rss
    threading.Thread(target=watch, daemon=True).start()
    start = time.perf_counter()
    fresh_students.train_fresh_students(env, runs, EvalConfig(max_steps=steps, early_stop=False))
    seconds = time.perf_counter() - start
    done.set()
    return {"seconds": seconds, "peak_gb": max(peak[0], process.memory_info().rss) / 1e9,
            "start_gb": start_rss / 1e9,
            "last10_reward": [statistics.mean(r.rewards[-10:]) for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="docs/results/speed/lockstep_memory.json")
    parser.add_argument("--only", nargs="+", type=int, help="indices of CASES to run (default: all)")
    parser.add_argument("--case", nargs=3, type=int, help=argparse.SUPPRESS)  # child: steps, pass, rows
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(*args.case)))
        return
    cases = {name: bounds for i, (name, bounds) in enumerate(CASES.items())
             if args.only is None or i in args.only}
    per_case: dict[str, list[dict]] = {name: [] for name in cases}
    for repeat in range(args.repeats):
        for name, (tokens, rows) in cases.items():
            child = [sys.executable, __file__, "--case", str(args.steps), str(tokens), str(rows)]
            out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            per_case[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"repeat {repeat}, {name}: {per_case[name][-1]['seconds']:.1f} s, "
                  f"peak {per_case[name][-1]['peak_gb']:.2f} GB", flush=True)
    first_seconds = statistics.mean(r["seconds"] for r in per_case[next(iter(cases))])
    summary = {}
    for name, results in per_case.items():
        seconds = [r["seconds"] for r in results]
        summary[name] = {
            "max_pass_tokens": CASES[name][0], "max_decode_rows": CASES[name][1],
            "seconds_mean": statistics.mean(seconds),
            "peak_gb_mean": statistics.mean(r["peak_gb"] for r in results),
            "time_ratio_to_first": statistics.mean(seconds) / first_seconds,
            "per_seed": results,  # one entry per repeat (the workload's seeds are fixed)
        }
        row = summary[name]
        print(f"| {name} | {row['seconds_mean']:.1f} s | {row['time_ratio_to_first']:.2f}x "
              f"| {row['peak_gb_mean']:.2f} GB |")
    Path(args.out).write_text(json.dumps({
        "what": "10 stacked fresh students on SOAR-Tiny-v1 (curriculum mode), no early stop",
        "steps": args.steps, "repeats": args.repeats, "cases": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
