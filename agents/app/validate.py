"""``soar-env validate``: does an env tell curricula apart? (No teacher is trained.)

Fresh students train under the env id's own evaluation protocol on fixed reference
curricula of equal size: the domain's oracle, the untrained teacher's questions (Base-T),
the most learnable of them (learnability-top), the domain's generator (random), its
off-target region, its partial oracles, and none (Hard-Only). Two grounded-reward probes
step the env itself: does the reward follow the number of useful stones in a dataset
(P6), and does one oracle dataset's reward clear the noise (P7)? The criteria P1-P7 and
what each needs are in docs/domains.md; ``validity_report`` checks them and writes
``<out>/<id>.{json,md,png}``.

Curricula are drawn afresh for each seed s (teacher seed s for Base-T) and trained on by a
fresh student of seed s, so the intervals include the spread of the curricula themselves.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import soar_env
from soar_env.evaluation import EvalConfig, base_pass_at_k, evaluate_curricula
from soar_env.problems import Problem
from soar_env.rewards import learnability_expected

from .checkpoints import write_json
from .runs import untrained_questions as untrained_teacher_pool

PARTIAL_FRACTIONS = (0.25, 0.5, 0.75)
"""Partial oracles trained besides the oracle itself (the 100% row)."""
STONE_COUNTS = range(16)
"""P6: useful stones per dataset (each count in ``datasets / len(STONE_COUNTS)`` datasets)."""


@dataclass
class ValidityOptions:
    """Sizes of a validity run (defaults: the criteria's, docs/domains.md)."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    questions: int = 128
    """Problems in every reference curriculum (the paper's teacher sample)."""
    pool: int = 1024
    """Untrained-teacher questions per seed; Base-T is its first ``questions``,
    learnability-top its ``questions`` most learnable."""
    eval_steps: int | None = None
    """Fresh-student steps (None: the id's protocol)."""
    datasets: int = 48
    """P6: datasets stepped through the env."""
    noise_rounds: int = 8
    """P7: rounds of (oracle, oracle, Base-T, Base-T)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Env settings (``--set``), e.g. smaller sizes for a quick check."""


def make_env(env_id: str, settings: dict[str, Any]):
    """The id's env, never promoting (no teacher is trained), with rounds of 4 datasets (P7's layout)."""
    import soar_env  # noqa: F401  (registers the ids)

    env = gym.make(env_id, **{"tau": float("inf"), "group_size": 4, **settings}).unwrapped
    env.reset(seed=0)  # builds the hard set (or reads it)
    return env


def learnability(env: Any, problems: list[Problem], seed: int) -> list[float]:
    """The base student's expected learnability reward of each problem at the env's
    ``intrinsic_samples`` S: ``(1 - p) - (1 - p)^S`` with p its exact pass@1 (exact-answer
    domains), otherwise the learnability reward of S samples."""
    import torch

    from soar_env.rewards import learnability as reward

    lab, samples = env.lab, env.config.intrinsic_samples
    lab.load(lab.base)
    if env.domain.exact_answers:
        prompts = [lab.student_prompt(p.question) for p in problems]
        p = lab.student.exact_pass_at_1(prompts, [p.answer for p in problems]).double().tolist()
        return [learnability_expected(v, samples) for v in p]
    generator = torch.Generator(device=lab.student.device.type).manual_seed(seed)
    counts = lab.success_counts(problems, samples, env.config.rl.max_new_tokens, generator)
    return [reward(c / samples, c, samples) for c in counts]


def reference_curricula(env: Any, seed: int,
                        options: ValidityOptions) -> tuple[dict[str, list[Problem]], dict]:
    """The reference curricula of one seed, and what was measured on its untrained-teacher pool."""
    n, refs, generator = options.questions, env.domain.validity, env.domain.generator
    pool = untrained_teacher_pool(env, max(options.pool, n), seed)
    scores = learnability(env, pool, seed)
    top = [pool[i] for i in sorted(range(len(pool)), key=lambda i: (-scores[i], i))[:n]]
    curricula: dict[str, list[Problem]] = {}
    if refs is not None and refs.oracle is not None:
        curricula["oracle"] = refs.oracle(n, seed)
    curricula["Base-T"] = pool[:n]
    curricula["learnability-top"] = top
    if generator is not None:
        curricula["random"] = generator.problems(n, range(1, generator.max_len + 1), seed=seed)
    if refs is not None and refs.off_target is not None:
        curricula["off-target"] = refs.off_target(n, seed)
    curricula["Hard-Only"] = []
    if refs is not None and refs.partial_oracle is not None:
        for fraction in PARTIAL_FRACTIONS:
            curricula[partial_name(fraction)] = refs.partial_oracle(fraction, n, seed)
    measured: dict[str, Any] = {"learnability_mean": float(np.mean(scores))}
    if refs is not None and refs.label is not None:
        labels = [refs.label(p.question) for p in pool]
        top_labels = [refs.label(p.question) for p in top]
        measured.update(
            {f"pool_{k}": labels.count(k) for k in ("useful", "trap", "other")},
            top_useful=top_labels.count("useful"), top_size=len(top),
            learnability_useful=[s for s, k in zip(scores, labels) if k == "useful"],
            learnability_trap=[s for s, k in zip(scores, labels) if k == "trap"],
        )
    return curricula, {"pool": pool, **measured}


def partial_name(fraction: float) -> str:
    return f"partial-{round(100 * fraction)}%"


def stone_datasets(pool: list[Problem], label: Any, size: int, count: int,
                   seed: int) -> list[tuple[int, list[Problem]]]:
    """P6: ``count`` datasets of ``size`` pool questions with k useful stones each, k cycling
    through ``STONE_COUNTS`` (at most ``size``), in a seeded random order."""
    rng = random.Random(seed)
    useful = [p for p in pool if label(p.question) == "useful"]
    rest = [p for p in pool if label(p.question) != "useful"]
    out = []
    for i in range(count):
        k = min(STONE_COUNTS[i % len(STONE_COUNTS)], size)
        stones = rng.sample(useful, k) if len(useful) >= k else rng.choices(useful, k=k) if useful else []
        others = rng.sample(rest, size - len(stones)) if len(rest) >= size - len(stones) \
            else rng.choices(rest, k=size - len(stones))
        dataset = stones + others
        rng.shuffle(dataset)
        out.append((len(stones), dataset))
    rng.shuffle(out)
    return out


def step_rewards(env: Any, datasets: list[list[Problem]], seed: int) -> list[float]:
    """The grounded reward of each dataset, stepped through the env in order from a reset
    (the env's r, K and M; rounds of ``group_size`` datasets share their reward questions)."""
    env.reset(seed=seed)
    rewards = []
    for dataset in datasets:
        _, reward, _, _, _ = env.step(dataset)
        rewards.append(float(reward))
    return rewards


def grounded_probes(env: Any, pool: list[Problem], options: ValidityOptions) -> dict[str, Any]:
    """P6 (reward against useful stones) and P7 (oracle vs Base-T against repeat noise)."""
    refs, n, g = env.domain.validity, env.config.dataset_size, env.config.group_size
    out: dict[str, Any] = {}
    if refs is not None and refs.label is not None:
        made = stone_datasets(pool, refs.label, n, options.datasets, seed=6)
        rewards = step_rewards(env, [d for _, d in made], seed=6)
        out["P6"] = {"stones": [k for k, _ in made], "reward": rewards,
                     "round": [i // g for i in range(len(made))]}
    if refs is not None and refs.oracle is not None:
        out["P7"] = noise_probe(env, pool, options.noise_rounds)
    return out


def noise_probe(env: Any, pool: list[Problem], rounds: int) -> dict[str, Any]:
    """P7: ``rounds`` rounds of (oracle, oracle, Base-T, Base-T) datasets stepped through the
    env; the repeats give one dataset's noise, the pairs the oracle's gap."""
    refs, n = env.domain.validity, env.config.dataset_size
    datasets, layout = [], []
    for j in range(rounds):
        oracle = refs.oracle(n, 7000 + j)
        base = pool[(j * n) % len(pool):][:n] or pool[:n]
        datasets += [oracle, oracle, base, base]
        layout += ["oracle", "oracle", "Base-T", "Base-T"]
    return {"layout": layout, "reward": step_rewards(env, datasets, seed=7),
            "inner_runs": env.config.inner_runs}


class SeedLog:
    """The seeds a validity run has finished, kept on disk as each ends (None: in memory).

    A log written under other options, or by another version, is not reused."""

    def __init__(self, path: Path | None, env_id: str, options: ValidityOptions):
        self.path = path
        self.key = {"env": env_id, "version": soar_env.__version__,
                    "options": json.loads(json.dumps(asdict(options), default=str))}
        self.seeds: dict[str, dict] = {}
        if path is not None and path.exists():
            try:
                kept = json.loads(path.read_text())
            except (OSError, ValueError):
                kept = {}
            if kept.get("key") == self.key:
                self.seeds = kept.get("seeds", {})

    def __contains__(self, seed: int) -> bool:
        return str(seed) in self.seeds

    def __getitem__(self, seed: int) -> dict:
        entry = dict(self.seeds[str(seed)])
        measured = dict(entry["measured"])
        measured["pool"] = [Problem.from_dict(p) for p in measured["pool"]]
        return {**entry, "measured": measured}

    def add(self, seed: int, entry: dict) -> None:
        measured = {**entry["measured"], "pool": [p.to_dict() for p in entry["measured"]["pool"]]}
        self.seeds[str(seed)] = {**entry, "measured": measured}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"key": self.key, "seeds": self.seeds})

    def finish(self) -> None:
        """The run's own files now hold everything: the log goes."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def run_validity(env_id: str, options: ValidityOptions, out: str | Path | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Train the reference curricula, probe the grounded reward, check P1-P7; write the files."""
    from rich.console import Console

    from . import validity_report

    console = Console()
    started = time.perf_counter()
    env = make_env(env_id, options.settings)
    config = EvalConfig.for_env(env, **({"max_steps": options.eval_steps} if options.eval_steps else {}))
    # Each finished seed is kept in <out>/<id>.seeds.json, so that a killed run goes on from
    # the next seed (a seed of SOAR-Tiny-v2 is about 15 minutes on 2 cores).
    done = SeedLog(Path(out) / f"{env_id}.seeds.json" if out is not None else None, env_id, options)
    results: dict[str, dict[str, dict]] = {}
    steps: dict[str, list[int]] = {}
    pools: list[dict] = []
    for seed in options.seeds:
        if seed in done:
            kept = done[seed]
            console.print(f"[bold]seed {seed}[/bold]: kept from {done.path}")
        else:
            curricula, measured = reference_curricula(env, seed, options)
            console.print(f"[bold]seed {seed}[/bold]: training fresh students on {', '.join(curricula)}")
            kept = {"measured": measured, "results": {}, "steps": {}}
            for name, result in evaluate_curricula(env, curricula, [seed], config, progress).items():
                kept["results"][name] = {str(k): v for k, v in result.per_seed[0].items()}
                kept["steps"][name] = result.steps[0]
            done.add(seed, kept)
        pools.append(kept["measured"])
        for name, values in kept["results"].items():
            results.setdefault(name, {})[str(seed)] = values
            steps.setdefault(name, []).append(kept["steps"][name])
        console.print(f"seed {seed}, held-out pass@1: " + ", ".join(
            f"{name} {per_seed[str(seed)]['1']:.3g}" for name, per_seed in results.items()))
    base = base_pass_at_k(env, options.seeds, config)
    console.print("probing the grounded reward (P6, P7)")
    probes = grounded_probes(env, pools[0]["pool"], options)
    summary = validity_report.summarise(
        env_id, env, config, options, results, steps,
        {str(s): {str(k): v for k, v in r.items()} for s, r in zip(options.seeds, base.per_seed)},
        [{k: v for k, v in p.items() if k != "pool"} for p in pools], probes,
    )
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["options"] = {k: v for k, v in asdict(options).items() if k != "settings"}
    summary["options"]["settings"] = {k: str(v) for k, v in options.settings.items()}
    summary["version"] = soar_env.__version__
    env.close()
    done.finish()
    if out is not None:
        validity_report.write(summary, Path(out))
    print(validity_report.markdown(summary))
    return summary
