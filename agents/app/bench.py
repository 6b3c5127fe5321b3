"""``soar-env bench``: several teachers x seeds, trained and evaluated, on one leaderboard.

Per seed, each learning teacher is trained into ``out/TEACHER_seedS`` (resumed when
interrupted) for the same number of rounds (``intrinsic_rounds`` can give intrinsic-reward
teachers another budget; the leaderboard then says so); fixed teachers (base, random,
curriculum: ``Teacher.learns`` is False) get an untrained run folder, since rounds would not
change what they propose. Each is evaluated with the paper's protocol by
``student_seeds`` fresh students per teacher seed S (student seeds S, S + 1000, ...; the
protocol for teacher benchmarks asks for at least 2, docs/evaluation.md): its own 128
questions (Grounded-T, Intrinsic-T, ...), its promoted bank (PQ) and best promoted student
(PS) when it has them; Hard-Only and the base student once per student seed. The
leaderboard gives, per variant, mean pass@k and its 95% interval over all fresh students,
the diversity of each teacher's questions, and an equal-compute view: each teacher's
sampled tokens and wall seconds. Writes ``leaderboard.md``, ``leaderboard.json`` and
``leaderboard.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import soar_env
from soar_env.files import write_atomic
from soar_env.rewards import INTRINSIC

from .. import make_teacher
from .report import format_interval
from .runs import (
    evaluate_run,
    leaderboard,
    mean_diversity,
    paired_differences,
    promoted_students,
    teacher_variant,
    train_run,
)

STUDENT_SEED_STRIDE = 1000
"""Teacher seed S is evaluated by student seeds S, S + 1000, ...: the first is S, the one
student seed used before, so earlier single-student results are reused when a bench resumes."""
LLM_SETTINGS = ("soar", "base", "prompted", *INTRINSIC)  # the teachers built on SoarTeacherConfig
DIVERSITY = ("vendi", "self_bleu", "distinct_fraction", "length_entropy", "skill_entropy", "mean_length",
             "off_target_fraction")


def run_bench(
    out: str | Path,
    env_id: str,
    teachers: list[str],
    seeds: list[int],
    rounds: int,
    overrides: dict[str, Any] | None = None,
    eval_steps: int | None = None,
    intrinsic_rounds: int | None = None,
    teacher_settings: dict[str, Any] | None = None,
    student_seeds: int = 2,
) -> dict[str, Any]:
    from rich.console import Console

    if student_seeds < 1:
        raise ValueError(f"student_seeds expects >= 1, actual {student_seeds}")

    students_of = {seed: [seed + STUDENT_SEED_STRIDE * j for j in range(student_seeds)] for seed in seeds}
    out = Path(out)
    console = Console()
    results: dict[str, dict[str, dict[str, float]]] = {}
    diversity: dict[str, list[dict[str, float]]] = {}
    compute: dict[str, list[dict[str, float]]] = {}
    eval_settings = None
    for seed in seeds:
        for i, teacher in enumerate(teachers):
            run = out / f"{teacher}_seed{seed}"
            console.print(f"[bold]seed {seed}: {teacher}[/bold] -> {run}")
            n = intrinsic_rounds if intrinsic_rounds and teacher in INTRINSIC else rounds
            n = n if make_teacher(teacher).learns else 0
            # teacher.* settings (e.g. answers='teacher') go to the LLM teachers, which all share
            # SoarTeacherConfig; the others have no settings.
            settings = teacher_settings if teacher in LLM_SETTINGS else None
            history = train_run(run, env_id, teacher, seed, n, resume=True, overrides=overrides,
                                teacher_settings=settings)
            compute.setdefault(teacher, []).append(_run_compute(history))
            own = teacher_variant(teacher)
            variants = [own, "PQ", "PQ@128", "PS"] + (["Hard-Only", "base"] if i == 0 else [])
            bank = int(compute[teacher][-1]["bank_size"])
            students = students_of[seed]
            evaluated = evaluate_run(run, students, variants=_available(run, variants, bank),
                                     eval_steps=eval_steps)
            # As recorded when each evaluation ran (0 for results of versions before 0.3).
            compute[teacher][-1]["eval_seconds"] = sum(
                per_seed.get(str(s), 0.0) for per_seed in evaluated.get("seconds", {}).values()
                for s in students)
            eval_settings = evaluated.get("settings", eval_settings)
            for variant, per_seed in evaluated["results"].items():
                for s in students:
                    if str(s) in per_seed:
                        name = variant if variant in (own, "Hard-Only", "base") else f"{variant} ({teacher})"
                        results.setdefault(name, {})[str(s)] = per_seed[str(s)]
            if own in evaluated["diversity"]:
                diversity.setdefault(own, []).append(evaluated["diversity"][own])
    rows = leaderboard(results)
    summary = {
        "env": env_id,
        "version": soar_env.__version__,
        "teachers": teachers,
        "seeds": seeds,
        "student_seeds": [s for seed in seeds for s in students_of[seed]],
        "rounds": rounds,
        "intrinsic_rounds": intrinsic_rounds or rounds,
        "overrides": overrides or {},
        "teacher_settings": teacher_settings or {},
        "eval": eval_settings,
        "compute": {t: {k: sum(c.get(k, 0.0) for c in cs) / len(cs) for k in cs[0]}
                    for t, cs in compute.items()},
        "leaderboard": rows,
        "paired_vs_base_t": paired_differences(results),
        "diversity": {v: mean_diversity(d, DIVERSITY) for v, d in diversity.items()},
    }
    write_atomic(out / "leaderboard.json", json.dumps(summary, indent=1))
    write_atomic(out / "leaderboard.md", markdown(summary))
    plot(results, out / "leaderboard.png")
    console.print(markdown(summary))
    console.print(f"wrote {out / 'leaderboard.md'}, {out / 'leaderboard.json'} and {out / 'leaderboard.png'}")
    return summary


def _run_compute(history: list[dict[str, Any]]) -> dict[str, float]:
    """What one teacher-training run cost: rounds, sampled tokens and wall seconds."""
    return {
        "rounds": float(len(history)),
        "sampled_tokens": float(history[-1].get("env/sampled_tokens", 0.0)) if history else 0.0,
        "train_seconds": float(sum(row.get("time/round_seconds", 0.0) for row in history)),
        "bank_size": float(history[-1].get("env/bank_size", 0.0)) if history else 0.0,
    }


def _available(run: Path, variants: list[str], bank: int) -> list[str]:
    """Drop PQ and PS when the run promoted nothing, PQ@128 when the bank is no larger than
    128 questions (it is then PQ itself)."""
    promoted = bool(promoted_students(run))
    return [v for v in variants if (v not in ("PQ", "PS", "PQ@128") or promoted)
            and (v != "PQ@128" or bank > 128)]


def markdown(summary: dict[str, Any]) -> str:
    rows = summary["leaderboard"]
    ks = [k for k in rows[0] if k.startswith("pass@")] if rows else []
    lines = [
        f"Held-out pass@k on D_test, {summary['env']}, {len(summary['seeds'])} teacher seeds, "
        f"{len(summary.get('student_seeds', summary['seeds']))} fresh students in all (student seed S, "
        f"S + {STUDENT_SEED_STRIDE}, ... for teacher seed S); {summary['rounds']} teacher rounds "
        f"({summary.get('intrinsic_rounds') or summary['rounds']} for intrinsic-reward teachers); "
        "mean ± 95% interval.",
        "",
        "| variant | seeds | " + " | ".join(ks) + " |",
        "|---|---:|" + "---:|" * len(ks),
    ]
    for row in rows:
        cells = " | ".join(format_interval(row[k]) for k in ks)
        lines.append(f"| {row['variant']} | {row['seeds']} | {cells} |")
    students = summary.get("student_seeds", summary["seeds"])
    lines += ["", "Per student seed, pass@1 (seeds " + ", ".join(map(str, students)) + "):", ""]
    lines += [f"- {row['variant']}: " + " ".join(f"{v:.3g}" for v in row["pass@1"]["per_seed"])
              for row in rows if "per_seed" in row.get("pass@1", {})]
    paired = summary.get("paired_vs_base_t") or {}
    if paired:
        lines += ["", "Paired differences against Base-T on the same seeds (mean ± 95% interval; per seed):",
                  "", "| variant | seeds | pass@1 - Base-T | per seed | pass@32 - Base-T |",
                  "|---|---:|---:|---|---:|"]
        for variant, d in paired.items():
            per = " ".join(f"{v:+.3g}" for v in d["pass@1"]["per_seed"])
            top = format_interval(d["pass@32"]) if "pass@32" in d else ""
            cells = f"{format_interval(d['pass@1'])} | {per} | {top}"
            lines.append(f"| {variant} | {len(d['seeds'])} | {cells} |")
    if summary["diversity"]:
        keys = [k for k in DIVERSITY if any(k in d for d in summary["diversity"].values())]
        lines += [
            "",
            "Diversity of each teacher's 128 evaluation questions (mean over seeds):",
            "",
            "| teacher questions | " + " | ".join(keys) + " |",
            "|---|" + "---:|" * len(keys),
        ]
        for variant, d in summary["diversity"].items():
            lines.append(f"| {variant} | " + " | ".join(f"{d.get(k, float('nan')):.3g}" for k in keys) + " |")
    if summary.get("compute"):
        lines += [
            "",
            "Equal-compute view: what each teacher's training cost (mean per seed):",
            "",
                "| teacher | rounds | sampled tokens | train s | eval s | promoted bank (questions) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for teacher, c in summary["compute"].items():
            lines.append(f"| {teacher} | {c['rounds']:.0f} | {c['sampled_tokens']:.3g} | "
                         f"{c['train_seconds']:.0f} | {c.get('eval_seconds', 0.0):.0f} | "
                         f"{c.get('bank_size', 0.0):.0f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import plot_pass_at_k

    fig, (ax, seeds_ax) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [7, 6]})
    plot_pass_at_k(ax, results)
    # pass@1 on a linear scale, one dot per seed: what the intervals in the table summarise.
    names = sorted(results, key=lambda v: -np.mean([r["1"] for r in results[v].values()]))
    for i, name in enumerate(names):
        values = [r["1"] for r in results[name].values()]
        seeds_ax.scatter([i] * len(values), values, alpha=0.7)
        seeds_ax.hlines(np.mean(values), i - 0.3, i + 0.3, color="black")
    seeds_ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    seeds_ax.set_ylabel("held-out pass@1 (dots: seeds, bar: mean)")
    seeds_ax.set_title("pass@1 per variant and seed")
    fig.tight_layout()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)
