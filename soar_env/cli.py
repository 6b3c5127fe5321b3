"""Commands of soar_env alone: ``stones`` and ``hardset``.

``stones`` (the stepping-stone experiment on the embedded domain) and ``hardset`` (build an
env's fail@k hard set). ``add_commands`` adds them to a given argparse subparsers object:
the one ``soar-env`` command (``soar_agents.app.cli``) does, next to ``train``, ``eval`` and
``bench`` (they need the teachers, and ``soar_env`` never imports them).
``python -m soar_env.cli`` offers these two alone, without the teachers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from soar_env import DEFAULT_ENV


def _stones(args: argparse.Namespace) -> int:
    from soar_env.experiments.stepping_stones import (
        SteppingStoneConfig,
        markdown_report,
        plot,
        print_report,
        run,
    )

    config = SteppingStoneConfig(
        seeds=tuple(range(args.seeds)), long_steps=args.long_steps,
        inner_repeats=args.inner_repeats, hard_candidates=args.hard_candidates, k=args.k,
        model_path=args.model, variant=args.variant,
        conditions=tuple(args.conditions.split(",")) if args.conditions else None,
    )
    summary = run(config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, out / "stepping_stones.png")
    (out / "report.md").write_text(markdown_report(summary))
    print_report(summary)
    print(f"wrote {out / 'summary.json'}, {out / 'report.md'} and {out / 'stepping_stones.png'}")
    print(json.dumps(summary))
    return 0


def _hardset(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import soar_env  # noqa: F401  (registers the ids)

    overrides = {"hard_k": args.k, "hard_seed": args.seed}
    for name in ("student", "dataset", "hard_candidates"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    env = gym.make(args.env, **overrides)
    env.reset(seed=args.seed)  # builds the hard set (progress bar) or reads it from the cache
    hard_set = env.unwrapped.hard_set
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(hard_set.to_json())
    meta = hard_set.meta
    print(f"{args.env}: {meta['hard']} of {meta['candidates']} candidates failed all {meta['k']} "
          f"tries ({len(hard_set.train)} train / {len(hard_set.test)} test); wrote {out}")
    return 0


def add_commands(sub) -> None:
    """Add ``stones`` and ``hardset`` to ``sub``, an argparse subparsers object (the full
    ``soar-env`` command, ``soar_agents.app.cli``, adds train, eval and bench: they need the
    teachers)."""
    stones = sub.add_parser("stones", help="stepping-stone experiment on the embedded domain")
    stones.add_argument("--seeds", type=int, default=3, help="student seeds (default 3)")
    stones.add_argument("--long-steps", type=int, default=120, help="RLOO steps per long run")
    stones.add_argument("--inner-repeats", type=int, default=4,
                        help="inner-loop runs per seed and condition")
    stones.add_argument("--hard-candidates", type=int, default=256)
    stones.add_argument("-k", type=int, default=128, help="fail@k filter")
    stones.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    stones.add_argument("--variant", choices=("v0", "v1"), default="v0",
                        help="chain variant: v1 adds the off-target condition (SOAR-Tiny-v1)")
    stones.add_argument("--conditions", default=None,
                        help="comma-separated subset, e.g. good,off-target (default: all)")
    stones.add_argument("--out", default="runs/stepping_stones", help="output folder")
    stones.set_defaults(func=_stones)
    hardset = sub.add_parser("hardset", help="build (or read from cache) an env's fail@k hard set")
    hardset.add_argument("--env", default=DEFAULT_ENV, help="registered env id")
    hardset.add_argument("--student", default=None, help="model folder or hub id")
    hardset.add_argument("--dataset", default=None, help="math: MATH-format file or 'champ'")
    hardset.add_argument("-k", type=int, default=128, help="fail@k filter (default 128)")
    hardset.add_argument("--seed", type=int, default=0, help="split seed")
    hardset.add_argument("--hard-candidates", type=int, default=None)
    hardset.add_argument("--out", default="runs/hardset.json", help="where to write the JSON")
    hardset.set_defaults(func=_hardset)


def main(argv: list[str] | None = None) -> int:
    """``stones`` and ``hardset`` alone (``python -m soar_env.cli``), without the teachers."""
    # Not "soar-env": that name is the full command's (soar_agents.app.cli).
    parser = argparse.ArgumentParser(prog="python -m soar_env.cli",
                                     description="stones and hardset (the full command is soar-env)")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
