"""How long must a fresh student train before curricula rank stably? (SOAR-Tiny evaluation)

The evaluation protocol trains a fresh student on a curriculum plus D_train and measures
held-out pass@1. Stopping too early measures how fast a curriculum starts, not how far it
takes the student: at 60 steps length-2 chains beat length 4-6 chains, at 120 the order
flips. This script trains fresh students on fixed curricula for ``--steps`` steps at the
env's evaluation settings (no early stop), all side by side in lockstep, measures exact
held-out pass@1 every ``--every`` steps, and reports where ``SlopeStopper`` (the default
rule) would have stopped.

Curricula: on an id whose domain declares validity references (SOAR-Tiny-v2), the
reference curricula of ``soar-env validate`` for each seed (oracle, Base-T,
learnability-top, random, off-target, Hard-Only, partial oracles); otherwise v0's four
fixed curricula (chain lengths).

The horizon, as docs/evaluation.md registered it before any run: the smallest multiple of
100 steps, at least 200, from which every later checkpoint ranks the curricula in the same
order in every seed (per seed: the ranking at every checkpoint >= H equals the ranking at H;
curricula whose pass@1 are exactly equal, such as Hard-Only and an untouched student, tie).
H stays below ``--steps``, so that at least 100 steps of checkpoints agree; ``null`` when no
such multiple exists.

    python benchmarks/eval_horizon.py --env SOAR-Tiny-v0 --steps 600 --seeds 2 \\
        --out docs/results/eval_horizon
    python benchmarks/eval_horizon.py --env SOAR-Tiny-v2 --steps 500 --seeds 3 \\
        --out docs/results/tiny-v2/attempt4/eval_horizon

Writes ``OUT.json`` (curves per curriculum and seed) and ``OUT.png``.
"""

import argparse
import json
import time
from pathlib import Path

import soar_env
from soar_env import embedded
from soar_env.evaluation import EvalConfig, SlopeStopper, evaluate_student
from soar_env.fresh_students import FreshRun, train_fresh_students


def v0_curricula(n: int, seed: int) -> dict:
    domain = embedded.tiny_domain()
    return {
        "length 2 (learnability's pick)": domain.problems(n, [2], seed=seed),
        "length 4-6 (good stones)": domain.problems(n, range(4, 7), seed=seed),
        "length 1-20 (untrained teacher)": domain.problems(n, range(1, 21), seed=seed),
        "Hard-Only": [],
    }


def curricula(env, n: int, seed: int) -> dict:
    if env.domain.validity is None:
        return v0_curricula(n, seed)
    from soar_agents.app.validate import ValidityOptions, reference_curricula

    return reference_curricula(env, seed, ValidityOptions(questions=n))[0]


def ranking(values: dict[str, float]) -> tuple:
    """Curricula from best to worst, exact ties grouped (as sorted tuples)."""
    levels = sorted(set(values.values()), reverse=True)
    return tuple(tuple(sorted(k for k, v in values.items() if v == level)) for level in levels)


def horizon(curves: dict, steps: int) -> dict:
    """The registered rule (module docstring), and for reading: the last checkpoint at which
    each seed's ranking changed, and each seed's final ranking."""
    seeds = sorted({run["seed"] for runs in curves.values() for run in runs})
    at = {s: {} for s in seeds}  # seed -> checkpoint -> {curriculum: pass@1}
    for name, runs in curves.items():
        for run in runs:
            for step, value in run["pass@1"]:
                at[run["seed"]].setdefault(step, {})[name] = value
    ranks = {s: {t: ranking(v) for t, v in sorted(at[s].items())} for s in seeds}
    last_change = {}
    for s in seeds:
        order = list(ranks[s].items())
        last_change[s] = max((t for (t, r), (_, prev) in zip(order[1:], order) if r != prev), default=None)
    chosen = next((h for h in range(200, steps, 100)  # below --steps: later checkpoints to agree
                   if all(len({r for t, r in ranks[s].items() if t >= h}) == 1 for s in seeds)), None)
    return {"rule": "smallest multiple of 100, >= 200, from which every later checkpoint ranks the "
                    "curricula in the same order in every seed (docs/evaluation.md)",
            "horizon": chosen, "last_ranking_change_per_seed": {str(s): t for s, t in last_change.items()},
            "final_ranking_per_seed": {str(s): [list(g) for g in list(ranks[s].values())[-1]] for s in seeds}}


def main() -> None:
    from soar_agents.app.validate import make_env

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="SOAR-Tiny-v0")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--every", type=int, default=20, help="checkpoint interval (steps)")
    ap.add_argument("--questions", type=int, default=128, help="curriculum size (the paper's 128)")
    ap.add_argument("--out", default="eval_horizon")
    args = ap.parse_args()
    env = make_env(args.env, {})
    config = EvalConfig.for_env(env, max_steps=args.steps, early_stop=False, ks=(1,))
    results = {"env": args.env, "version": soar_env.__version__, "steps": args.steps,
               "every": args.every, "eval": {k: str(v) for k, v in vars(config).items()},
               "curves": {}}
    started = time.perf_counter()
    runs, names, points = [], {}, {}
    for seed in range(args.seeds):
        for name, curriculum in curricula(env, args.questions, seed).items():
            run = FreshRun(list(curriculum), seed)
            runs.append(run)
            names[id(run)], points[id(run)] = name, []

    def measure(run: FreshRun, done: int, weights) -> None:
        if done % args.every == 0:  # the stack trains apart from the lab's student: load, measure
            env.lab.load(weights())
            points[id(run)].append((done, evaluate_student(env, run.seed, config)[1]))

    keep = env.lab.snapshot()
    try:
        train_fresh_students(env, runs, config, progress=True, on_step=measure)
    finally:
        env.lab.load(keep)
    for run in runs:
        stopper = SlopeStopper(config.smoothing, config.stop_fraction, config.min_steps)
        stop = next((t + 1 for t, r in enumerate(run.rewards) if stopper.update(r)), None)
        results["curves"].setdefault(names[id(run)], []).append(
            {"seed": run.seed, "pass@1": points[id(run)], "train_reward": run.rewards, "rule_stops_at": stop})
        print(f"seed {run.seed} {names[id(run)]:<32} "
              + " ".join(f"{s}:{p:.2e}" for s, p in points[id(run)][4::5]) + f"  rule stops at {stop}")
    results["horizon"] = horizon(results["curves"], args.steps)
    results["wall_seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results))
    plot(results, out.with_suffix(".png"))
    print(f"horizon: {results['horizon']['horizon']} (last ranking change per seed: "
          f"{results['horizon']['last_ranking_change_per_seed']})")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')} "
          f"in {results['wall_seconds']:.0f} s")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (name, runs), style in zip(results["curves"].items(), ("-", "--", "-.", ":") * 3):
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
