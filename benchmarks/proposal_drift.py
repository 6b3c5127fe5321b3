"""How each learning teacher's proposals moved over its training rounds, from a bench folder.

For every ``TEACHER_seedS/rounds.csv`` of a ``soar-env bench`` folder: per round, the
fraction of off-target questions (SOAR-Tiny-v1's min/max/xor chains, which the hard set
never uses), of short chains (length 1-3, the learnability reward's favourites), the mean
length and the Vendi score of the round's valid proposals; mean and range over seeds.
Writes ``drift.json`` and ``drift.png`` next to the leaderboard.

    python benchmarks/proposal_drift.py runs/bench-v1 --teachers soar learnability
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

MEASURES = {
    "proposals/off_target_fraction": "off-target fraction",
    "proposals/length_1_3": "short chains (1-3)",
    "proposals/mean_length": "mean chain length",
    "proposals/vendi": "Vendi score",
}


def drift(folder: Path, teacher: str) -> dict[str, dict[str, list[float]]]:
    runs = sorted(folder.glob(f"{teacher}_seed*/rounds.csv"))
    per_seed = [list(csv.DictReader(run.open())) for run in runs]
    out = {"seeds": [run.parent.name.split("seed")[-1] for run in runs]}
    for key in MEASURES:
        if not per_seed or key not in per_seed[0][0]:
            continue
        rounds = min(len(rows) for rows in per_seed)
        values = np.array([[float(rows[r][key]) for r in range(rounds)] for rows in per_seed])
        out[key] = {"mean": values.mean(0).tolist(), "min": values.min(0).tolist(),
                    "max": values.max(0).tolist(), "first": values[:, 0].tolist(),
                    "last": values[:, -1].tolist()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--teachers", nargs="+", default=["soar", "learnability"])
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {t: drift(args.folder, t) for t in args.teachers}
    keys = [k for k in MEASURES if any(k in d for d in data.values())]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4))
    for ax, key in zip(np.atleast_1d(axes), keys):
        for teacher, d in data.items():
            if key not in d:
                continue
            x = np.arange(1, len(d[key]["mean"]) + 1)
            ax.plot(x, d[key]["mean"], marker="o", label=f"{teacher} ({len(d['seeds'])} seeds)")
            ax.fill_between(x, d[key]["min"], d[key]["max"], alpha=0.2)
        ax.set_title(MEASURES[key])
        ax.set_xlabel("teacher round")
    np.atleast_1d(axes)[0].legend()
    fig.suptitle(f"What the teachers propose, round by round ({args.folder.name}; band: seed range)")
    fig.tight_layout()
    fig.savefig(args.folder / "drift.png", dpi=110)
    (args.folder / "drift.json").write_text(json.dumps(data, indent=1))
    for teacher, d in data.items():
        for key in keys:
            if key in d:
                first, last = np.mean(d[key]["first"]), np.mean(d[key]["last"])
                print(f"{teacher:14s} {MEASURES[key]:22s} round 1 {first:.3f} -> last {last:.3f}")
    print(f"wrote {args.folder / 'drift.png'} and {args.folder / 'drift.json'}")


if __name__ == "__main__":
    main()
