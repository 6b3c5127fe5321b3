"""The stepping-stone experiment: does the embedded domain show SOAR's phenomenon?

Two regimes, each over several seeds, all measured as the exact expected pass@1 on a
fail@k hard set (no sampling noise):

- **long RL**: ``long_steps`` RLOO steps from the base student on (a) the hard training
  problems themselves, (b) a good stepping-stone set (medium chains, all skills), (c) a
  narrow set (one skill). Expected: hard gives no signal, good stones lift the held-out
  hard set by >= 5 points, narrow clearly less.
- **SOAR inner loop**: 10 RLOO steps from the base student on a 64-problem dataset, the
  improvement on a 64-problem reward subset of the hard training problems: this is the
  grounded reward a teacher would see. Expected order: good > narrow > hard, above noise.

With ``variant='v1'`` (SOAR-Tiny-v1) a fourth condition, **off-target** (medium chains of
the off-target family: min, max, xor), must move the hard set far less than good stones,
and the base student's success on short chains (1-3) of both families is measured exactly:
off-target chains must be solved sometimes but not always (what a learnability reward pays
for), or the off-target region would tempt no intrinsic teacher.

Used by ``benchmarks/stepping_stones.py`` and by ``soar-env stones``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from soar_env import embedded
from soar_env.config import tiny
from soar_env.hardset import HardSet, build_hard_set
from soar_env.lab import StudentLab
from soar_env.problems import Problem
from soar_env.rewards import learnability_expected
from soar_env.rl import RLOOConfig


@dataclass
class SteppingStoneConfig:
    """Budget and settings of the experiment (defaults: the acceptance run)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    hard_candidates: int = 256
    """Candidates (chains of length 18-20) filtered by fail@k."""
    k: int = 128
    long_steps: int = 120
    """RLOO steps per seed in the long regime."""
    dataset_size: int = 256
    """Problems in each long-regime stepping-stone set."""
    inner_steps: int = 10
    inner_dataset_size: int = 64
    reward_subset: int = 64
    inner_repeats: int = 4
    """Inner-loop runs per seed and condition (each: fresh dataset, sampling and subset)."""
    rl: RLOOConfig = field(default_factory=lambda: tiny().rl)
    """The inner loop of SOAR-Tiny-v0 (64 questions x 8 samples, lr 1e-4, no KL)."""
    model_path: str | None = None
    variant: str = "v0"
    """Chain variant: 'v1' adds the off-target condition and the short-chain measure."""
    short_problems: int = 256
    """v1: problems per family in the short-chain (lengths 1-3) success measure."""
    conditions: tuple[str, ...] | None = None
    """A subset of the variant's conditions (``kinds``) to run; None = all of them."""


SHORT_LENGTHS = range(1, 4)
"""Short chains: the intrinsic rewards' sweet spot on the base student."""


def kinds(variant: str) -> tuple[str, ...]:
    """The conditions of a variant's experiment."""
    return ("hard", "good", "narrow") + (("off-target",) if variant == "v1" else ())


def _problem_sets(kind: str, hard: HardSet, n: int, seed: int) -> list[Problem]:
    if kind == "hard":
        return list(hard.train)
    if kind == "good":
        return embedded.good_stones(n, seed=10_000 + seed)
    if kind == "narrow":
        return embedded.narrow_stones(n, seed=20_000 + seed)
    if kind == "off-target":
        return embedded.off_target_stones(n, seed=30_000 + seed)
    raise ValueError(f"Expects a condition in {kinds('v1')}, actual {kind!r}")


def short_chain_success(student, domain, n: int, samples: int = 8) -> dict:
    """Exact pass@1 of the base student on short chains (1-3) of each family, overall and
    per length, with the expected learnability reward at ``samples`` (the tiny preset's)."""
    from soar_env.domains.chain import OFF_TARGET_SKILLS, SKILLS

    out = {}
    for family, skills, seed in (("on-target", SKILLS, 40_000), ("off-target", OFF_TARGET_SKILLS,
                                                                   50_000)):
        problems = domain.problems(n, SHORT_LENGTHS, seed=seed, skills=skills)
        p = student.exact_pass_at_1([domain.student_prompt(q.question) for q in problems],
                                    [q.answer for q in problems]).tolist()
        by_length = {str(k): statistics.mean(v for v, q in zip(p, problems)
                                             if q.metadata["length"] == k) for k in SHORT_LENGTHS}
        out[family] = {"pass1": statistics.mean(p), "by_length": by_length,
                       "learnability": statistics.mean(learnability_expected(v, samples)
                                                       for v in p)}
    return out


