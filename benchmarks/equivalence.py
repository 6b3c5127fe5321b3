"""Old and new code side by side: do they measure the same things, in distribution?

0.4.0 changed the numbers (the lockstep executor samples with its own random streams and
sums in another order), so equality with 0.3.0 cannot be checked; equivalence can (0.5.0
changed them again, in float rounding: ``--baseline 1fb130a`` is 0.4.0). Each
check runs the same inputs through an older revision (``--baseline``, imported from a
temporary git worktree, its default executor) and through this checkout (its default), each
case in its own process, and reports per seed, with Welch's two-sample t-test and the
difference of means with its 95% interval:

1. **grounded reward of fixed curricula**: good stepping stones, off-target chains and
   datasets of the untrained teacher (Base-T), one env step each, ``--seeds`` seeds (env
   seed and dataset seed); the datasets are written once and read by both trees;
2. **stepping-stone ordering**: fresh students trained ``--stone-steps`` steps on good
   stones, a narrow (one-skill) set and the hard problems alone (no D_train), held-out hard
   pass@1, 3 seeds: good > narrow > hard must hold in both trees;
3. **fresh-student learning curve**: the evaluation protocol on good stones plus D_train,
   the training reward in windows of 25 steps and the final held-out pass@1.

A difference is a finding to explain, not a threshold to tune: the JSON keeps every value.

    python benchmarks/equivalence.py --baseline 3fb52dd --out docs/results/equivalence.json
    python benchmarks/equivalence.py --baseline 1fb130a --out docs/results/speed/equivalence_0.5.0.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "SOAR-Tiny-v1"


def _problems(items):
    from soar_env.problems import Problem

    return [Problem(q, a) for q, a in items]


def case_rewards(datasets: dict[str, list]) -> dict[str, list[float]]:
    """Check 1 in this tree: one grounded env step per (curriculum, seed)."""
    import gymnasium as gym

    import soar_env  # noqa: F401

    out: dict[str, list[float]] = {}
    env = gym.make(ENV)
    for name, per_seed in datasets.items():
        out[name] = []
        for seed, items in enumerate(per_seed):
            env.reset(seed=seed)
            out[name].append(env.step(_problems(items))[1])
    env.close()
    return out


def case_stones(steps: int, seeds: list[int]) -> dict[str, list[float]]:
    """Check 2 in this tree: fresh students on each set alone, held-out hard pass@1."""
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_env.embedded import good_stones, narrow_stones
    from soar_env.evaluation import EvalConfig, evaluate_curriculum

    env = gym.make(ENV)
    env.reset(seed=0)
    u = env.unwrapped
    config = replace(
        EvalConfig.for_env(u, synthetic_steps=steps, max_steps=steps, early_stop=False), mode="curriculum"
    )  # the set alone: never switches to D_train
    sets = {"good": good_stones(256, 0), "narrow": narrow_stones(256, 0), "hard": list(u.hard_set.train)}
    out = {}
    for name, problems in sets.items():
        result = evaluate_curriculum(u, problems, seeds, config, name)
        out[name] = [s[1] for s in result.per_seed]
    env.close()
    return out


def case_curve(steps: int, seeds: list[int]) -> dict:
    """Check 3 in this tree: the protocol on good stones + D_train; reward windows, pass@1."""
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_env.embedded import good_stones
    from soar_env.evaluation import EvalConfig, evaluate_curriculum

    env = gym.make(ENV)
    env.reset(seed=0)
    u = env.unwrapped
    config = EvalConfig.for_env(u, max_steps=steps, early_stop=False)
    result = evaluate_curriculum(u, good_stones(128, 0), seeds, config, "good")
    windows = [[sum(r[i : i + 25]) / 25 for i in range(0, steps, 25)] for r in result.train_reward]
    env.close()
    return {"pass@1": [s[1] for s in result.per_seed], "reward_windows": windows}


def welch(a: list[float], b: list[float]) -> dict:
    """Welch's t-test of means a vs b, and b - a with its 95% interval."""
    from scipy import stats

    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    df = se**4 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1)) if se else 1.0
    t = (mb - ma) / se if se else 0.0
    p = float(2 * stats.t.sf(abs(t), df)) if se else 1.0
    half = float(stats.t.ppf(0.975, df)) * se
    return {
        "old_mean": ma,
        "new_mean": mb,
        "difference": mb - ma,
        "ci95": half,
        "p": p,
        "relative_difference": (mb - ma) / ma if ma else None,
    }


