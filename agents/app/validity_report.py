"""The validity criteria P1-P7 (docs/domains.md), checked on a ``soar-env validate`` run.

Each criterion gives ``{"pass": True | False | None, "figure": "..."}``; None means not
applicable: the domain lacks the capability the criterion needs (never counted as a pass).
``write`` saves ``<id>.json`` (per-seed values of every row), ``<id>.md`` and ``<id>.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from soar_env.evaluation import interval

from .checkpoints import write_json

CEILING = 0.9
"""P1: the oracle's pass@32 must stay at or below this (room above it)."""


def _na(what: str) -> dict[str, Any]:
    return {"pass": None, "figure": f"not applicable: the domain declares no {what}"}


def _g(x: float) -> str:
    return f"{x:.3g}"


def _row(rows: list[dict], name: str) -> dict | None:
    return next((r for r in rows if r["name"] == name), None)


def p1(rows: list[dict]) -> dict[str, Any]:
    oracle, base_t = _row(rows, "oracle"), _row(rows, "Base-T")
    if oracle is None:
        return _na("oracle (validity.oracle)")
    o, b = oracle["pass@1"], base_t["pass@1"]
    apart = o["mean"] - o["ci95"] > b["mean"] + b["ci95"]
    top = oracle["pass@32"]["mean"]
    return {"pass": bool(apart and top <= CEILING),
            "figure": f"pass@1 oracle {_g(o['mean'])} ± {_g(o['ci95'])} vs Base-T {_g(b['mean'])} ± "
                      f"{_g(b['ci95'])} ({'apart' if apart else 'overlapping'}); oracle pass@32 "
                      f"{_g(top)} ({'<=' if top <= CEILING else '>'} {CEILING}){_by_seed(o, b)}"}


def _by_seed(o: dict, b: dict) -> str:
    """For reading a P1 result, not part of it: whether the lead holds seed by seed (a spread
    between students widens the unpaired intervals even when every seed agrees)."""
    pairs = list(zip(o.get("per_seed", []), b.get("per_seed", [])))
    if not pairs or any(y <= 0 for _, y in pairs):
        return ""
    ratios = [x / y for x, y in pairs]
    return (f"; by seed (not part of P1) the oracle is above Base-T in {sum(r > 1 for r in ratios)} "
            f"of {len(ratios)}, {_g(min(ratios))}x to {_g(max(ratios))}x")


def p2(pools: list[dict]) -> dict[str, Any]:
    if "pool_useful" not in pools[0]:
        return _na("labels (validity.label)")
    pool = sum(p["pool_useful"] + p["pool_trap"] + p["pool_other"] for p in pools)
    share_pool = sum(p["pool_useful"] for p in pools) / pool
    share_top = sum(p["top_useful"] for p in pools) / sum(p["top_size"] for p in pools)
    ratio = share_top / share_pool if share_pool else math.nan
    useful = _pooled_mean(pools, "useful")
    trap = _pooled_mean(pools, "trap")
    gap = abs(useful - trap) / max(useful, trap) if max(useful, trap) > 0 else math.nan
    ok = 0.5 <= ratio <= 1.5 and gap <= 0.2
    return {"pass": bool(ok),
            "figure": f"useful share {_g(share_top)} in learnability-top vs {_g(share_pool)} in the pool "
                      f"(ratio {_g(ratio)}, needs 0.5-1.5); mean learnability useful {_g(useful)} vs trap "
                      f"{_g(trap)} ({_g(100 * gap)}% apart, needs <= 20%)"}


def _pooled_mean(pools: list[dict], family: str) -> float:
    n = sum(p[f"{family}_count"] for p in pools)
    return sum(p[f"{family}_learnability"] * p[f"{family}_count"] for p in pools) / n if n else math.nan


