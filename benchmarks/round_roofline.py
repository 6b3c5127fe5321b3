"""Where one lockstep grounded round's time goes, against its compute floor.

Runs one SOAR-Tiny round at the id's defaults (after a warm-up round) in this process with
the lockstep executor and counts the work it actually did:

- decoding: row-steps fed through the model (a row is one sample; finished rows of a live
  group still ride along), and prompt tokens encoded;
- the update: completion and prompt tokens of the passes (forward + backward, about 3x a
  forward's FLOPs);
- the reward: tokens scored for the exact measure.

FLOPs are ``2 x parameters`` per token and pass (the tiny model's attention is a few
percent on top and is left out, so the floor is a lower bound). The floor is FLOPs / the
machine's fp32 GEMM rate at these shapes (measured here, both cores). Seconds are split by
wrapping the trainer's methods.

    python benchmarks/round_roofline.py --inner-runs 1 --out docs/results/speed/roofline.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path


def gemm_rate(threads: int) -> float:
    """fp32 GFLOP/s of the stacked products at the tiny model's shapes (best of a few)."""
    import torch

    torch.set_num_threads(threads)
    a, w = torch.randn(4, 512, 128), torch.randn(4, 128, 384)
    for _ in range(5):
        torch.bmm(a, w)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            torch.bmm(a, w)
        best = min(best, (time.perf_counter() - start) / 20)
    return 2 * 4 * 512 * 128 * 384 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="SOAR-Tiny-v1")
    parser.add_argument("--inner-runs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import os

    os.environ.setdefault("SOAR_ENV_THREADS", str(args.threads))
    import gymnasium as gym

    import soar_env  # noqa: F401
    import soar_env.lockstep as lockstep
    import soar_env.student.stacked_decode as decode

    seconds: dict[str, float] = defaultdict(float)
    work: dict[str, int] = defaultdict(int)

    def timed(owner, name, key, count=None):
        original = getattr(owner, name)

        def wrapper(*a, **k):
            start = time.perf_counter()
            out = original(*a, **k)
            seconds[key] += time.perf_counter() - start
            if count:
                count(a, k, out)
            return out

        setattr(owner, name, wrapper)

    def count_step(a, k, out):
        work["decode row-steps"] += a[1].numel()

    def count_prompts(a, k, out):
        work["prompt tokens (sampling)"] += int(a[3].sum())  # (self, model, ids, mask, ...)

    def count_pass(a, k, out):
        self, done, adv, live, take, width, rows = a
        n = adv.shape[-1]
        work["update completion tokens"] += take.numel() * n * width
        work["update prompt tokens"] += int(done.prompt_mask[0, 0].sum()) * take.numel()

    timed(decode.Decoder, "step", "decode steps", count_step)
    timed(decode.Decoder, "__init__", "prefill and setup", count_prompts)
    timed(lockstep.LockstepRLOO, "_pass", "update passes", count_pass)
    timed(lockstep.LockstepRLOO, "complete", "sampling call (all)")
    timed(lockstep.LockstepRLOO, "exact_accuracy", "reward measure")
    timed(lockstep.StackedAdamW, "step", "AdamW")

    env = gym.make(args.env, executor="lockstep", inner_runs=args.inner_runs)
    env.reset(seed=0)
    u = env.unwrapped
    generator = u.domain.generator
    u.step_round([generator.problems(64, range(1, 21), seed=100 + i) for i in range(4)])
    seconds.clear()
    work.clear()
    start = time.perf_counter()
    u.step_round([generator.problems(64, range(1, 21), seed=i) for i in range(4)])
    total = time.perf_counter() - start
    params = sum(p.numel() for p in u.lab.student.model.parameters())
    per_token = 2 * params  # multiply-adds of one forward per token (tied embedding counted once)
    flops = {
        "decode": per_token * work["decode row-steps"],
        "prefill": per_token * work["prompt tokens (sampling)"],
        "update": 3 * per_token * (work["update completion tokens"] + work["update prompt tokens"]),
    }
    rate = gemm_rate(args.threads)
    floor = sum(flops.values()) / (rate * 1e9)
    result = {
        "env": args.env,
        "inner_runs": args.inner_runs,
        "threads": args.threads,
        "round_seconds": total,
        "seconds": dict(seconds),
        "work": dict(work),
        "gflop": {k: v / 1e9 for k, v in flops.items()},
        "gemm_gflops": rate,
        "floor_seconds": floor,
        "achieved_gflops": sum(flops.values()) / 1e9 / total,
    }
    print(json.dumps(result, indent=1))
    print(
        f"\n{args.env}, r = {args.inner_runs}: {total:.2f} s per round; "
        f"{sum(flops.values()) / 1e9:.0f} GFLOP "
        f"of model work, {result['achieved_gflops']:.0f} GFLOP/s achieved, GEMM rate {rate:.0f} GFLOP/s, "
        f"floor {floor:.2f} s ({total / floor:.1f}x above it)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    env.close()


if __name__ == "__main__":
    main()
