"""Grounded vs intrinsic reward: the same teacher learner, two rewards, over seeds.

For each seed, trains the SOAR teacher on the grounded reward and on the learnability
reward (the paper's Intrinsic-T), then evaluates each with the paper's protocol (128
questions from the trained teacher -> fresh student -> held-out pass@k), next to Hard-Only.
Ends with one table and one figure (reward curves, proposal diversity, pass@k).

    python examples/compare_rewards.py --seeds 3 --rounds 12 [--env SOAR-Tiny-v0]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console

from soar_agents.app.cli import parse_settings
from soar_agents.app.report import eval_table, plot_pass_at_k
from soar_agents.app.runs import evaluate_run, teacher_variant, train_run
from soar_env import DEFAULT_ENV

parser = argparse.ArgumentParser()
parser.add_argument("--env", default=DEFAULT_ENV, help="a registered id (default: the package default)")
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--rounds", type=int, default=12)
parser.add_argument("--eval-steps", type=int, default=None,
                    help="fresh-student steps (default: the env's protocol, early stopping)")
parser.add_argument("--out", default="runs/compare_rewards")
parser.add_argument("--set", nargs="*", default=[], help="env settings key=value (e.g. dataset_size=16)")
args = parser.parse_args()
overrides, _ = parse_settings(args.env, "soar", args.set)  # typed, checked before any work

teachers = {"soar": "grounded", "learnability": "learnability (intrinsic)"}
curves, diversity, results = {}, {}, {}
for seed in range(args.seeds):
    for teacher in teachers:
        run = Path(args.out) / f"{teacher}_seed{seed}"
        history = train_run(run, args.env, teacher, seed, args.rounds, resume=True, overrides=overrides)
        curves.setdefault(teacher, []).append([row["charts/reward_mean"] for row in history])
        variants = [teacher_variant(teacher)] + (["Hard-Only"] if teacher == "soar" else [])
        evaluated = evaluate_run(run, [seed], variants, eval_steps=args.eval_steps, progress=True)
        for variant, per_seed in evaluated["results"].items():
            results.setdefault(variant, {}).update(per_seed)
        diversity.setdefault(teacher, []).append(evaluated["diversity"][teacher_variant(teacher)])

console = Console()
console.print(eval_table({"results": results}, title=f"held-out pass@k, {args.seeds} seeds"))

# The committed 5-seed leaderboard of this id, the reference to read this run against (how
# each was made: docs/results.md); a run with fewer rounds or seeds need not match it.
COMMITTED = {"SOAR-Tiny-v4": "tiny-v4", "SOAR-Tiny-v2": "tiny-v2/attempt4", "SOAR-Tiny-v1": "tiny-v1",
             "SOAR-Tiny-v0": "tiny-v0"}
results_dir = Path(__file__).resolve().parents[1] / "docs" / "results"
board = results_dir / COMMITTED.get(args.env, "-") / "leaderboard.json"
if board.is_file():
    committed = json.loads(board.read_text())
    rows = {row["variant"]: row["pass@1"] for row in committed["leaderboard"]}
    where = board.relative_to(results_dir.parents[1])
    print(f"committed leaderboard ({where}: {len(committed['seeds'])} teacher seeds, "
          f"{committed['rounds']} rounds), held-out pass@1:")
    for variant in ("Grounded-T", "Intrinsic-T", "Base-T", "Hard-Only"):
        if variant in rows:
            print(f"  {variant:12s} {rows[variant]['mean']:.3g} ± {rows[variant]['ci95']:.2g}")
for teacher, label in teachers.items():
    d = diversity[teacher]
    console.print(f"{label:26s} questions: Vendi {np.mean([x['vendi'] for x in d]):.1f}, "
                  f"self-BLEU {np.mean([x['self_bleu'] for x in d]):.1f}, "
                  f"length entropy {np.mean([x['length_entropy'] for x in d]):.2f} bits, "
                  f"mean length {np.mean([x['mean_length'] for x in d]):.1f}")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for i, teacher in enumerate(teachers):
    for curve in curves[teacher]:
        axes[0 if teacher == "soar" else 1].plot(curve, color=f"C{i}", alpha=0.6)
axes[0].set(title="grounded teacher: grounded reward per round", xlabel="round")
axes[1].set(title="learnability teacher: learnability reward per round", xlabel="round")
plot_pass_at_k(axes[2], results)
fig.tight_layout()
fig.savefig(Path(args.out) / "compare_rewards.png", dpi=110)
print(f"wrote {Path(args.out) / 'compare_rewards.png'}")