def p3(rows: list[dict], base: float) -> dict[str, Any]:
    oracle = _row(rows, "oracle")
    if oracle is None:
        return _na("oracle (validity.oracle)")
    gain_o = oracle["pass@1"]["mean"] - base
    gain_h = _row(rows, "Hard-Only")["pass@1"]["mean"] - base
    ok = gain_o > 0 and gain_h <= 0.1 * gain_o
    ratio = _g(gain_h / gain_o) if gain_o else "n/a"
    return {"pass": bool(ok), "figure": f"pass@1 gain over the base student ({_g(base)}): Hard-Only "
                                        f"{_g(gain_h)}, oracle {_g(gain_o)} (ratio {ratio}, needs <= 0.1)"}


def p4(pools: list[dict]) -> dict[str, Any]:
    if "pool_useful" not in pools[0]:
        return _na("labels (validity.label)")
    pool = sum(p["pool_useful"] + p["pool_trap"] + p["pool_other"] for p in pools)
    share = sum(p["pool_useful"] for p in pools) / pool
    return {"pass": bool(0.02 <= share <= 0.15),
            "figure": f"useful stones are {_g(100 * share)}% of {pool} untrained-teacher questions "
                      "(needs 2-15%)"}


def p5(rows: list[dict]) -> dict[str, Any]:
    names = ["partial-25%", "partial-50%", "partial-75%", "oracle"]
    found = [_row(rows, n) for n in names]
    if any(r is None for r in found):
        return _na("partial oracles (validity.partial_oracle)")
    means = [r["pass@1"]["mean"] for r in found]
    ok = all(a < b for a, b in zip(means, means[1:]))
    order = " < ".join(f"{n.replace('partial-', '')} {_g(m)}" for n, m in zip(names, means))
    return {"pass": bool(ok), "figure": f"pass@1 {order} ({'in order' if ok else 'not in order'})"}


def p6(probes: dict) -> dict[str, Any]:
    if "P6" not in probes:
        return _na("labels (validity.label)")
    from scipy.stats import spearmanr

    data = probes["P6"]
    k, r, rounds = (np.asarray(data[key], dtype=float) for key in ("stones", "reward", "round"))
    kc, rc = k.copy(), r.copy()
    for j in np.unique(rounds):
        at = rounds == j
        kc[at] -= k[at].mean()
        rc[at] -= r[at].mean()
    rho = float(spearmanr(kc, rc).statistic) if np.ptp(kc) > 0 and np.ptp(rc) > 0 else math.nan
    raw = float(spearmanr(k, r).statistic) if np.ptp(k) > 0 and np.ptp(r) > 0 else math.nan
    return {"pass": bool(rho >= 0.4), "figure": f"Spearman {_g(rho)} over {len(k)} datasets, centred within "
                                                f"rounds (needs >= 0.4); uncentred {_g(raw)}"}


def p7(probes: dict) -> dict[str, Any]:
    if "P7" not in probes:
        return _na("oracle (validity.oracle)")
    data = probes["P7"]
    r = np.asarray(data["reward"], dtype=float).reshape(-1, 4)  # rounds of (O, O, B, B)
    gap = float(np.mean(r[:, :2].mean(1) - r[:, 2:].mean(1)))
    diffs = np.concatenate([r[:, 0] - r[:, 1], r[:, 2] - r[:, 3]])
    sd = float(np.sqrt(np.mean(diffs**2) / 2))
    ratio = gap / sd if sd > 0 else (math.inf if gap > 0 else math.nan)
    return {"pass": bool(gap > 0 and gap >= sd),
            "figure": f"oracle - Base-T reward {_g(gap)} vs one dataset's noise sd {_g(sd)} "
                      f"({_g(ratio)} sd) at r = {data['inner_runs']}, {len(r)} rounds"}


