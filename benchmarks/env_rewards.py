"""The grounded reward of SOAR-Tiny-v0 for good, narrow and hard datasets, over seeds.

Through the public API (``gym.make("SOAR-Tiny-v0")`` at its defaults): each round scores a
good stepping-stone dataset (64 medium chains, all skills), a narrow one (64 medium chains
of ``+`` only) and a dataset of hard training problems against the same reward questions
and baseline. Prints a table (mean, sd, standard error per kind, and how often good beat
narrow within a round), then one JSON line.

    python benchmarks/env_rewards.py --seeds 5 --rounds 2
"""

import argparse
import json
import statistics
import time

import gymnasium as gym

import soar_env  # noqa: F401
from soar_env import embedded

KINDS = ("good", "narrow", "hard")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per seed")
    args = parser.parse_args()
    started = time.time()
    env = gym.make("SOAR-Tiny-v0", group_size=len(KINDS))
    rewards = {k: [] for k in KINDS}
    good_wins = 0
    for seed in range(args.seeds):
        env.reset(seed=seed)
        hard = env.unwrapped.hard_set.train
        for r in range(args.rounds):
            data_seed = 100 * seed + r
            datasets = {
                "good": embedded.good_stones(64, seed=data_seed),
                "narrow": embedded.narrow_stones(64, seed=data_seed),
                "hard": [hard[(data_seed + i) % len(hard)] for i in range(64)],
            }
            round_rewards = {k: env.step(d)[1] for k, d in datasets.items()}
            for k, v in round_rewards.items():
                rewards[k].append(v)
            good_wins += round_rewards["good"] > round_rewards["narrow"]
            print(f"seed {seed} round {r}: " + "  ".join(f"{k} {v:+.2e}" for k, v in round_rewards.items()),
                  flush=True)
    n = len(rewards["good"])
    summary = {k: {"mean": statistics.mean(v), "sd": statistics.stdev(v) if n > 1 else 0.0,
                   "rewards": v} for k, v in rewards.items()}
    for s in summary.values():
        s["se"] = s["sd"] / n ** 0.5
    summary["good_beats_narrow_in_round"] = good_wins / n
    summary["rounds"] = n
    summary["seconds"] = round(time.time() - started, 1)
    print(f"\n{'dataset':8s}{'mean':>12s}{'sd':>12s}{'se':>12s}   ({n} rounds, {args.seeds} seeds)")
    for k in KINDS:
        s = summary[k]
        print(f"{k:8s}{s['mean']:12.3e}{s['sd']:12.3e}{s['se']:12.3e}")
    print(f"good > narrow in {good_wins}/{n} rounds; {summary['seconds']:.0f} s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
