"""Why the sampler keeps a contiguous, shrinking KV cache (the two facts behind docs/scale.md).

1. Attention over *views* of a preallocated (static) cache is slower on CPU than over a
   contiguous cache of the same shape, by more than the copies a static cache saves.
2. A matmul's rows are not bitwise independent of how many rows it has: keeping finished rows
   in a fixed-size batch (what a static-shape sampler or ``torch.compile`` with static shapes
   needs) changes the live rows' logits in their last bits, so samples would change.

    python benchmarks/kv_layout.py
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def _time(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def attention(rows: int, heads: int, length: int, capacity: int, dim: int, repeats: int) -> dict:
    torch.manual_seed(0)
    query = torch.randn(rows, heads, 1, dim)
    buffers = [torch.randn(rows, heads, capacity, dim) for _ in range(2)]
    views = [b[:, :, :length] for b in buffers]  # a static cache's filled part
    contiguous = [v.contiguous() for v in views]  # what torch.cat growth hands attention
    same = torch.equal(F.scaled_dot_product_attention(query, *views),
                       F.scaled_dot_product_attention(query, *contiguous))
    times: dict[str, list[float]] = {"contiguous": [], "views": []}
    for _ in range(repeats):  # alternate, so both see the same machine
        times["contiguous"].append(_time(lambda: F.scaled_dot_product_attention(query, *contiguous), 20))
        times["views"].append(_time(lambda: F.scaled_dot_product_attention(query, *views), 20))
    copy = statistics.median(_time(lambda: torch.cat([contiguous[0], query], dim=2), 20) for _ in range(5))
    return {"equal": same, "copy_us": copy, **{k: statistics.median(v) for k, v in times.items()}}


def rows_independent(hidden: int, out: int, rows: int) -> list[int]:
    """Row counts whose product differs from the same rows of the full product."""
    torch.manual_seed(0)
    weight, x = torch.randn(out, hidden), torch.randn(rows, hidden)
    full = F.linear(x, weight)
    return [m for m in range(1, rows + 1) if not torch.equal(F.linear(x[:m], weight), full[:m])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="sampled rows (64 prompts x 8)")
    parser.add_argument("--length", type=int, default=80)
    parser.add_argument("--capacity", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    att = attention(args.rows, 4, args.length, args.capacity, 32, args.repeats)
    print(f"attention, {args.rows} rows x 4 heads, 1 query over {args.length} keys (tiny model shapes):")
    print(f"  contiguous keys: {att['contiguous']:.0f} us, views of a {args.capacity}-position buffer: "
          f"{att['views']:.0f} us ({att['views'] / att['contiguous']:.2f}x); results equal: {att['equal']}")
    print(f"  one append by torch.cat (the copy a static cache saves): {att['copy_us']:.0f} us")
    differ = rows_independent(128, 256, 256)
    print(f"matmul [m, 128] x [128, 256]: the first m rows of the 256-row product differ bitwise "
          f"for {len(differ)} of 256 row counts (e.g. m = {differ[:5]})")


if __name__ == "__main__":
    main()
