"""Does the grounded teacher learn within the budget? Its per-round reward against Base-T's band.

Issue 20, step 4. Per teacher seed, through ``soar_agents.train_teacher`` and the env id:
- the SOAR teacher (grounded reward) for ``--rounds`` rounds;
- the untrained teacher (``base``: the same model, never updated) for ``--base-rounds`` rounds,
  on the same seeds. Its rounds are draws from one distribution (the baseline student and
  the teacher stay fixed), so they give the noise band.

Rewards of different rounds are comparable only while the baseline student stays fixed, so
the run counts rounds up to the first promotion (SOAR-Tiny-v2 never promotes).

The definitions below were committed before the first run (docs/results.md):
- **band**: Base-T's per-round rewards pooled over seeds, mean m and sd s; the band of a
  3-round moving average is m ± 2 s / sqrt(3);
- **first crossing**: the first round whose trailing 3-round mean is above the band;
- **leaves the band**: the first round from which the trailing 3-round mean stays above the
  band to the end of the run (None if it never does).
Both are reported per seed and for the mean curve over seeds.

Each finished run is saved under ``--out`` and skipped when rerun, so an interrupted
benchmark resumes. Writes ``--results`` (every round of every seed) and a PNG beside it.

    python benchmarks/learning_curve.py --env SOAR-Tiny-v2 --seeds 3 --rounds 50
"""

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from soar_agents import make_teacher, train_teacher

WINDOW = 3


def run(env_id: str, name: str, seed: int, rounds: int, out: Path) -> dict:
    path = out / f"{name}_seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.time()
    history = train_teacher(make_teacher(name), env_id, rounds=rounds, seed=seed,
                            log_dir=out / f"{name}_seed{seed}", progress=False)
    result = {"teacher": name, "seed": seed, "seconds": time.time() - started,
              "rewards": [row["charts/reward_mean"] for row in history],
              "promoted": [bool(row.get("env/promoted")) for row in history],
              # the share of useful stones in each round's questions (domains that label them)
              "useful_fraction": [row.get("proposals/useful_fraction") for row in history]}
    path.write_text(json.dumps(result))
    return result


def until_promotion(result: dict) -> list[float]:
    """The round rewards before the first promotion (the reward's scale changes with it)."""
    for i, promoted in enumerate(result["promoted"]):
        if promoted:
            return result["rewards"][: i + 1]  # the promoting round was scored on the old baseline
    return result["rewards"]


def moving_average(values: list[float], window: int = WINDOW) -> list[float | None]:
    return [None if i + 1 < window else statistics.mean(values[i + 1 - window: i + 1])
            for i in range(len(values))]


def crossings(values: list[float], upper: float) -> dict:
    ma = moving_average(values)
    above = [m is not None and m > upper for m in ma]
    first = next((i for i, a in enumerate(above) if a), None)
    leaves = None
    for i in range(len(above) - 1, -1, -1):
        if not above[i]:
            break
        leaves = i
    return {"first_crossing": first, "leaves_band": leaves, "moving_average": ma}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="SOAR-Tiny-v2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=50, help="grounded-teacher rounds per seed")
    parser.add_argument("--base-rounds", type=int, default=12, help="Base-T rounds per seed (the band)")
    parser.add_argument("--out", default="runs/learning_curve")
    parser.add_argument("--results", default="docs/results/tiny-v2/learning_curve.json")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    soar, base = [], []
    for seed in range(args.seeds):
        for name, rounds, into in (("base", args.base_rounds, base), ("soar", args.rounds, soar)):
            into.append(run(args.env, name, seed, rounds, out))
            print(f"{name} seed {seed}: {len(into[-1]['rewards'])} rounds in {into[-1]['seconds']:.0f} s",
                  flush=True)

    pooled = [r for result in base for r in until_promotion(result)]
    m, s = statistics.mean(pooled), statistics.stdev(pooled)
    upper, lower = m + 2 * s / math.sqrt(WINDOW), m - 2 * s / math.sqrt(WINDOW)
    per_seed = []
    for result in soar:
        rewards = until_promotion(result)
        per_seed.append({"seed": result["seed"], "rounds": len(rewards), "seconds": result["seconds"],
                         "rewards": rewards, "useful_fraction": result["useful_fraction"][: len(rewards)],
                         **crossings(rewards, upper)})
    length = min(p["rounds"] for p in per_seed)
    mean_curve = [statistics.mean(p["rewards"][i] for p in per_seed) for i in range(length)]
    summary = {
        "env": args.env, "rounds": args.rounds, "base_rounds": args.base_rounds, "window": WINDOW,
        "band": {"mean": m, "sd": s, "lower": lower, "upper": upper, "rounds_pooled": len(pooled),
                 "per_seed": [{"seed": r["seed"], "rewards": until_promotion(r), "seconds": r["seconds"],
                               "useful_fraction": r["useful_fraction"]} for r in base]},
        "grounded": {"per_seed": per_seed, "mean_curve": mean_curve, **crossings(mean_curve, upper)},
    }
    print(f"\nBase-T band of a {WINDOW}-round mean: {lower:.3g} .. {upper:.3g} "
          f"(mean {m:.3g}, sd {s:.3g}, {len(pooled)} rounds)")
    for p in per_seed:
        stones = p["useful_fraction"]
        shift = (f"; useful stones {statistics.mean(stones[:10]):.3f} (first 10 rounds) -> "
                 f"{statistics.mean(stones[-10:]):.3f} (last 10)") if None not in stones else ""
        print(f"grounded seed {p['seed']}: first crossing {p['first_crossing']}, leaves the band at "
              f"{p['leaves_band']}; mean of the last 10 rounds {statistics.mean(p['rewards'][-10:]):.3g}"
              f"{shift}")
    g = summary["grounded"]
    print(f"mean over seeds: first crossing {g['first_crossing']}, leaves the band at {g['leaves_band']}")
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(summary, indent=1) + "\n")
    plot(summary, results.with_suffix(".png"))
    print(f"wrote {results} and {results.with_suffix('.png')}")


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    band, grounded = summary["band"], summary["grounded"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.axhspan(band["lower"], band["upper"], color="0.85", label=f"Base-T band ({WINDOW}-round mean, ±2 sd)")
    ax.axhline(band["mean"], color="0.5", lw=1)
    for k, p in enumerate(grounded["per_seed"]):
        ax.plot(p["rewards"], color=f"C{k}", alpha=0.25, lw=1)
        ax.plot(p["moving_average"], color=f"C{k}", lw=1.5,
                label=f"grounded seed {p['seed']} ({WINDOW}-round mean; faint: each round)")
    ax.plot(grounded["moving_average"], color="k", lw=2.5, label="mean over seeds")
    ax.set(title=f"{summary['env']}: the grounded teacher's reward per round", xlabel="round",
           ylabel="grounded reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