def _run(case: str, arg: str, tree: Path | None) -> dict:
    env = dict(os.environ)
    if tree is not None:  # import the old revision's soar_env ahead of the installed one
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--case", case, "--arg", arg],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if out.returncode:
        raise SystemExit(f"case {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _datasets(seeds: int) -> dict[str, list]:
    """The check-1 datasets (64 problems each), made once with this tree's teachers."""
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_agents import make_teacher
    from soar_env.embedded import good_stones, off_target_stones

    env = gym.make(ENV)
    obs, _ = env.reset(seed=0)
    base = make_teacher("base")
    base.setup(env.unwrapped, 0)
    base_t = [[(p.question, p.answer) for p in ds] for ds in base.propose(obs, seeds)]
    env.close()
    return {
        "good stones": [[(p.question, p.answer) for p in good_stones(64, s)] for s in range(seeds)],
        "off-target": [[(p.question, p.answer) for p in off_target_stones(64, s)] for s in range(seeds)],
        "Base-T": base_t,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="3fb52dd", help="the older revision (default: 0.3.0)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds of check 1")
    parser.add_argument("--stone-steps", type=int, default=120)
    parser.add_argument("--curve-steps", type=int, default=300)
    parser.add_argument("--curve-seeds", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--arg", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        cases = {
            "rewards": lambda a: case_rewards(json.loads(Path(a).read_text())),
            "stones": lambda a: case_stones(*json.loads(a)),
            "curve": lambda a: case_curve(*json.loads(a)),
        }
        print(json.dumps(cases[args.case](args.arg)))
        return
    from soar_env import __version__

    result: dict = {"env": ENV, "baseline": args.baseline, "version": __version__}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old), args.baseline], check=True
        )
        try:
            data = Path(tmp) / "datasets.json"
            data.write_text(json.dumps(_datasets(args.seeds)))
            runs = {
                "rewards": str(data),
                "stones": json.dumps([args.stone_steps, [0, 1, 2]]),
                "curve": json.dumps([args.curve_steps, list(range(args.curve_seeds))]),
            }
            for case, arg in runs.items():
                result[case] = {"old": _run(case, arg, old), "new": _run(case, arg, None)}
                print(f"{case} done", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)])
    report(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def report(result: dict) -> None:
    tests: dict = {}
    version = result.get("version", "this checkout")
    print(f"\n{result['env']}: {version} (new) vs {result['baseline']} (old)\n")
    print("| check | old mean | new mean | new - old (95% interval) | Welch p |\n|---|---:|---:|---:|---:|")
    rows = [
        (f"grounded reward, {k}", result["rewards"]["old"][k], result["rewards"]["new"][k])
        for k in result["rewards"]["old"]
    ]
    rows += [
        (f"stones pass@1, {k}", result["stones"]["old"][k], result["stones"]["new"][k])
        for k in result["stones"]["old"]
    ]
    rows.append(("curve final pass@1", result["curve"]["old"]["pass@1"], result["curve"]["new"]["pass@1"]))
    for name, a, b in rows:
        w = welch(a, b)
        tests[name] = {**w, "per_seed": {"old": a, "new": b}}
        print(
            f"| {name} | {w['old_mean']:.4g} | {w['new_mean']:.4g} | {w['difference']:+.3g} "
            f"(+-{w['ci95']:.3g}) | {w['p']:.2f} |"
        )
    order = {
        tree: [sum(result["stones"][tree][k]) / 3 for k in ("good", "narrow", "hard")]
        for tree in ("old", "new")
    }
    result["stone_ordering"] = {t: o[0] > o[1] > o[2] for t, o in order.items()}
    print("\nstepping-stone ordering good > narrow > hard:", result["stone_ordering"])
    result["tests"] = tests


if __name__ == "__main__":
    main()
