"""A custom teacher against SOAR-Tiny-v0 in about 30 lines.

The teacher proposes chains of a length it picks per round and keeps the length that the
environment paid best for: a (very) small bandit over one knob of the domain.

    python examples/quickstart.py --rounds 3
"""

import argparse

import gymnasium as gym
import numpy as np

import soar_env  # noqa: F401  (registers the ids)
from soar_env.embedded import tiny_domain

parser = argparse.ArgumentParser()
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

env = gym.make("SOAR-Tiny-v0", rounds=args.rounds, progress=True)  # a bar over inner RL steps
domain = tiny_domain()
obs, info = env.reset(seed=args.seed)
print(f"hard set: {info['hard_set']['hard']} problems; teacher prompt {obs['prompt']!r}")
rng = np.random.default_rng(args.seed)
value = {length: 0.0 for length in (2, 5, 10)}  # mean reward seen per chain length
truncated, step = False, 0
while not truncated:
    length = max(value, key=value.get) if rng.random() > 0.3 else rng.choice(list(value))
    dataset = domain.problems(64, [length], seed=step)  # 64 problems, correct answers
    obs, reward, terminated, truncated, info = env.step(dataset)
    value[length] = 0.5 * value[length] + 0.5 * reward
    print(f"round {info['round']} step {info['round_position']}: length {length:2d} "
          f"reward {reward:+.2e} (baseline acc {info['baseline_accuracy']:.2e})")
    step += 1
print("value per length:", {k: f"{v:.2e}" for k, v in value.items()})
