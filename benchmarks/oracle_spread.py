"""Where an oracle's spread between fresh students comes from: its held-out pass@1 along
the evaluation, student by student.

``soar-env validate``'s P1 compares the oracle with Base-T by unpaired 95% intervals at
3 student seeds, so it fails when the oracle's level varies a lot between students (on
SOAR-Tiny-v2's attempt 4 its coefficient of variation was 0.64). This trains the oracle
curriculum of an id under the id's own evaluation for several student seeds in one stack
and measures exact held-out pass@1 at fixed steps, to see whether the spread arises on the
synthetic curriculum or later on D_train (``--curriculum off-target``: the same for the
trap-only curriculum). On SOAR-Tiny-v2 and v3 it also measures each key alone
(exact pass@1 of the 10 one-step chains ``d k``), to compare the students' isolated key
skill with what the hard set needs (keys in a row). Use seeds other than validate's 0-2, so that a
design chosen from these figures is still judged on seeds it has not seen.

    python benchmarks/oracle_spread.py --env SOAR-Tiny-v2 --seeds 10 11 12 13 14 15 16 17 \
        --out docs/results/validity/oracle_spread_v2.json
    python benchmarks/oracle_spread.py --env SOAR-Tiny-v3 --curriculum off-target --at 0 64 150 300 \
        --out docs/results/validity/off_target_spread_v3.json
"""

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="SOAR-Tiny-v2")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 18)))
    parser.add_argument("--at", type=int, nargs="+", default=[0, 16, 32, 64, 100, 150, 200, 250, 300])
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--curriculum", choices=("oracle", "off-target"), default="oracle",
                        help="which reference curriculum the students train on")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import gymnasium as gym

    import soar_env
    from soar_env.evaluation import EvalConfig, evaluate_student
    from soar_env.fresh_students import FreshRun, train_stacks

    env = gym.make(args.env, executor="lockstep").unwrapped
    env.reset(seed=0)
    config = EvalConfig.for_env(env)
    refs = env.domain.validity
    make = refs.oracle if args.curriculum == "oracle" else refs.off_target
    runs = [FreshRun(make(args.questions, seed), seed) for seed in args.seeds]
    curves = {seed: {} for seed in args.seeds}
    lab = env.lab
    base = lab.snapshot()

    from soar_env.domains.chain_v2 import ChainV2Domain

    probes = key_probes(env.domain) if isinstance(env.domain, ChainV2Domain) else {}
    keys = {seed: {} for seed in args.seeds}

    def key_skill() -> dict[str, float]:
        return {k: float(lab.student.exact_pass_at_1([lab.student_prompt(p.question) for p in ps],
                                                     [p.answer for p in ps]).mean())
                for k, ps in probes.items()}

    def measure(run, steps, weights):
        if steps in args.at:
            lab.load(weights())
            curves[run.seed][steps] = evaluate_student(env, run.seed, config)[1]
            if probes:
                keys[run.seed][steps] = key_skill()

    if 0 in args.at:
        for seed in args.seeds:
            curves[seed][0] = evaluate_student(env, seed, config)[1]
            if probes:
                keys[seed][0] = key_skill()
    start = time.perf_counter()
    train_stacks(lab, list(env.hard_set.train), config.rl or env.config.rl, runs, config, True, measure)
    lab.load(base)
    rows = []
    for at in args.at:
        values = [curves[s].get(at) for s in args.seeds]
        values = [v for v in values if v is not None]
        mean = statistics.mean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append({"step": at, "mean": mean, "sd": sd, "cv": sd / mean if mean else None,
                     "per_seed": values})
        if probes and at in keys[args.seeds[0]]:
            means = [statistics.mean(keys[s][at].values()) for s in args.seeds]
            rows[-1]["mean_key_skill"] = {"mean": statistics.mean(means), "per_seed": means,
                                          "cv": statistics.stdev(means) / statistics.mean(means)}
        cv = sd / mean if mean else float("nan")
        print(f"step {at:4d}  pass@1 mean {mean:.3g}  sd {sd:.3g}  cv {cv:.2f}  "
              + " ".join(f"{v:.3g}" for v in values))
    result = {
        "what": "exact held-out pass@1 of fresh students on a reference curriculum (\"curriculum\") "
                "along the id's evaluation (benchmarks/oracle_spread.py)",
        "env": args.env, "curriculum": args.curriculum, "version": soar_env.__version__, "seeds": args.seeds,
        "steps_taken": {r.seed: r.steps for r in runs}, "eval": {"mode": config.mode,
        "synthetic_steps": config.synthetic_steps, "max_steps": config.max_steps},
        "curve": rows, "per_seed": {str(s): curves[s] for s in args.seeds},
        "key_skill_per_seed": {str(s): keys[s] for s in args.seeds} if probes else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def key_probes(domain) -> dict:
    """SOAR-Tiny-v2: the ten one-step chains ``d k`` of each key ``k``."""
    from soar_env.domains.chain import Chain
    from soar_env.domains.chain_v2 import KEYS
    from soar_env.problems import Problem

    def one(start: int, key: str) -> Problem:
        chain = Chain(start, ((key[0], int(key[1:])),))
        return Problem(domain.format_question(chain), domain.answer(chain))

    return {k: [one(d, k) for d in range(10)] for k in KEYS}


if __name__ == "__main__":
    main()
