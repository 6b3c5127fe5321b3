"""A stable-baselines3 PPO teacher: generator parameters as actions, through a wrapper.

``ParametricTeacherWrapper`` turns SOAR-Tiny-v0 into an env SB3 accepts: the action is
(chain length, skill set), the observation the env's numeric stats. PPO trains unchanged;
then the trained policy runs as a teacher in the common loop.

    python examples/sb3_teacher.py --timesteps 512
"""

import argparse

import numpy as np

from soar_agents import make_teacher, train_teacher
from soar_agents.teachers.sb3_teacher import train_ppo
from soar_env.wrappers.parametric import SKILL_SETS

parser = argparse.ArgumentParser()
parser.add_argument("--timesteps", type=int, default=512)
parser.add_argument("--out", default="runs/sb3_example")
parser.add_argument("--dataset-size", type=int, default=16)
parser.add_argument("--inner-steps", type=int, default=5)
args = parser.parse_args()

small = dict(dataset_size=args.dataset_size, inner_steps=args.inner_steps)  # PPO needs many cheap steps
model = train_ppo("SOAR-Tiny-v0", total_timesteps=args.timesteps, seed=0, log_dir=args.out, **small)
print(f"PPO trained for {model.num_timesteps} env steps; logs in {args.out}")

teacher = make_teacher("sb3-ppo", model=model)
history = train_teacher(teacher, "SOAR-Tiny-v0", rounds=2, seed=1, progress=False, **small)
for i, row in enumerate(history):
    print(f"round {i}: reward {row['charts/reward_mean']:.3g}, mean chain length "
          f"{row['proposals/mean_length']:.1f}, skill entropy {row['proposals/skill_entropy']:.2f}")
action, _ = model.predict(np.zeros(8, dtype=np.float32), deterministic=True)
print(f"PPO's choice at an episode's start: chain length {action[0] + 1}, skills {SKILL_SETS[action[1]]}")