def run(config: SteppingStoneConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run both regimes; returns a JSON-able summary (pass@1 in absolute units)."""
    from tqdm.auto import tqdm

    conditions = config.conditions or kinds(config.variant)
    if not set(conditions) <= set(kinds(config.variant)):
        raise ValueError(f"conditions expects a subset of {kinds(config.variant)}, "
                         f"actual {conditions}")
    runs = len(conditions) * len(config.seeds) * (1 + config.inner_repeats)
    bar = tqdm(total=runs, desc="stepping stones (RL runs)")
    progress = progress or tqdm.write
    domain = embedded.variant_domain(config.variant)
    student = embedded.load_tiny_student(config.model_path
                                         or embedded.variant_model_path(config.variant))
    lab = StudentLab(student, domain)  # owns the weights: every run starts from lab.base
    started = time.time()
    hard = build_hard_set(student, lab, embedded.hard_candidates(config.hard_candidates, seed=0),
                          k=config.k, seed=0, max_new_tokens=domain.max_answer_tokens, progress=True)
    progress(f"hard set: {len(hard.train)} train / {len(hard.test)} test of "
             f"{config.hard_candidates} candidates ({hard.meta['solved_at_least_once']} solved "
             f"at least once in {config.k})")

    def exact(problems: list[Problem]) -> float:
        return lab.accuracy(problems, "exact", samples=1, max_new_tokens=1, seed=None)

    base_test = exact(hard.test)
    summary: dict = {"config": asdict(config), "hard_set": hard.meta, "base_test_pass1": base_test,
                     "long": {}, "inner": {}}
    if config.variant == "v1":
        summary["short"] = short_chain_success(student, domain, config.short_problems)
        for family, v in summary["short"].items():
            progress(f"short chains, {family}: pass@1 {v['pass1']:.3f} (by length "
                     f"{v['by_length']}), expected learnability reward {v['learnability']:.3f}")

    for kind in conditions:
        finals, seconds = [], []
        for seed in config.seeds:
            lab.load(lab.base)
            t0 = time.time()
            trainer = lab.trainer(config.rl, seed)
            stats = trainer.train(_problem_sets(kind, hard, config.dataset_size, seed),
                                  config.long_steps)
            seconds.append(time.time() - t0)
            finals.append(exact(hard.test))
            bar.update()
            progress(f"long RL on {kind:10s} seed {seed}: test pass@1 {finals[-1]:.4f} "
                     f"(train reward {statistics.mean(s['reward'] for s in stats[-10:]):.3f}, "
                     f"{seconds[-1]:.0f} s)")
        summary["long"][kind] = {
            "test_pass1": finals, "gain_points": [100 * (f - base_test) for f in finals],
            "seconds": seconds,
        }

    for kind in conditions:
        gains = []
        for seed in config.seeds:
            for rep in range(config.inner_repeats):
                rng = random.Random(1000 * seed + rep)
                subset = rng.sample(hard.train, min(config.reward_subset, len(hard.train)))
                lab.load(lab.base)
                before = exact(subset)
                data_seed = 100 * seed + rep
                dataset = _problem_sets(kind, hard, config.inner_dataset_size, data_seed)
                if kind == "hard":
                    dataset = rng.sample(dataset, min(config.inner_dataset_size, len(dataset)))
                trainer = lab.trainer(config.rl, data_seed)
                trainer.train(dataset, config.inner_steps)
                gains.append(exact(subset) - before)
                bar.update()
        summary["inner"][kind] = {
            "gains": gains, "mean": statistics.mean(gains),
            "sd": statistics.stdev(gains) if len(gains) > 1 else 0.0,
        }
        progress(f"inner loop on {kind:10s}: reward {summary['inner'][kind]['mean']:.3e} "
                 f"+- {summary['inner'][kind]['sd']:.1e} over {len(gains)} runs")
    bar.close()
    lab.load(lab.base)
    summary["seconds"] = time.time() - started
    summary["acceptance"] = acceptance(summary)
    return summary


def acceptance(summary: dict) -> dict:
    """The issue's criteria, each as a boolean, from a summary."""
    long = {k: statistics.mean(v["gain_points"]) for k, v in summary["long"].items()}
    inner = summary["inner"]

    def separated(a: str, b: str) -> bool:
        # Difference of means larger than twice its standard error.
        n_a, n_b = len(inner[a]["gains"]), len(inner[b]["gains"])
        se = (inner[a]["sd"] ** 2 / n_a + inner[b]["sd"] ** 2 / n_b) ** 0.5
        return inner[a]["mean"] - inner[b]["mean"] > 2 * se

    checks = {  # name: (conditions it needs, check); a run of a subset gets its checks
        "hard_rl_below_1_point": (("hard",), lambda: long["hard"] < 1.0),
        "good_rl_at_least_5_points": (("good",), lambda: long["good"] >= 5.0),
        "narrow_clearly_below_good": (("good", "narrow"),
                                      lambda: long["narrow"] < 0.75 * long["good"]),
        "inner_good_gt_narrow": (("good", "narrow"), lambda: separated("good", "narrow")),
        "inner_narrow_gt_hard": (("narrow", "hard"), lambda: separated("narrow", "hard")),
        # v1: off-target RL must move the hard set far less than good stones.
        "off_target_rl_below_quarter_of_good": (
            ("good", "off-target"), lambda: long["off-target"] < 0.25 * long["good"]),
        "inner_good_gt_off_target": (("good", "off-target"),
                                     lambda: separated("good", "off-target")),
    }
    out = {"hard_set_zero_successes": summary["hard_set"]["hard"] > 0}
    out.update({name: check() for name, (needs, check) in checks.items()
                if set(needs) <= set(long)})
    if "short" in summary:  # off-target chains solved sometimes: learnability pays for them
        out["off_target_short_solved_sometimes"] = (
            0.1 < summary["short"]["off-target"]["pass1"] < 0.9)
    return out


def table_rows(summary: dict) -> list[tuple[str, ...]]:
    """Rows of the report: condition, long-RL gain (points), inner-loop reward."""
    rows = []
    for kind in summary["long"]:
        gains = summary["long"][kind]["gain_points"]
        inner = summary["inner"][kind]
        rows.append((
            kind,
            f"{statistics.mean(gains):+.2f} (" + ", ".join(f"{g:+.2f}" for g in gains) + ")",
            f"{inner['mean']:+.2e} +- {inner['sd']:.1e}",
            f"{statistics.mean(summary['long'][kind]['seconds']):.0f}",
        ))
    return rows


UNDERPOWERED = (
    "Note: fewer than 12 inner-loop runs per condition. One run's reward has an sd of ~1e-6, "
    "about the good - narrow gap, so the inner-loop checks need the acceptance budget "
    "(--seeds 3 --inner-repeats 4) to resolve it."
)


def _inner_runs(summary: dict) -> int:
    return len(next(iter(summary["inner"].values()))["gains"])


def underpowered(summary: dict) -> bool:
    return _inner_runs(summary) < 12


def markdown_report(summary: dict) -> str:
    """The table and acceptance checks as Markdown (written to report.md by the command)."""
    cfg = summary["config"]
    inner = summary["inner"]
    lines = [
        f"Base held-out hard pass@1 {summary['base_test_pass1']:.2e}; hard set "
        f"{summary['hard_set']['hard']} of {summary['hard_set']['candidates']} candidates "
        f"(fail@{summary['hard_set']['k']}); {len(cfg['seeds'])} seeds; "
        f"{summary['seconds'] / 60:.0f} min in all.",
        "",
    ]
    for family, v in summary.get("short", {}).items():
        lines += [
            f"Base student on short {family} chains (lengths 1-3, {cfg['short_problems']} "
            f"problems): exact pass@1 {v['pass1']:.3f} (by length "
            + ", ".join(f"{k}: {p:.3f}" for k, p in v["by_length"].items())
            + f"), expected learnability reward (8 samples) {v['learnability']:.3f}.",
            "",
        ]
    lines += [
        f"| RL on | long RL ({cfg['long_steps']} steps): held-out hard pass@1 gain, points "
        f"(per seed) | inner loop ({cfg['inner_steps']} steps): grounded reward, mean +- sd "
        f"| s per long run |",
        "|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in table_rows(summary)]
    text = (f"Inner loop: {_inner_runs(summary)} runs per condition (fresh dataset, sampling "
            f"and 64-question reward subset each)")
    for other in ("narrow", "off-target"):
        if {"good", other} <= set(inner):
            se = (inner["good"]["sd"] ** 2 / len(inner["good"]["gains"])
                  + inner[other]["sd"] ** 2 / len(inner[other]["gains"])) ** 0.5
            gap = inner["good"]["mean"] - inner[other]["mean"]
            text += (f"; good - {other} = {gap:.2e} "
                     f"({gap / se if se else float('inf'):.1f} standard errors)")
    if "good" in inner:
        text += f"; noise (sd of one run's reward) {inner['good']['sd']:.1e} on good stones"
    lines += ["", text + ".", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'} `{name}`" for name, ok in summary["acceptance"].items()]
    if underpowered(summary):
        lines += ["", UNDERPOWERED]
    return "\n".join(lines) + "\n"


def print_report(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=(
        f"Stepping stones on the embedded domain: base held-out hard pass@1 "
        f"{summary['base_test_pass1']:.2e}, {len(summary['config']['seeds'])} seeds"
    ))
    for col in ("RL on", f"long RL: hard-test gain, points ({summary['config']['long_steps']} steps)",
                f"inner loop reward ({summary['config']['inner_steps']} steps), mean +- sd",
                "s / long run"):
        table.add_column(col)
    for row in table_rows(summary):
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name, ok in summary["acceptance"].items():
        console.print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if underpowered(summary):
        console.print(UNDERPOWERED)


def plot(summary: dict, path) -> None:
    """Two panels: long-RL gains per seed, inner-loop rewards per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = tuple(summary["long"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, kind in enumerate(conditions):
        gains = summary["long"][kind]["gain_points"]
        axes[0].scatter([i] * len(gains), gains, color="C0")
        axes[0].bar(i, statistics.mean(gains), color="C0", alpha=0.3)
        inner = summary["inner"][kind]["gains"]
        axes[1].scatter([i] * len(inner), inner, color="C1", s=12)
        axes[1].bar(i, statistics.mean(inner), color="C1", alpha=0.3)
    for ax, title in zip(axes, ("long RL: held-out hard pass@1 gain (points)",
                                "inner loop: grounded reward (exact pass@1 gain)")):
        ax.set_xticks(range(len(conditions)), conditions)
        ax.set_title(title, fontsize=10)
        ax.axhline(0, color="gray", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
