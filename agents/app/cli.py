"""The ``soar-env`` command: train, eval, bench and validate; stones and hardset from soar_env.

The one parser of the command (also ``python -m soar_agents``). It lives in ``soar_agents``
because training needs the teachers and ``soar_env`` never imports them; ``stones`` and
``hardset`` are ``soar_env.cli``'s own commands, added here by ``soar_env.cli.add_commands``.

    soar-env train                       # SOAR teacher on SOAR-Tiny-v4, 12 rounds, then eval
    soar-env train --resume --out runs/train
    soar-env eval runs/train --seeds 0 1 2
    soar-env bench --teachers soar learnability --seeds 5
    soar-env validate --env SOAR-Tiny-v2 --seeds 3
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from soar_env import DEFAULT_ENV, __version__
from soar_env import cli as env_cli
from soar_env.files import WriteError

from .. import TEACHERS
from .runlock import run_lock

# What a write refused by the system raises outside ``write_atomic`` (which names the file).
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


class UsageError(ValueError):
    """A mistake in the command line: printed as one line, before any work starts."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's notice before preemption), handled as Ctrl-C: the current write
    is abandoned whole, the resume command is printed, and the exit status is 143."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: the clean-up is not cut again
    raise Terminated()


def _status(stop: KeyboardInterrupt) -> int:
    return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)


def _stopped(stop: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"


def _refused_write(error: OSError) -> str | None:
    """'cannot write FILE (reason)' when the system refused a write (full disk...), else None."""
    if not isinstance(error, WriteError) and error.errno not in DISK_ERRORS:
        return None
    return f"cannot write {error.filename or 'a file'} ({error.strerror or error})"


def _fix(error: OSError) -> str:
    return "free some space" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that"


def _write_refused(command: str, error: OSError, kept: str, then: str = "run the same command again") -> int:
    """One line for a write the system refused (what is kept, what to do), exit status 1;
    any other OSError goes on up."""
    refused = _refused_write(error)
    if refused is None:
        raise error
    print(f"soar-env {command}: error: {refused}; {kept}: {_fix(error)}, then {then}", file=sys.stderr)
    return 1


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


def _report_to(text: str) -> tuple[str, ...]:
    from .trackers import parse_report_to

    try:
        return parse_report_to(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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

    if teacher not in ("soar", "base", "prompted", *INTRINSIC):  # the teachers built on SoarTeacherConfig
        raise UsageError(f"teacher {teacher!r} has no settings; teacher.* keys are for the LLM "
                         "teachers (soar, base, prompted and the intrinsic ones)")
    return {key: coerce_field(SoarTeacherConfig, key, text) for key, text in raw.items()}


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        # One writer per run folder, taken before torch loads: a second command ends at once.
        with run_lock(out):
            return _train_locked(args, out)
    except OSError as error:
        from .loop import saved_rounds

        return _write_refused("train", error, f"the run is intact up to round {saved_rounds(out)} of "
                              f"{args.rounds} in {out}", f"continue with: {_resume_command(args)}")


def _resume_command(args: argparse.Namespace) -> str:
    """This very command with ``--resume``: it continues the run from its last checkpoint."""
    return "soar-env " + shlex.join([a for a in args.argv if a != "--resume"] + ["--resume"])


def _train_locked(args: argparse.Namespace, out: Path) -> int:
    from .report import plot_run, print_run_summary
    from .runs import evaluate_run, train_run

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
            report_to=args.report_to,
        )
    except KeyboardInterrupt as stop:
        print(f"\n{_stopped(stop)}: every finished round is saved in {out}. Continue with:\n"
              f"  {_resume_command(args)}", file=sys.stderr)
        return _status(stop)
    results = None
    if args.eval_seeds > 0:
        seeds = list(range(args.eval_seeds))
        try:
            # The fresh students train in the lockstep workers too (not a result setting).
            machine = ({"executor": args.executor, "num_workers": args.workers}
                       if args.executor in ("auto", "lockstep") else None)
            results = evaluate_run(out, seeds, eval_steps=args.eval_steps, machine=machine)
        except KeyboardInterrupt as stop:
            steps = f" --eval-steps {args.eval_steps}" if args.eval_steps else ""
            print(f"\n{_stopped(stop)} during the evaluation: the trained run is saved in {out}, and each "
                  f"finished evaluation in {out / 'eval.json'}. Finish it with:\n"
                  f"  soar-env eval {out} --seeds {' '.join(map(str, seeds))}{steps}", file=sys.stderr)
            return _status(stop)
    caption = (f"{args.env}, teacher {args.teacher}, {len(history)} rounds, teacher seed {args.seed}, "
               f"student seeds 0-{args.eval_seeds - 1}; soar-env {__version__}")
    plot_run(history, results, out / "run.png", caption=caption)
    print_run_summary(out, history, results)
    print(f"logs: {_logs(args.report_to, out)}; plot {out / 'run.png'}")
    return 0


def _logs(report_to: tuple[str, ...], out: Path) -> str:
    from .trackers import TRACKIO_PROJECT, trackio_run_name

    where = {"csv": str(out / "rounds.csv"), "tensorboard": f"TensorBoard {out / 'tensorboard'}",
             "trackio": f"trackio run {trackio_run_name(out)} (trackio show --project {TRACKIO_PROJECT})"}
    return ", ".join(where[name] for name in report_to) or "none (--report-to none)"


def _eval(args: argparse.Namespace) -> int:
    with run_lock(args.run, create=False):  # before torch loads, as for train
        from .report import print_eval
        from .runs import evaluate_run

        try:
            results = evaluate_run(args.run, args.seeds, args.variants, eval_steps=args.eval_steps,
                                   machine={"num_workers": args.workers})
        except OSError as error:
            kept = f"each finished evaluation is kept in {Path(args.run) / 'eval.json'}"
            return _write_refused("eval", error, kept)
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
            student_seeds=args.student_seeds,
        )
    except KeyboardInterrupt as stop:
        print(f"\n{_stopped(stop)}: finished runs and evaluations are saved under {args.out}; "
              "the same command resumes them", file=sys.stderr)
        return _status(stop)
    except OSError as error:
        return _write_refused("bench", error, f"finished runs and evaluations are kept under {args.out}",
                              "run the same command again (it resumes them)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .validate import ValidityOptions, run_validity

    if args.settings[1]:
        raise UsageError("validate trains no teacher: teacher.* settings do not apply")
    options = ValidityOptions(seeds=list(range(args.seeds)), questions=args.questions, pool=args.pool,
                              eval_steps=args.eval_steps, datasets=args.datasets,
                              noise_rounds=args.noise_rounds, settings=args.settings[0])
    try:
        summary = run_validity(args.env, options, args.out)
    except KeyboardInterrupt as stop:
        print(f"\n{_stopped(stop)}: every finished seed is kept in {Path(args.out) / args.env}.seeds.json; "
              "the same command goes on from the next seed", file=sys.stderr)
        return _status(stop)
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
    train.add_argument("--executor", default="auto", choices=("auto", "lockstep", "serial", "process", "ray"),
                       help="where a round's inner runs run: auto = lockstep (stacked, in --workers "
                            "processes) for small CPU students, else serial; serial/process/ray give "
                            "equal results, lockstep equal in distribution (docs/scale.md)")
    train.add_argument("--workers", type=_positive("--workers"), default=min(2, os.cpu_count() or 1),
                       help="worker processes of lockstep (1: in this process; also the evaluation's "
                            "fresh students), process and ray")
    train.add_argument("--report-to", type=_report_to, default="csv,tensorboard", metavar="LIST",
                       help="where each round's row goes: csv, tensorboard, trackio (comma-separated; "
                            "none for none). trackio: a local project 'soar-env', `trackio show` opens it")
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="the paper's evaluation protocol on a trained run", formatter_class=fmt)
    ev.add_argument("run", help="run folder written by `soar-env train`")
    ev.add_argument("--seeds", type=_positive("--seeds", 0), nargs="+", default=[0, 1, 2],
                    help="student seeds")
    ev.add_argument("--variants", nargs="*", default=None,
                    help="subset of: Grounded-T/Intrinsic-T/Base-T/NAME-T, PQ, PS, Hard-Only, base")
    ev.add_argument("--eval-steps", type=_positive("--eval-steps"), default=None, help=steps_help)
    ev.add_argument("--workers", type=_positive("--workers"), default=min(2, os.cpu_count() or 1),
                    help="worker processes that train the fresh students (1: in this process)")
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
    bench.add_argument("--student-seeds", type=_positive("--student-seeds"), default=2,
                       help="fresh students per teacher seed (seeds S, S+1000, ...; the protocol: >= 2)")
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


