"""Does the SOAR teacher learn on SOAR-Tiny-v0, and does the learnability teacher collapse?

Runs, per seed, through ``soar_agents.train_teacher`` and ``gym.make("SOAR-Tiny-v0")``:
- the SOAR teacher (tiny preset) on the grounded reward, ``--rounds`` rounds;
- the learnability teacher (same learner, intrinsic reward), ``--intrinsic-rounds`` rounds.

The env is SOAR-Tiny-v0 at its defaults (50 rounds per episode: the horizon of the
teacher's cosine learning-rate decay, and the most rounds a run can have) except that
promotion is off (``tau`` = inf), so that the baseline student stays fixed: a rise in the
grounded reward can then only come from the teacher's proposals (with promotion, a stronger
baseline alone changes the scale of later rewards). Checks, averaged over seeds:
1. SOAR: mean round reward in the last quarter > first quarter;
2. SOAR: its proposals move toward the stepping stones (more medium chains 4-6, fewer
   long ones 13-20; the hard set is lengths 18-20);
3. learnability: its proposals lose diversity (length entropy of the last quarter below
   the first quarter's).

Each finished run is saved under ``--out`` and skipped when the benchmark is rerun, so an
interrupted benchmark resumes. Prints a table, writes ``summary.json`` and a PNG, and ends
with one JSON line.

    python benchmarks/teacher_learning.py --seeds 3
"""

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from soar_agents import make_teacher, train_teacher

TEACHERS = {"soar": "grounded reward", "learnability": "intrinsic reward"}
KEYS = (
    "charts/reward_mean",
    "proposals/length_4_6",
    "proposals/length_13_20",
    "proposals/mean_length",
    "proposals/length_entropy",
    "proposals/skill_entropy",
    "proposals/distinct_fraction",
    "teacher/well_formed",
)


def quarters(history: list[dict], key: str) -> tuple[float, float]:
    values = [row[key] for row in history if key in row]
    q = max(1, len(values) // 4)
    return float(np.mean(values[:q])), float(np.mean(values[-q:]))


def run(name: str, seed: int, rounds: int, out: Path) -> dict:
    path = out / f"{name}_seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.time()
    history = train_teacher(
        make_teacher(name),
        "SOAR-Tiny-v0",
        rounds=rounds,
        seed=seed,
        log_dir=out / f"{name}_seed{seed}",
        progress=False,
        tau=math.inf,
    )
    result = {
        "teacher": name,
        "seed": seed,
        "rounds": len(history),
        "seconds": time.time() - started,
        "history": history,
    }
    path.write_text(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=32, help="SOAR teacher rounds per seed")
    parser.add_argument("--intrinsic-rounds", type=int, default=50,
                        help="learnability rounds per seed (at most the env's 50)")
    parser.add_argument("--out", default="runs/teacher_learning")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {name: [] for name in TEACHERS}
    for seed in range(args.seeds):
        for name in TEACHERS:
            rounds = args.rounds if name == "soar" else args.intrinsic_rounds
            results[name].append(run(name, seed, rounds, out))
            r = results[name][-1]
            first, last = quarters(r["history"], "charts/reward_mean")
            print(
                f"{name} seed {seed}: {r['rounds']} rounds in {r['seconds']:.0f} s; "
                f"reward first quarter {first:.3g}, last quarter {last:.3g}",
                flush=True,
            )

    summary: dict = {"seeds": args.seeds}
    print(
        f"\n{'teacher':14s}{'figure':28s}{'first quarter':>15s}{'last quarter':>15s}"
        "   per seed (last - first)"
    )
    for name in TEACHERS:
        summary[name] = {}
        for key in KEYS:
            pairs = [quarters(r["history"], key) for r in results[name]]
            firsts, lasts = [p[0] for p in pairs], [p[1] for p in pairs]
            summary[name][key] = {
                "first": statistics.mean(firsts),
                "last": statistics.mean(lasts),
                "per_seed_change": [b - a for a, b in pairs],
            }
            change = " ".join(f"{b - a:+.3g}" for a, b in pairs)
            print(
                f"{name:14s}{key:28s}{statistics.mean(firsts):15.4g}{statistics.mean(lasts):15.4g}   {change}"
            )
        summary[name]["seconds"] = sum(r["seconds"] for r in results[name])
    soar, learn = summary["soar"], summary["learnability"]
    checks = {
        "soar_reward_rises": soar["charts/reward_mean"]["last"] > soar["charts/reward_mean"]["first"],
        "soar_moves_to_stones": (
            soar["proposals/length_4_6"]["last"] > soar["proposals/length_4_6"]["first"]
            and soar["proposals/length_13_20"]["last"] < soar["proposals/length_13_20"]["first"]
        ),
        "learnability_loses_diversity": (
            learn["proposals/length_entropy"]["last"] < learn["proposals/length_entropy"]["first"]
        ),
    }
    summary["checks"] = checks
    print()
    for check, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {check}")
    print(f"wall time: soar {soar['seconds'] / 60:.1f} min, learnability {learn['seconds'] / 60:.1f} min")
    plot(results, out / "teacher_learning.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(
        json.dumps(
            {
                "checks": checks,
                "soar_reward": soar["charts/reward_mean"],
                "learnability_length_entropy": learn["proposals/length_entropy"],
            }
        )
    )


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in results["soar"]:
        h = r["history"]
        axes[0].plot([row["charts/reward_mean"] for row in h], alpha=0.7, label=f"seed {r['seed']}")
        axes[1].plot([row["proposals/length_4_6"] for row in h], color="C0", alpha=0.7)
        axes[1].plot([row["proposals/length_13_20"] for row in h], color="C3", alpha=0.7)
    for r in results["learnability"]:
        axes[2].plot([row["proposals/length_entropy"] for row in r["history"]], alpha=0.7)
    axes[0].set(title="SOAR teacher: grounded reward per round", xlabel="round")
    axes[0].legend()
    axes[1].set(title="SOAR proposals: lengths 4-6 (blue), 13-20 (red)", xlabel="round", ylabel="fraction")
    axes[2].set(title="learnability teacher: length entropy (bits)", xlabel="round")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
