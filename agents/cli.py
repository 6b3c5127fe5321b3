"""The ``soar-env`` command: train, eval and bench teachers; stones and hardset from soar_env.

It lives in ``soar_agents`` because training needs the teachers and ``soar_env`` never
imports them; ``stones`` and ``hardset`` are ``soar_env.cli``'s own commands.

    soar-env train                       # SOAR teacher on SOAR-Tiny-v0, 12 rounds, then eval
    soar-env train --resume --out runs/train
    soar-env eval runs/train --seeds 0 1 2
    soar-env bench --teachers soar learnability --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from soar_env import __version__
from soar_env import cli as env_cli


def _overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, values parsed as JSON when they can be (numbers, booleans)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects key=value, actual {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _train(args: argparse.Namespace) -> int:
    from .report import plot_run, print_run_summary
    from .runs import evaluate_run, train_run

    out = Path(args.out)
    history = train_run(
        out,
        args.env,
        args.teacher,
        args.seed,
        args.rounds,
        resume=args.resume,
        overrides=_overrides(args.set),
    )
    results = None
    if args.eval_seeds > 0:
        results = evaluate_run(out, list(range(args.eval_seeds)), eval_steps=args.eval_steps)
    caption = (f"{args.env}, teacher {args.teacher}, {len(history)} rounds, teacher seed {args.seed}, "
               f"student seeds 0-{args.eval_seeds - 1}; soar-env {__version__}")
    plot_run(history, results, out / "run.png", caption=caption)
    print_run_summary(out, history, results)
    print(f"logs: {out / 'rounds.csv'}, TensorBoard {out / 'tensorboard'}; plot {out / 'run.png'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .report import print_eval
    from .runs import evaluate_run

    results = evaluate_run(args.run, args.seeds, args.variants, eval_steps=args.eval_steps)
    print_eval(results)
    print(f"wrote {Path(args.run) / 'eval.json'}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    run_bench(
        args.out,
        args.env,
        args.teachers,
        seeds,
        args.rounds,
        _overrides(args.set),
        args.eval_steps,
        args.intrinsic_rounds,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soar-env", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a teacher on an env (the main job), then evaluate it")
    train.add_argument("--env", default="SOAR-Tiny-v0", help="registered env id")
    train.add_argument("--teacher", default="soar", help="teacher name (see soar_agents.TEACHERS)")
    train.add_argument("--rounds", type=int, default=12, help="teacher rounds (g env steps each)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/train", help="run folder (logs, checkpoints, plots)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--eval-seeds", type=int, default=2, help="student seeds for the evaluation (0: skip)")
    train.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="env settings, e.g. --set dataset_size=16 inner_steps=5",
    )
    train.add_argument(
        "--eval-steps",
        type=int,
        default=None,
        help="fresh-student training steps in the evaluation (default: the preset's)",
    )
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="the paper's evaluation protocol on a trained run")
    ev.add_argument("run", help="run folder written by `soar-env train`")
    ev.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="student seeds")
    ev.add_argument(
        "--variants",
        nargs="*",
        default=None,
        help="subset of: Grounded-T/Intrinsic-T/Base-T/NAME-T, PQ, PS, Hard-Only, base",
    )
    ev.add_argument(
        "--eval-steps",
        type=int,
        default=None,
        help="fresh-student training steps in the evaluation (default: the preset's)",
    )
    ev.set_defaults(func=_eval)
    bench = sub.add_parser("bench", help="several teachers x seeds, trained and evaluated; a leaderboard")
    bench.add_argument("--env", default="SOAR-Tiny-v0")
    bench.add_argument("--teachers", nargs="+", default=["soar", "learnability"])
    bench.add_argument("--seeds", type=int, default=5)
    bench.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds first..first+seeds-1 (split a bench over processes; a final run over "
        "all seeds reuses their results)",
    )
    bench.add_argument("--rounds", type=int, default=12, help="teacher rounds per run")
    bench.add_argument(
        "--intrinsic-rounds",
        type=int,
        default=None,
        help="rounds of intrinsic-reward teachers (default: --rounds, an equal budget)",
    )
    bench.add_argument("--out", default="runs/bench")
    bench.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="env settings")
    bench.add_argument(
        "--eval-steps",
        type=int,
        default=None,
        help="fresh-student training steps in the evaluation (default: the preset's)",
    )
    bench.set_defaults(func=_bench)
    env_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
