"""Held-out value of 128 questions from the teachers of ``benchmarks/teacher_learning.py``.

Loads each seed's trained SOAR (grounded, 32 rounds) and learnability (50 rounds) teacher
from ``--runs`` and also builds the untrained teacher (Base-T). Each proposes 128 questions,
and the paper's protocol scores them: a fresh student trained on them plus D_train, then
exact held-out pass@k on SOAR-Tiny-v0 (``EvalConfig.tiny()``). Prints a table with the
questions' length profile, and ends with one JSON line.

    python benchmarks/teacher_questions.py --seeds 3 --runs runs/teacher_learning
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

from soar_agents import make_teacher, make_teacher_env
from soar_agents.app.runs import sample_questions
from soar_env.diagnostics import proposal_stats
from soar_env.evaluation import EvalConfig, evaluate_curriculum

TEACHERS = {"Base-T": "base", "Grounded-T": "soar", "Intrinsic-T": "learnability"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", default="runs/teacher_learning")
    args = parser.parse_args()
    scores: dict[str, list[dict]] = {name: [] for name in TEACHERS}
    profiles: dict[str, list[dict]] = {name: [] for name in TEACHERS}
    for seed in range(args.seeds):
        for variant, name in TEACHERS.items():
            teacher = make_teacher(name)
            env = make_teacher_env("SOAR-Tiny-v0", teacher, tau=math.inf)
            env.reset(seed=seed)
            teacher.setup(env.unwrapped, seed)
            if name != "base":
                teacher.load(Path(args.runs) / f"{name}_seed{seed}" / "teacher.safetensors")
            questions = sample_questions(teacher, env.unwrapped, 128)
            profiles[variant].append(proposal_stats(env.unwrapped.domain, questions))
            result = evaluate_curriculum(env.unwrapped, questions, [seed], EvalConfig.tiny(), variant)
            scores[variant].append(result.per_seed[0])
            print(
                f"seed {seed} {variant:12s} pass@1 {result.per_seed[0][1]:.3g}  pass@32 "
                f"{result.per_seed[0][32]:.3g}  mean length {profiles[variant][-1]['mean_length']:.1f}",
                flush=True,
            )
    summary = {}
    print(
        f"\n{'questions':12s}{'pass@1':>12s}{'pass@32':>12s}{'mean len':>10s}{'len 1-3':>9s}{'len 4-6':>9s}"
        f"{'len 13-20':>10s}{'length H':>10s}"
    )
    for variant in TEACHERS:
        p1 = [s[1] for s in scores[variant]]
        p32 = [s[32] for s in scores[variant]]
        prof = {
            k: float(np.mean([p[k] for p in profiles[variant]]))
            for k in ("mean_length", "length_1_3", "length_4_6", "length_13_20", "length_entropy")
        }
        summary[variant] = {"pass@1": p1, "pass@32": p32, **prof}
        print(
            f"{variant:12s}{np.mean(p1):12.3g}{np.mean(p32):12.3g}{prof['mean_length']:10.1f}"
            f"{prof['length_1_3']:9.2f}{prof['length_4_6']:9.2f}{prof['length_13_20']:10.2f}"
            f"{prof['length_entropy']:10.2f}"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
