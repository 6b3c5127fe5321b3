"""The ``soar-env`` command: train, eval, bench and validate; stones and hardset from soar_env.

The one parser of the command (also ``python -m soar_agents``). It lives in ``soar_agents``
because training needs the teachers and ``soar_env`` never imports them; ``stones`` and
``hardset`` are ``soar_env.cli``'s own commands, added here by ``soar_env.cli.add_commands``.

    soar-env train                       # SOAR teacher on SOAR-Tiny-v1, 12 rounds, then eval
    soar-env train --resume --out runs/train
    soar-env eval runs/train --seeds 0 1 2
    soar-env bench --teachers soar learnability --seeds 5
    soar-env validate --env SOAR-Tiny-v2 --seeds 3
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from soar_env import DEFAULT_ENV, __version__
from soar_env import cli as env_cli

from .. import TEACHERS


class UsageError(ValueError):
    """A mistake in the command line: printed as one line, before any work starts."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): the mistake, and where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(name: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects an integer, actual {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} expects >= {minimum}, actual {value}")
        return value

    return parse


def parse_settings(env_id: str, teacher: str, pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set key=value`` pairs as (env settings, teacher settings), typed and checked.

    Env keys are ``SoarConfig`` fields, nested ones dotted (``rl.learning_rate``); teacher
    keys start with ``teacher.`` (``teacher.learning_rate``). The whole env config is built
    once with the preset of ``env_id``, so cross-field rules are checked too. Only config
    modules are imported: a mistake costs about a second, not a model load.
    """
    import gymnasium as gym

    import soar_env  # noqa: F401  (registers the ids)
    from soar_env.config import PRESETS, SoarConfig
    from soar_env.fields import coerce_field

    if env_id not in gym.registry:
        ids = sorted(k for k in gym.registry if k.startswith("SOAR"))
        raise UsageError(f"--env expects a registered id ({', '.join(ids)}), actual {env_id!r}")
    env_settings: dict[str, Any] = {}
    teacher_settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, actual {pair!r}")
        if key.startswith("teacher."):
            teacher_settings[key.removeprefix("teacher.")] = text
        else:
            env_settings[key] = coerce_field(SoarConfig, key, text)
    kwargs = dict(gym.spec(env_id).kwargs)
    preset = kwargs.pop("preset", "tiny")
    kwargs.pop("config", None)
    PRESETS[preset](**kwargs).replace(**env_settings)  # cross-field rules, e.g. max_inner_steps
    if teacher_settings:
        teacher_settings = _teacher_settings(teacher, teacher_settings)
    return env_settings, teacher_settings


def _teacher_settings(teacher: str, raw: dict[str, str]) -> dict[str, Any]:
    from soar_env.fields import coerce_field
    from soar_env.rewards import INTRINSIC

    from ..teachers.soar_teacher import SoarTeacherConfig

    if teacher not in ("soar", "base", *INTRINSIC):  # the teachers built on SoarTeacherConfig
        raise UsageError(f"teacher {teacher!r} has no settings; teacher.* keys are for the LLM "
                         "teachers (soar, base and the intrinsic ones)")
    return {key: coerce_field(SoarTeacherConfig, key, text) for key, text in raw.items()}


def _train(args: argparse.Namespace) -> int:
    from .report import plot_run, print_run_summary
    from .runs import evaluate_run, train_run

    out = Path(args.out)
    env_settings, teacher_settings = args.settings
    try:
        history = train_run(
            out,
            args.env,
            args.teacher,
            args.seed,
            args.rounds,
            resume=args.resume,
            overrides=env_settings,
            teacher_settings=teacher_settings,
            machine={"executor": args.executor, "num_workers": args.workers},
        )
    except KeyboardInterrupt:
        _interrupted(out, args)
        return 130
    results = None
    if args.eval_seeds > 0:
        seeds = list(range(args.eval_seeds))
        try:
            results = evaluate_run(out, seeds, eval_steps=args.eval_steps)
        except KeyboardInterrupt:
            steps = f" --eval-steps {args.eval_steps}" if args.eval_steps else ""
            print(f"\ninterrupted during the evaluation: the trained run is saved in {out}, and each "
                  f"finished evaluation in {out / 'eval.json'}. Finish it with:\n"
                  f"  soar-env eval {out} --seeds {' '.join(map(str, seeds))}{steps}", file=sys.stderr)
            return 130
    caption = (f"{args.env}, teacher {args.teacher}, {len(history)} rounds, teacher seed {args.seed}, "
               f"student seeds 0-{args.eval_seeds - 1}; soar-env {__version__}")
    plot_run(history, results, out / "run.png", caption=caption)
    print_run_summary(out, history, results)
    print(f"logs: {out / 'rounds.csv'}, TensorBoard {out / 'tensorboard'}; plot {out / 'run.png'}")
    return 0


def _interrupted(out: Path, args: argparse.Namespace) -> None:
    again = " ".join(a for a in sys.argv[1:] if a != "--resume")
    print(f"\ninterrupted: every finished round is saved in {out}. Continue with:\n"
          f"  soar-env {again} --resume", file=sys.stderr)


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
    try:
        run_bench(
            args.out,
            args.env,
            args.teachers,
            seeds,
            args.rounds,
            args.settings[0],
            args.eval_steps,
            args.intrinsic_rounds,
            teacher_settings=args.settings[1],
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs and evaluations are saved under {args.out}; "
              "the same command resumes them", file=sys.stderr)
        return 130
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .validate import ValidityOptions, run_validity

    if args.settings[1]:
        raise UsageError("validate trains no teacher: teacher.* settings do not apply")
    options = ValidityOptions(seeds=list(range(args.seeds)), questions=args.questions, pool=args.pool,
                              eval_steps=args.eval_steps, datasets=args.datasets,
                              noise_rounds=args.noise_rounds, settings=args.settings[0])
    summary = run_validity(args.env, options, args.out)
    stem = Path(args.out) / args.env
    print(f"wrote {stem}.json, {stem}.md and {stem}.png")
    failed = [n for n, c in summary["criteria"].items() if c["pass"] is False]
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog="soar-env", description=__doc__.splitlines()[0], formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    set_help = ("settings KEY=VALUE: env fields (dataset_size=16, rl.learning_rate=1e-5) and, "
                "for LLM teachers, teacher.FIELD (teacher.answers=teacher); an unknown key lists "
                "the valid ones")
    steps_help = "fresh-student training steps in the evaluation (default: the env's protocol)"
    train = sub.add_parser("train", help="train a teacher on an env (the main job), then evaluate it",
                           formatter_class=fmt)
    train.add_argument("--env", default=DEFAULT_ENV, help="registered env id")
    train.add_argument("--teacher", default="soar", choices=TEACHERS, metavar="NAME",
                       help=f"teacher: {', '.join(TEACHERS)}")
    train.add_argument("--rounds", type=_positive("--rounds"), default=12,
                       help="teacher rounds (g env steps each)")
    train.add_argument("--seed", type=_positive("--seed", 0), default=0,
                       help="seed of the env, the teacher and the run")
    train.add_argument("--out", default="runs/train", help="run folder (logs, checkpoints, plots)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--eval-seeds", type=_positive("--eval-seeds", 0), default=2,
                       help="student seeds for the evaluation (0: skip it)")
    train.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help=set_help)
    train.add_argument("--eval-steps", type=_positive("--eval-steps"), default=None, help=steps_help)
    train.add_argument("--executor", default="serial", choices=("serial", "process", "ray"),
                       help="where a round's inner runs run: here, or in --workers processes "
                            "(the same results)")
    train.add_argument("--workers", type=_positive("--workers"), default=2,
                       help="worker processes of --executor process")
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="the paper's evaluation protocol on a trained run", formatter_class=fmt)
    ev.add_argument("run", help="run folder written by `soar-env train`")
    ev.add_argument("--seeds", type=_positive("--seeds", 0), nargs="+", default=[0, 1, 2],
                    help="student seeds")
    ev.add_argument("--variants", nargs="*", default=None,
                    help="subset of: Grounded-T/Intrinsic-T/Base-T/NAME-T, PQ, PS, Hard-Only, base")
    ev.add_argument("--eval-steps", type=_positive("--eval-steps"), default=None, help=steps_help)
    ev.set_defaults(func=_eval)
    bench = sub.add_parser("bench", help="several teachers x seeds, trained and evaluated; a leaderboard",
                           formatter_class=fmt)
    bench.add_argument("--env", default=DEFAULT_ENV, help="registered env id")
    # The paper's comparison: grounded and intrinsic teachers, the untrained teacher, and two
    # non-LLM references (Hard-Only and base come with the first teacher of each seed).
    bench.add_argument("--teachers", nargs="+", choices=TEACHERS,
                       default=["soar", "learnability", "base", "random", "curriculum"],
                       metavar="NAME", help=f"teachers among: {', '.join(TEACHERS)}")
    bench.add_argument("--seeds", type=_positive("--seeds"), default=5, help="number of seeds")
    bench.add_argument("--first-seed", type=_positive("--first-seed", 0), default=0,
                       help="seeds first..first+seeds-1 (split a bench over processes; a final run "
                       "over all seeds reuses their results)")
    bench.add_argument("--rounds", type=_positive("--rounds"), default=12, help="teacher rounds per run")
    bench.add_argument("--intrinsic-rounds", type=_positive("--intrinsic-rounds"), default=None,
                       help="rounds of intrinsic-reward teachers (default: --rounds, an equal budget)")
    bench.add_argument("--out", default="runs/bench", help="bench folder")
    bench.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                       help="settings KEY=VALUE as for train; teacher.* keys (teacher.answers=teacher) go to "
                            "the LLM teachers (soar, base, intrinsic)")
    bench.add_argument("--eval-steps", type=_positive("--eval-steps"), default=None, help=steps_help)
    bench.set_defaults(func=_bench)
    val = sub.add_parser("validate", help="does an env tell curricula apart? fresh students on reference "
                         "curricula, criteria P1-P7 (docs/domains.md); exit 1 when one fails",
                         formatter_class=fmt)
    val.add_argument("--env", default=DEFAULT_ENV, help="registered env id")
    val.add_argument("--seeds", type=_positive("--seeds"), default=3, help="student seeds 0..N-1")
    val.add_argument("--out", default="docs/results/validity", help="folder of ENV.json, ENV.md, ENV.png")
    val.add_argument("--questions", type=_positive("--questions"), default=128,
                     help="problems in every reference curriculum")
    val.add_argument("--pool", type=_positive("--pool"), default=1024,
                     help="untrained-teacher questions per seed (learnability-top picks from them)")
    val.add_argument("--eval-steps", type=_positive("--eval-steps"), default=None, help=steps_help)
    val.add_argument("--datasets", type=_positive("--datasets"), default=48,
                     help="P6: datasets stepped through the env")
    val.add_argument("--noise-rounds", type=_positive("--noise-rounds"), default=8,
                     help="P7: rounds of two oracle and two Base-T steps")
    val.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                     help="env settings KEY=VALUE as for train (e.g. smaller sizes for a quick check)")
    val.set_defaults(func=_validate)
    env_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Every setting is checked before anything heavy is imported or written.
        if args.command in ("train", "bench", "validate"):
            teacher = getattr(args, "teacher", "soar")
            args.settings = parse_settings(args.env, teacher, args.set)
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        if os.environ.get("SOAR_ENV_DEBUG"):
            raise
        # One line: the message says what to change (SOAR_ENV_DEBUG=1 shows the traceback).
        print(f"soar-env {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
