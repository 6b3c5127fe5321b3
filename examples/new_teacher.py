"""How to benchmark a new teacher algorithm with the harness.

1. Subclass ``soar_agents.Teacher``: ``propose`` returns g datasets of n problems, ``learn``
   gets the round's g rewards (here: a teacher that keeps a running best chain length and
   explores around it).
2. Train it with ``train_teacher`` (logs, checkpoints, progress bar).
3. Score it with the paper's protocol: 128 of its questions train a fresh student; held-out
   pass@k on D_test, against Hard-Only, over student seeds.

    python examples/new_teacher.py --rounds 8 --seeds 2
"""

import argparse
import random

from rich.console import Console

from soar_agents import Teacher, train_teacher
from soar_agents.app.report import eval_table
from soar_env.evaluation import EvalConfig, evaluate_curriculum


class HillClimbTeacher(Teacher):
    """Proposes chains of one length per dataset; moves toward the length that paid best."""

    name = "hill-climb"

    def setup(self, env, seed):
        super().setup(env, seed)
        self.rng, self.best, self.best_reward = random.Random(seed), 10, float("-inf")

    def propose(self, observation, count):
        self.lengths = [max(1, min(20, self.best + self.rng.choice((-2, -1, 0, 1, 2)))) for _ in range(count)]
        seeds = [self.rng.randrange(2**31) for _ in self.lengths]
        generator = self.domain.generator
        return [generator.problems(self.dataset_size, [n], seed=s) for n, s in zip(self.lengths, seeds)]

    def learn(self, rewards, infos):
        reward, length = max(zip(rewards, self.lengths))
        if reward > self.best_reward:
            self.best, self.best_reward = length, reward
        return {"best_length": float(self.best)}


parser = argparse.ArgumentParser()
parser.add_argument("--rounds", type=int, default=8)
parser.add_argument("--seeds", type=int, default=2, help="student seeds of the evaluation")
parser.add_argument("--eval-steps", type=int, default=None,
                    help="fresh-student steps (default: the protocol's, up to 300 with early stopping)")
args = parser.parse_args()

import gymnasium as gym  # noqa: E402

import soar_env  # noqa: E402,F401

env = gym.make("SOAR-Tiny-v0", rounds=args.rounds)
teacher = HillClimbTeacher()
history = train_teacher(teacher, env, seed=0, log_dir="runs/new_teacher")
print(f"best length after {len(history)} rounds: {teacher.best}")

questions = [p for d in teacher.propose({}, 2) for p in d]  # 128 questions from the trained teacher
config = EvalConfig.tiny(**({"max_steps": args.eval_steps} if args.eval_steps else {}))
seeds = list(range(args.seeds))
results = {}
for name, curriculum in (("hill-climb-T", questions), ("Hard-Only", [])):
    scored = evaluate_curriculum(env.unwrapped, curriculum, seeds, config, name, progress=True)
    results[name] = {str(s): {str(k): v for k, v in r.items()} for s, r in zip(seeds, scored.per_seed)}
Console().print(eval_table({"results": results}))
