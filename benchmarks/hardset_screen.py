"""Screen hard-set designs on SOAR-Tiny-v2's model before one is registered.

``benchmarks/oracle_spread.py`` showed that P1 fails on v2 because the oracle's held-out
pass@1 varies between fresh students (coefficient of variation 0.5-0.7), already after
the 64 curriculum steps. This builds alternative hard sets from the same model and keys
(no fail@k filter: every design here is solved about 1e-4 or less by the base student),
then trains the oracle curriculum and Hard-Only (no curriculum) under the id's evaluation
for student seeds that ``soar-env validate`` does not use (default 10-17), and reports
pass@1 and pass@32 at steps 64, 150 and 300 with the spread between students.

Designs (each chain's keys in a seeded order; ``o`` an ordinary step):
- ``attempt4``: the shipped hard set of v2 (4 keys in a row, 2 distinct, each twice);
- ``alt``: the same keys with an ordinary step before each (o k o k o k o k);
- ``one4alt``: one key four times, an ordinary step before each;
- ``one3alt``: one key three times, an ordinary step before each;
- ``one4alt6``: as ``one4alt`` with the hard set's keys restricted to the first 6 of
  ``KEYS`` (``*1 #1 @1 *2 #2 @2``); its oracle drills those 6 only (about 21 stones each
  instead of 11).

``--rows`` picks the curricula trained side by side (default: oracle and Hard-Only;
``off-target``, the trap-only curriculum, shows whether questions that teach nothing the
hard set needs still lift the students, as they did on SOAR-Tiny-v3).

    python benchmarks/hardset_screen.py one3alt --out docs/results/validity/screen/one3alt.json
"""

import argparse
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

DESIGNS = ("attempt4", "alt", "one4alt", "one3alt", "one4alt6")
ROWS = ("oracle", "Hard-Only", "off-target")
STEPS = (64, 150, 300)


REPEATS = {"one4alt": 4, "one3alt": 3, "one4alt6": 4}
"""The one-key designs: how often a hard problem's key repeats."""


def screen_domain(env, design: str):
    """v2's domain with the design's hard keys (``one4alt6``: the first 6; else all 12): the
    oracle, partial oracles and labels follow them (``ChainV2Domain.hard_keys``)."""
    from soar_env.domains.chain_v2 import KEYS

    return replace(env.domain, hard_keys=KEYS[:6] if design == "one4alt6" else KEYS)


def hard_set(env, design: str, seed: int = 0):
    """The design's 256 distinct chains, split 128 / 128 (D_train / D_test)."""
    from soar_env.hardset import HardSet

    if design == "attempt4":
        return env.hard_set
    dom = screen_domain(env, design)
    if design in REPEATS:  # the generator SOAR-Tiny-v3 and v4 ship (one3alt, one4alt6)
        problems = dom.repeated_key_chains(256, seed, REPEATS[design])
    else:
        problems = _alternating_two_key_chains(dom, 256, seed)
    return HardSet(problems[:128], problems[128:], {"screen": design})


def _alternating_two_key_chains(dom, count: int, seed: int):
    """``alt``: v2's keys (2 distinct, each twice, shuffled) with an ordinary step before each."""
    from soar_env.domains.chain import Chain
    from soar_env.domains.chain_v2 import KEYS, ORDINARY_OPS

    rng, seen = random.Random(seed), {}
    while len(seen) < count:
        keys = rng.sample(KEYS, 2) * 2
        rng.shuffle(keys)
        steps = []
        for k in keys:
            op = rng.choice(ORDINARY_OPS)
            steps += [(op, rng.choice(dom.arguments[op])), (k[0], int(k[1:]))]
        chain = Chain(rng.randrange(10), tuple(steps))
        seen.setdefault(dom.format_question(chain), chain)
    return [dom._problem(c) for c in seen.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("design", choices=DESIGNS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 18)))
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=["oracle", "Hard-Only"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import gymnasium as gym

    import soar_env
    from soar_env.evaluation import EvalConfig, evaluate_student, interval
    from soar_env.fresh_students import FreshRun, train_stacks

    env = gym.make("SOAR-Tiny-v2", executor="lockstep").unwrapped
    env.reset(seed=0)
    env.hard_set = hard_set(env, args.design)
    config, lab = EvalConfig.for_env(env), env.lab
    base = evaluate_student(env, 0, config)
    refs = screen_domain(env, args.design).validity
    make = {"oracle": lambda s: refs.oracle(128, s), "Hard-Only": lambda s: [],
            "off-target": lambda s: refs.off_target(128, s)}
    runs, names = [], []
    for name in args.rows:
        for s in args.seeds:
            runs.append(FreshRun(make[name](s), s))
            names.append(name)
    row_of = {id(run): name for run, name in zip(runs, names)}
    measured: dict = {}

    def measure(run, steps, weights):
        if steps in STEPS:
            lab.load(weights())
            measured[(row_of[id(run)], run.seed, steps)] = evaluate_student(env, run.seed, config)

    start = time.perf_counter()
    train_stacks(lab, list(env.hard_set.train), config.rl or env.config.rl, runs, config, True, measure)
    rows = []
    for name in args.rows:
        for step in STEPS:
            p1 = [measured[(name, s, step)][1] for s in args.seeds]
            p32 = [measured[(name, s, step)][32] for s in args.seeds]
            one = interval(p1)
            rows.append({"curriculum": name, "step": step,
                         "pass@1": {**one, "cv": one["sd"] / one["mean"] if one["mean"] else None,
                                    "per_seed": p1},
                         "pass@32": {**interval(p32), "per_seed": p32}})
            print(f"{name:9s} step {step:3d}  pass@1 {one['mean']:.3g} (cv {rows[-1]['pass@1']['cv']:.2f})  "
                  f"pass@32 {statistics.mean(p32):.3g}   " + " ".join(f"{v:.3g}" for v in p1))
    result = {
        "what": "oracle and Hard-Only fresh students on a candidate hard set of SOAR-Tiny-v2's model "
                "(benchmarks/hardset_screen.py)",
        "design": args.design, "curricula": args.rows, "version": soar_env.__version__, "seeds": args.seeds,
        "base_pass@1": base[1], "base_pass@32": base[32],
        "eval": {"mode": config.mode, "synthetic_steps": config.synthetic_steps,
                 "max_steps": config.max_steps},
        "rows": rows, "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"base student pass@1 {base[1]:.3g}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
