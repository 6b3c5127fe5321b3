"""Signal to noise of the grounded reward at r = 1 and r = 4 inner runs per dataset.

The paper averages r = 4 inner runs per dataset to cut the reward's variance. This runs the
validity probe P7 (``soar-env validate``) at each r: rounds of (oracle, oracle, Base-T,
Base-T) datasets stepped through the env from the same reset, so the repeats give one
dataset's noise sd and the pairs the oracle-minus-Base-T gap. SNR = gap / sd; the time per
round says what the extra runs cost.

    python benchmarks/reward_snr.py --env SOAR-Tiny-v2 --rounds 8 --out docs/results/reward_snr_v2.json
"""

import argparse
import json
import time
from pathlib import Path

import soar_env
from soar_agents.app.validate import make_env, noise_probe, untrained_teacher_pool
from soar_agents.app.validity_report import p7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="SOAR-Tiny-v2")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--inner-runs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"env": args.env, "version": soar_env.__version__, "rounds": args.rounds, "per_r": {}}
    for r in args.inner_runs:
        env = make_env(args.env, {"inner_runs": r})
        pool = untrained_teacher_pool(env, 1024, seed=0)
        started = time.perf_counter()
        probe = noise_probe(env, pool, args.rounds)
        seconds = time.perf_counter() - started
        env.close()
        criterion = p7({"P7": probe})
        result["per_r"][str(r)] = {
            "figure": criterion["figure"], "pass": criterion["pass"],
            "seconds_per_round": round(seconds / args.rounds, 2),
            "per_seed": {"layout": probe["layout"], "reward": probe["reward"]},
        }
        print(f"r = {r}: {criterion['figure']}; {seconds / args.rounds:.1f} s a round", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
