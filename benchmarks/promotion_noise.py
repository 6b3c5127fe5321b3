"""Where should the promotion threshold tau sit on SOAR-Tiny? Measured round-reward noise.

Promotion fires when the moving average (MA) of the last 3 round-mean rewards exceeds tau.
To mean "this teacher's datasets help more than chance", tau must sit above what an
untrained teacher (Base-T) reaches by noise, and below what good stepping stones earn.
This script runs, per seed, Base-T (the untrained tiny teacher) and the curriculum teacher
(fresh medium chains: good stones) through ``train_teacher`` with promotion off
(tau = inf, so the baseline stays the base student), records every round mean, and reports
per teacher the mean and sd of round means and of their 3-round MAs, the largest Base-T MA,
and the smallest curriculum MA.

    python benchmarks/promotion_noise.py --seeds 3 --rounds 12 --teachers base curriculum:4 \
        --out docs/results/promotion_noise.json

The tiny preset's ``tau`` is chosen from this output (see docs/results.md).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from soar_agents import make_teacher, train_teacher


def moving_averages(values: list[float], window: int = 3) -> list[float]:
    return [float(np.mean(values[i - window:i])) for i in range(window, len(values) + 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="SOAR-Tiny-v0")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--teachers", nargs="+", default=["base", "curriculum:4"],
                    help="NAME or NAME:ROUNDS (good stones need only the first MA window)")
    ap.add_argument("--out", default="promotion_noise.json")
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {"env": args.env, "runs": {}}
    started = time.perf_counter()
    rounds_of = {t.split(":")[0]: int(t.split(":")[1]) if ":" in t else args.rounds
                 for t in args.teachers}
    for teacher, rounds in rounds_of.items():
        for seed in range(args.seeds):
            key = f"{teacher}_seed{seed}"
            if key in results["runs"]:
                continue  # resumable: finished runs are kept
            history = train_teacher(make_teacher(teacher), args.env, rounds=rounds, seed=seed,
                                    tau=float("inf"), progress=True)
            results["runs"][key] = [row["charts/reward_mean"] for row in history]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
    summary = {}
    for teacher in rounds_of:
        runs = [results["runs"][f"{teacher}_seed{s}"] for s in range(args.seeds)]
        means = [v for r in runs for v in r]
        mas = [moving_averages(r) for r in runs]
        flat = [v for m in mas for v in m]
        summary[teacher] = {"round_mean": float(np.mean(means)), "round_sd": float(np.std(means, ddof=1)),
                            "ma_mean": float(np.mean(flat)), "ma_sd": float(np.std(flat, ddof=1)),
                            "ma_max": float(np.max(flat)), "ma_min": float(np.min(flat)),
                            "first_ma_min": float(min(m[0] for m in mas))}
        s = summary[teacher]
        print(f"{teacher:<11} round mean {s['round_mean']:.3g} sd {s['round_sd']:.2g} | MA3 mean "
              f"{s['ma_mean']:.3g} sd {s['ma_sd']:.2g} min {s['ma_min']:.3g} max {s['ma_max']:.3g}")
    results["summary"] = summary
    results["wall_seconds"] = results.get("wall_seconds", 0.0) + time.perf_counter() - started
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
