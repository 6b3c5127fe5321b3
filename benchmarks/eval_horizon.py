"""How long must a fresh student train before curricula rank stably? (SOAR-Tiny evaluation)

The evaluation protocol trains a fresh student on a curriculum plus D_train and measures
held-out pass@1. Stopping too early measures how fast a curriculum starts, not how far it
takes the student: at 60 steps length-2 chains beat length 4-6 chains, at 120 the order
flips. This script trains fresh students on a few fixed curricula for ``--steps`` steps at
the env's evaluation settings (no early stop), measures exact held-out pass@1 at
checkpoints, and reports where ``SlopeStopper`` (the default rule) would have stopped.

    python benchmarks/eval_horizon.py --env SOAR-Tiny-v0 --steps 600 --seeds 2 \\
        --out docs/results/eval_horizon

Writes ``OUT.json`` (curves per curriculum and seed) and ``OUT.png``.
"""

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym

import soar_env
from soar_env import embedded
from soar_env.evaluation import EvalConfig, SlopeStopper, evaluate_student, train_fresh_student


def curricula(n: int, seed: int) -> dict:
    domain = embedded.tiny_domain()
    return {
        "length 2 (learnability's pick)": domain.problems(n, [2], seed=seed),
        "length 4-6 (good stones)": domain.problems(n, range(4, 7), seed=seed),
        "length 1-20 (untrained teacher)": domain.problems(n, range(1, 21), seed=seed),
        "Hard-Only": [],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="SOAR-Tiny-v0")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--every", type=int, default=20, help="checkpoint interval (steps)")
    ap.add_argument("--questions", type=int, default=128, help="curriculum size (the paper's 128)")
    ap.add_argument("--out", default="eval_horizon")
    args = ap.parse_args()
    env = gym.make(args.env).unwrapped
    env.reset(seed=0)
    config = EvalConfig.for_env(env, max_steps=args.steps, early_stop=False, ks=(1,))
    results = {"env": args.env, "version": soar_env.__version__, "steps": args.steps,
               "every": args.every, "eval": {k: str(v) for k, v in vars(config).items()},
               "curves": {}}
    started = time.perf_counter()
    for seed in range(args.seeds):
        for name, curriculum in curricula(args.questions, seed).items():
            points = []

            def measure(done: int, points=points, seed=seed) -> None:
                if done % args.every == 0:
                    points.append((done, evaluate_student(env, seed, config)[1]))

            _, rewards = train_fresh_student(env, curriculum, seed, config, on_step=measure)
            stopper = SlopeStopper(config.smoothing, config.stop_fraction, config.min_steps)
            stop = next((t + 1 for t, r in enumerate(rewards) if stopper.update(r)), None)
            results["curves"].setdefault(name, []).append(
                {"seed": seed, "pass@1": points, "train_reward": rewards, "rule_stops_at": stop})
            print(f"seed {seed} {name:<32} " + " ".join(f"{s}:{p:.2e}" for s, p in points[4::5])
                  + f"  rule stops at {stop}", flush=True)
    results["wall_seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')} "
          f"in {results['wall_seconds']:.0f} s")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (name, runs), style in zip(results["curves"].items(), ("-", "--", "-.", ":")):
        for i, run in enumerate(runs):
            steps, values = zip(*run["pass@1"])
            ax.plot(steps, values, style, color=f"C{list(results['curves']).index(name)}",
                    label=name if i == 0 else None, alpha=0.9 if i == 0 else 0.5)
            if run["rule_stops_at"]:
                ax.axvline(run["rule_stops_at"], color=f"C{list(results['curves']).index(name)}",
                           lw=0.6, alpha=0.4)
    ax.set_yscale("log")
    ax.set_xlabel("fresh-student RLOO steps")
    ax.set_ylabel("held-out exact pass@1 (log)")
    ax.set_title("Evaluation horizon: when does the curriculum ranking settle?", fontsize=10)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, f"{results['env']}, seeds {len(next(iter(results['curves'].values())))}, "
             "thin lines: where SlopeStopper stops", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
