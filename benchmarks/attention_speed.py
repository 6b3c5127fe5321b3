"""One layer's attention of a lockstep update pass, forward and backward: the explicit
shared-prefix softmax (0.4.0's ``StackedLlama.continue_``) against torch's fused
``scaled_dot_product_attention`` (0.5.0's), at an update pass's shapes.

The default shapes are those of an evaluation late in training: 10 stacked students, 2
prompt groups a pass, 8 samples a group, 4 heads of 32, 39 completion and 44 prompt tokens,
some prompts left-padded. Both forms are run ``--repeats`` times, alternating; the outputs
must agree within float rounding, and each form's forward and gradients must be equal at 1
and 2 threads.

    python benchmarks/attention_speed.py --out docs/results/speed/attention_speed.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

NEG_INF = torch.finfo(torch.float32).min


def explicit(q, pk, pv, k, v, keys_ok):
    """0.4.0's form: scores against the shared prompt keys and the row's own keys, one softmax
    (as exp of x - logsumexp), two value products. q [S,G,H,n,C,hd]; k, v [S,G,n,H,C,hd];
    pk, pv [S,G,H,P,hd]; keys_ok [S,G,P]."""
    S, G, H, n, C, hd = q.shape
    P = pk.shape[-2]
    scale = 1 / math.sqrt(hd)
    bias = torch.zeros(keys_ok.shape).masked_fill_(~keys_ok, NEG_INF)
    shared = (q.reshape(S, G, H, n * C, hd) @ pk.transpose(-1, -2)) * scale
    shared = shared.view(S, G, H, n, C, P) + bias[:, :, None, None, None, :]
    causal = torch.zeros(C, C).masked_fill_(~torch.ones(C, C, dtype=torch.bool).tril(), NEG_INF)
    mine = (q.permute(0, 1, 3, 2, 4, 5) @ k.transpose(-1, -2)) * scale + causal
    scores = torch.cat([shared.permute(0, 1, 3, 2, 4, 5), mine], -1)
    probs = (scores - torch.logsumexp(scores, dim=-1, keepdim=True)).exp()
    to_prompt, to_own = probs.split([P, C], -1)
    att = to_prompt.permute(0, 1, 3, 2, 4, 5).reshape(S, G, H, n * C, P) @ pv
    return att.view(S, G, H, n, C, hd).permute(0, 1, 3, 2, 4, 5) + to_own @ v  # [S,G,n,H,C,hd]


def fused(q, pk, pv, k, v, keys_ok):
    """0.5.0's form: each row's keys are its group's prompt keys then its own, one fused call."""
    S, G, H, n, C, hd = q.shape
    P = pk.shape[-2]
    rows = S * G * n
    keys = torch.cat([pk[:, :, None].expand(S, G, n, H, P, hd), k], -2).reshape(rows, H, P + C, hd)
    values = torch.cat([pv[:, :, None].expand(S, G, n, H, P, hd), v], -2).reshape(rows, H, P + C, hd)
    causal = torch.ones(C, C, dtype=torch.bool).tril()
    allowed = torch.cat([keys_ok[:, :, None, None, :].expand(S, G, n, C, P), causal.expand(S, G, n, C, C)],
                        -1).reshape(rows, 1, C, P + C)
    out = F.scaled_dot_product_attention(q.permute(0, 1, 3, 2, 4, 5).reshape(rows, H, C, hd), keys, values,
                                         attn_mask=allowed)
    return out.view(S, G, n, H, C, hd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=7, default=[10, 2, 8, 4, 39, 44, 32],
                        metavar=("S", "G", "n", "H", "C", "P", "hd"))
    parser.add_argument("--calls", type=int, default=30, help="forward+backward calls per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    S, G, n, H, C, P, hd = args.shape
    g = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=g).requires_grad_(True)

    inputs = [tensor(S, G, H, n, C, hd), tensor(S, G, H, P, hd), tensor(S, G, H, P, hd),
              tensor(S, G, n, H, C, hd), tensor(S, G, n, H, C, hd)]
    keys_ok = torch.ones(S, G, P, dtype=torch.bool)
    keys_ok[:, 0, :5] = False  # left padding in every student's first group
    upstream = torch.randn(S, G, n, H, C, hd, generator=g)

    def run(form, threads=None):
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            for t in inputs:
                t.grad = None
            out = form(*inputs, keys_ok)
            (out * upstream).sum().backward()
            return [out.detach().clone()] + [t.grad.clone() for t in inputs]
        finally:
            torch.set_num_threads(before)

    agree = float((run(explicit)[0] - run(fused)[0]).abs().max())
    same_threads = {f.__name__: all(torch.equal(a, b) for a, b in zip(run(f, 1), run(f, 2)))
                    for f in (explicit, fused)}
    ms: dict[str, list[float]] = {"explicit": [], "fused": []}
    for _ in range(args.repeats):
        for form in (explicit, fused):
            start = time.perf_counter()
            for _ in range(args.calls):
                run(form)
            ms[form.__name__].append((time.perf_counter() - start) / args.calls * 1e3)
    median = {k: statistics.median(v) for k, v in ms.items()}
    print(f"attention of one layer, forward + backward, shape S,G,n,H,C,P,hd = {args.shape}, "
          f"{torch.get_num_threads()} threads\n")
    print("| form | ms a call (median) |\n|---|---:|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} |")
    print(f"\nfused is {median['explicit'] / median['fused']:.2f}x faster; outputs agree within {agree:.1e}; "
          f"equal at 1 and 2 threads: {same_threads}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "shape": dict(zip(["S", "G", "n", "H", "C", "P", "hd"], args.shape)),
            "threads": torch.get_num_threads(), "calls": args.calls, "repeats": args.repeats,
            "median_ms": median, "speedup": median["explicit"] / median["fused"],
            "max_abs_difference": agree, "equal_at_1_and_2_threads": same_threads,
            "per_seed": {"0": {"ms_per_repeat": ms, "note": "one input seed (0), every repeat"}},
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
