"""Peak GPU memory of the paper's setting, computed from the code's own limits.

The model is built on PyTorch's meta device (no memory, no download) from a config: by
default the architecture of Llama-3.2-3B (the paper's student and teacher), or a local
folder's config.json (``--config``). What the code keeps on the accelerator:

- the student: fp32 master weights, fp32 gradients and AdamW's two fp32 states under the
  default 'bf16-mixed' precision (16 bytes a parameter; 'bf16': 8);
- its KL reference (weights only), when ``rl.kl_coef > 0`` (the paper: 0.001);
- the SOAR teacher: another copy of the model with its own gradients and AdamW states;
- one forward pass of at most ``max_batch_tokens`` tokens: during the update, activations
  (about 34 bytes per token, hidden unit and layer in 16-bit, attention by SDPA) plus the
  logits (bf16, their fp32 copy and the log-softmax); during sampling, the KV cache
  (bf16). The two never coexist, so the larger one counts.

Snapshots (base, baseline, run and median students) live in CPU memory (``HFStudent.snapshot``).

    python benchmarks/memory_plan.py                 # markdown table for README
    python benchmarks/memory_plan.py --config /models/M --max-batch-tokens 8192 32768
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

GB = 1e9


def llama_3_2_3b() -> LlamaConfig:
    return LlamaConfig(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                       num_attention_heads=24, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                       max_position_embeddings=131072)


def plan(config, max_batch_tokens: int, precision: str = "bf16-mixed", kl: bool = True) -> dict[str, float]:
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    weight = 4 if precision == "bf16-mixed" else 2
    trained = params * weight * 4  # weights, gradients, two AdamW states (param dtype)
    reference = params * weight if kl else 0
    h, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    activations = 34 * max_batch_tokens * h * layers + max_batch_tokens * vocab * (2 + 4 + 4)
    kv_cache = max_batch_tokens * 2 * layers * config.num_key_value_heads * head_dim * 2
    forward = max(activations, kv_cache)
    return {
        "params_billion": params / 1e9,
        "student_gb": trained / GB,
        "reference_gb": reference / GB,
        "teacher_gb": trained / GB,
        "forward_gb": forward / GB,
        "one_gpu_gb": (trained * 2 + reference + forward) / GB,
        "worker_gb": (trained + reference + forward) / GB,  # inner runs on workers; the teacher elsewhere
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a model folder or config.json (default: Llama-3.2-3B)")
    parser.add_argument("--max-batch-tokens", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--precision", default="bf16-mixed", choices=("bf16-mixed", "bf16"))
    args = parser.parse_args()
    config = AutoConfig.from_pretrained(args.config) if args.config else llama_3_2_3b()
    print("| max_batch_tokens | student (weights, grads, AdamW) | KL reference | teacher | one forward "
          "| 1 GPU (student + teacher) | per worker (student only) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for tokens in args.max_batch_tokens:
        p = plan(config, tokens, args.precision)
        print(f"| {tokens} | {p['student_gb']:.1f} GB | {p['reference_gb']:.1f} GB "
              f"| {p['teacher_gb']:.1f} GB | {p['forward_gb']:.1f} GB | {p['one_gpu_gb']:.0f} GB "
              f"| {p['worker_gb']:.0f} GB |")
    print(f"\n{plan(config, 1)['params_billion']:.2f}B parameters, precision {args.precision}")


if __name__ == "__main__":
    main()