def summarise(env_id: str, env: Any, config: Any, options: Any, results: dict, steps: dict,
              base: dict, pools: list[dict], probes: dict) -> dict[str, Any]:
    """The JSON of a validity run (docs/domains.md): rows with per-seed values, criteria."""
    seeds = [str(s) for s in options.seeds]
    rows = []
    for name, per_seed in results.items():
        row: dict[str, Any] = {"name": name}
        for k in ("1", "32"):
            values = [per_seed[s][k] for s in seeds]
            row[f"pass@{k}"] = {**interval(values), "per_seed": values}
        row["steps"] = steps.get(name, [])
        rows.append(row)
    base_row = {}
    for k in ("1", "32"):
        values = [base[s][k] for s in seeds]
        base_row[f"pass@{k}"] = {**interval(values), "per_seed": values}
    pool_stats = []
    for p in pools:
        stats = {k: v for k, v in p.items() if not k.startswith("learnability_") or k == "learnability_mean"}
        if "pool_useful" in p:
            for family in ("useful", "trap"):
                values = p[f"learnability_{family}"]
                stats[f"{family}_count"] = len(values)
                stats[f"{family}_learnability"] = float(np.mean(values)) if values else math.nan
        pool_stats.append(stats)
    criteria = {"P1": p1(rows), "P2": p2(pool_stats), "P3": p3(rows, base_row["pass@1"]["mean"]),
                "P4": p4(pool_stats), "P5": p5(rows), "P6": p6(probes), "P7": p7(probes)}
    settings = {k: v for k, v in vars(config).items() if k != "rl"}
    settings["rl"] = vars(config.rl) if config.rl is not None else None
    return {
        "env": env_id, "version": None, "seeds": list(options.seeds),
        "curricula": rows, "base": base_row, "criteria": criteria,
        "pool": {"size": options.pool, "per_seed": pool_stats},
        "grounded": probes,
        "eval": json.loads(json.dumps(settings, default=str)),
        "env_config": {k: str(v) for k, v in vars(env.config).items()},
    }


def markdown(summary: dict[str, Any]) -> str:
    seeds = summary["seeds"]
    lines = [f"Validity of {summary['env']} (soar-env {summary.get('version')}): fresh students on reference "
             f"curricula of {summary.get('options', {}).get('questions', 128)} questions, student seeds "
             f"{', '.join(map(str, seeds))}, the id's evaluation ({summary['eval']['mode']} mode, up to "
             f"{summary['eval']['max_steps']} steps). Held-out pass@k, mean ± 95% interval.", "",
             "| curriculum | pass@1 | per seed | pass@32 | per seed |", "|---|---:|---|---:|---|"]

    def cells(entry: dict) -> str:
        def one(k: str) -> str:
            v = entry[k]
            return f"{_g(v['mean'])} ± {_g(v['ci95'])} | " + " ".join(_g(x) for x in v["per_seed"])
        return f"{one('pass@1')} | {one('pass@32')}"

    for row in summary["curricula"]:
        lines.append(f"| {row['name']} | {cells(row)} |")
    lines += [f"| base (untrained student) | {cells(summary['base'])} |", "",
              "Criteria (docs/domains.md):", ""]
    for name, c in summary["criteria"].items():
        verdict = "n/a" if c["pass"] is None else "PASS" if c["pass"] else "FAIL"
        lines.append(f"- **{name} {verdict}**: {c['figure']}")
    return "\n".join(lines) + "\n"


def write(summary: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / summary["env"]
    write_json(stem.with_suffix(".json"), summary)
    stem.with_suffix(".md").write_text(markdown(summary))
    plot(summary, stem.with_suffix(".png"))


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["curricula"] + [{"name": "base", **summary["base"]}]
    probes = summary["grounded"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [7, 5]})
    for ax, k in ((axes[0], "pass@1"),) + (((axes[1], "pass@32"),) if "P6" not in probes else ()):
        for i, row in enumerate(rows):
            values = np.maximum(row[k]["per_seed"], 1e-12)
            ax.scatter([i] * len(values), values, alpha=0.7, color=f"C{i % 10}")
            ax.hlines(max(row[k]["mean"], 1e-12), i - 0.3, i + 0.3, color="black")
        ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=30, ha="right")
        ax.set(yscale="log", ylabel=f"held-out {k} (dots: seeds, bar: mean)", title=f"{summary['env']}: {k}")
    if "P6" in probes:
        data = probes["P6"]
        axes[1].scatter(data["stones"], data["reward"], c=data["round"], cmap="viridis", s=18)
        axes[1].set(xlabel="useful stones in the dataset", ylabel="grounded reward",
                    title=f"P6: {summary['criteria']['P6']['figure'].split(' over')[0]}")
        axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useMathText=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