def _quiet_model_bars() -> None:
    """transformers' own bars ("Loading weights", "Writing model shards") interleave with ours:
    off in this command, and in the worker processes it starts (they inherit the variable)."""
    if "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ:  # a user's own choice stands
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        from transformers.utils import logging

        logging.disable_progress_bar()  # in case transformers was imported already


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume command
    # SIGTERM (schedulers, `kill`) stops a command as Ctrl-C does, with its own status (143).
    handles = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if handles else None
    try:
        # Every setting is checked before anything heavy is imported or written.
        if args.command in ("train", "bench", "validate"):
            teacher = getattr(args, "teacher", "soar")
            args.settings = parse_settings(args.env, teacher, args.set)
        _quiet_model_bars()
        return args.func(args)
    except KeyboardInterrupt as stop:
        print(f"\n{_stopped(stop)}", file=sys.stderr)
        return _status(stop)
    except WriteError as error:  # a command without its own message for it (stones, hardset)
        if os.environ.get("SOAR_ENV_DEBUG"):
            raise
        print(f"soar-env {args.command}: error: {_refused_write(error)}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        if os.environ.get("SOAR_ENV_DEBUG"):
            raise
        # One line: the message says what to change (SOAR_ENV_DEBUG=1 shows the traceback).
        print(f"soar-env {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        if handles:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
