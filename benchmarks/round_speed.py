"""Seconds per grounded round of SOAR-Tiny-v0 at its defaults: serial vs process executor.

A round is g=4 datasets (n=64 uniform-length chains, the tiny teacher's distribution), each
trained r=1 x K=10 RLOO steps and measured on M=64 reward questions. Each executor runs in
its own process, alternating, ``--repeats`` rounds each, so the ratio compares like with
like on a shared machine; the rewards of both are checked equal (the executors' contract).

    python benchmarks/round_speed.py --repeats 2 --workers 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def run_case(executor: str, workers: int, rounds: int) -> dict:
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_env import embedded

    env = gym.make("SOAR-Tiny-v0", executor=executor, num_workers=workers, rounds=rounds + 1)
    env.reset(seed=0)
    domain = embedded.tiny_domain()
    warm = [domain.problems(64, range(1, 21), seed=100 + i) for i in range(4)]
    env.unwrapped.step_round(warm)  # worker start-up and first-call costs stay out of the timing
    seconds, rewards = [], []
    for r in range(rounds):
        actions = [domain.problems(64, range(1, 21), seed=10 * r + i) for i in range(4)]
        start = time.perf_counter()
        steps = env.unwrapped.step_round(actions)
        seconds.append(time.perf_counter() - start)
        rewards += [s[1] for s in steps]
    env.close()
    return {"seconds": seconds, "rewards": rewards}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the two cases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.workers, 1)))
        return
    results: dict[str, list] = {"serial": [], "process": []}
    rewards: dict[str, list] = {"serial": [], "process": []}
    for _ in range(args.repeats):
        for case in results:
            out = subprocess.run([sys.executable, __file__, "--case", case, "--workers", str(args.workers)],
                                 capture_output=True, text=True, check=True)
            data = json.loads(out.stdout.strip().splitlines()[-1])
            results[case] += data["seconds"]
            rewards[case] = data["rewards"]
    serial, process = statistics.median(results["serial"]), statistics.median(results["process"])
    print("| executor | seconds per round (median) |\n|---|---:|")
    print(f"| serial | {serial:.1f} |\n| process, {args.workers} workers | {process:.1f} |")
    print(f"\nspeed-up {serial / process:.2f}x; rewards equal: {rewards['serial'] == rewards['process']}")
    print(json.dumps({"seconds": results, "speedup": serial / process,
                      "rewards_equal": rewards["serial"] == rewards["process"]}))


if __name__ == "__main__":
    main()
