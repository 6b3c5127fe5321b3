"""Readable ends of a run: a rich summary table, the evaluation table, and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from soar_env.files import write_atomic

from .runs import leaderboard


def format_interval(summary: dict[str, float]) -> str:
    ci = summary["ci95"]
    return f"{summary['mean']:.3g}" + (f" ± {ci:.2g}" if ci == ci and ci > 0 else "")


def eval_table(results: dict[str, Any], title: str = "held-out pass@k (D_test)"):
    from rich.table import Table

    rows = leaderboard(results["results"])
    table = Table(title=title)
    table.add_column("variant")
    table.add_column("seeds", justify="right")
    ks = [k for k in rows[0] if k.startswith("pass@")] if rows else []
    for k in ks:
        table.add_column(k, justify="right")
    for row in rows:
        table.add_row(row["variant"], str(row["seeds"]), *[format_interval(row[k]) for k in ks])
    return table


def print_eval(results: dict[str, Any]) -> None:
    from rich.console import Console

    Console().print(eval_table(results))


def print_run_summary(run: Path, history: list[dict[str, Any]], results: dict[str, Any] | None) -> None:
    """Reward curve in quarters, promotions, bank, proposals, and held-out pass@k."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rewards = [row["charts/reward_mean"] for row in history]
    q = max(1, len(rewards) // 4)
    table = Table(title=f"run {run}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("rounds", str(len(history)))
    # A promotion moves the baseline, and with it the scale of every later reward: compare
    # rounds only within one baseline (a promotion epoch), where a rise is the teacher's.
    for i, (a, b) in enumerate(promotion_epochs(history)):
        part = rewards[a:b]
        if len(part) < 2:
            table.add_row(f"baseline {i}: round {a}, reward", f"{part[0]:.3g}")
            continue
        half = len(part) // 2
        table.add_row(f"baseline {i}: rounds {a}-{b - 1}, reward first -> second half",
                      f"{np.mean(part[:half]):.3g} -> {np.mean(part[half:]):.3g}")
    if len(promotion_epochs(history)) == 1:
        table.add_row("mean reward, first quarter -> last quarter",
                      f"{np.mean(rewards[:q]):.3g} -> {np.mean(rewards[-q:]):.3g}")
    band = untrained_band(history)
    if band is not None:
        table.add_row("untrained teacher's reward band (round 0's datasets)",
                      f"{band[0]:.3g} to {band[1]:.3g}")
        left = round_leaving_band(history, band)
        table.add_row("3-round mean reward above that band",
                      f"from round {left}" if left is not None else "never, before the first promotion")
    last = history[-1]
    table.add_row("promotions", f"{last['env/promotions']:.0f}")
    table.add_row("promoted bank (questions)", f"{last['env/bank_size']:.0f}")
    for key in (
        "teacher/well_formed",
        "proposals/distinct_fraction",
        "proposals/vendi",
        "proposals/self_bleu",
        "proposals/mean_length",
        "proposals/length_entropy",
        "proposals/skill_entropy",
    ):
        if key in last:
            first = history[0][key]
            table.add_row(f"{key} (first -> last round)", f"{first:.3g} -> {last[key]:.3g}")
    console.print(table)
    if results:
        console.print(eval_table(results))
        verdict = against_untrained(results)
        if verdict:
            console.print(verdict)


def untrained_band(history: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The lowest and highest reward of round 0's datasets: the teacher has not learned yet,
    so they are the untrained teacher's (Base-T's), and their spread is its noise band."""
    first = history[0] if history else {}
    if "charts/reward_min" not in first or "charts/reward_max" not in first:
        return None
    return float(first["charts/reward_min"]), float(first["charts/reward_max"])


def round_leaving_band(history: list[dict[str, Any]], band: tuple[float, float],
                       window: int = 3) -> int | None:
    """The first round whose trailing ``window``-round mean reward is above ``band``, before the
    first promotion (a promotion changes the baseline, and with it the reward's scale)."""
    end = promotion_epochs(history)[0][1]
    rewards = [row["charts/reward_mean"] for row in history[:end]]
    for i in range(window, len(rewards) + 1):
        if np.mean(rewards[i - window:i]) > band[1]:
            return i - 1
    return None


def against_untrained(results: dict[str, Any]) -> str:
    """One line per variant: its held-out pass@1 minus Base-T's on the same student seeds."""
    from .runs import paired_differences

    paired = paired_differences(results["results"])
    lines = []
    for variant, d in paired.items():
        if variant in ("Hard-Only", "base") or "pass@1" not in d:
            continue
        p = d["pass@1"]
        apart = p["ci95"] == p["ci95"] and abs(p["mean"]) > p["ci95"]
        verdict = ("better than" if p["mean"] > 0 else "worse than") if apart else "not distinguishable from"
        lines.append(f"{variant} - Base-T, pass@1 on the same {len(d['seeds'])} student seeds: "
                     f"{format_interval(p)} ({verdict} the untrained teacher; per seed "
                     f"{', '.join(f'{x:+.3g}' for x in p['per_seed'])})")
    return "\n".join(lines)


def promotion_epochs(history: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """[start, end) round ranges with one baseline each; a promoting round closes its epoch
    (its reward was measured against the old baseline)."""
    epochs, start = [], 0
    for i, row in enumerate(history):
        if row.get("env/promoted"):
            epochs.append((start, i + 1))
            start = i + 1
    if start < len(history) or not epochs:
        epochs.append((start, len(history)))
    return epochs


def plot_run(history: list[dict[str, Any]], results: dict[str, Any] | None, path: Path,
             caption: str = "") -> None:
    """Reward per round (promotions marked), proposals profile, held-out pass@k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = 3 if results else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    rounds = np.arange(len(history))
    axes[0].plot(rounds, [r["charts/reward_mean"] for r in history], marker=".", label="round mean")
    band = untrained_band(history)
    if band is not None:
        end = promotion_epochs(history)[0][1]
        axes[0].fill_between([0, max(end - 1, 1)], *band, color="grey", alpha=0.25,
                             label="untrained teacher (round 0's datasets)")
        axes[0].legend(fontsize=8)
    promoted = [i for i, r in enumerate(history) if r.get("env/promoted")]
    for i in promoted:
        axes[0].axvline(i, color="C2", alpha=0.4, lw=1)
    axes[0].set(title="reward per round (green: promotion)", xlabel="round", ylabel="round mean reward")
    axes[0].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useOffset=False, useMathText=True)
    for ax in axes[:2]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for key, label in (
        ("proposals/length_1_3", "len 1-3"),
        ("proposals/length_4_6", "len 4-6"),
        ("proposals/length_7_12", "len 7-12"),
        ("proposals/length_13_20", "len 13-20"),
        ("teacher/well_formed", "well-formed"),
    ):
        if key in history[0]:
            axes[1].plot(rounds, [r.get(key, np.nan) for r in history], label=label)
    axes[1].set(title="teacher proposals", xlabel="round", ylabel="fraction")
    axes[1].legend(fontsize=8)
    if results:
        plot_pass_at_k(axes[2], results["results"])
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=8)
    fig.tight_layout(rect=(0, 0.04 if caption else 0, 1, 1))
    try:  # whole or not at all, like every file of a run folder
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)


def plot_pass_at_k(ax, results: dict[str, Any]) -> None:
    rows = leaderboard(results)
    styles = ("-", "--", "-.", ":")
    for i, row in enumerate(rows):
        ks = [int(k.split("@")[1]) for k in row if k.startswith("pass@")]
        means = [row[f"pass@{k}"]["mean"] for k in ks]
        cis = [np.nan_to_num(row[f"pass@{k}"]["ci95"]) for k in ks]
        # Variants can coincide (Hard-Only and base on the tiny id): a small horizontal
        # offset and a line style each keep every line visible.
        shift = 1.0 + 0.03 * (i - (len(rows) - 1) / 2)
        ax.errorbar([k * shift for k in ks], means, yerr=cis, marker="o", capsize=3,
                    label=row["variant"], color=f"C{i}", linestyle=styles[i % len(styles)])
    ax.set(xscale="log", yscale="log", title="held-out pass@k (95% interval)", xlabel="k",
           ylabel="pass@k")
    ax.set_xticks([1, 4, 8, 16, 32], ["1", "4", "8", "16", "32"])
    ax.legend(fontsize=8)
