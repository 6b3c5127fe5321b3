"""Peak GPU memory of the paper's setting, from the code path's own tensors.

What one GPU holds for a student's inner runs (Llama-3.2-3B by default, 'bf16-mixed', the
KL reference on, s = 32 samples of up to 1024 new tokens), phase by phase:

- resident through an inner run: fp32 master weights (4 bytes a parameter), AdamW's two
  fp32 states (8), the KL reference's fp32 copy (4). Snapshots (base, baseline, runs)
  live in CPU memory, and the gradients are freed after each step (``soar_env.rl``);
- the update: the gradients (4), the bf16 weight copies autocast keeps for the backward
  pass (2; the frozen reference's are cast a layer at a time) and one pass of at most
  ``max_batch_tokens`` tokens (at least one prompt and one completion: a row is not split):
  activations, the logits in bf16 and fp32 and their log-softmax (the policy's and the
  reference's), the prompt's keys and values repeated for its rows. The activations are
  **measured**: ``soar_env.rl.policy_gradient_update`` runs on 1- and 2-layer models of the
  config's own layer shapes, at two pass sizes, under CPU autocast, every tensor counted
  (``TensorMeter``), giving the bytes a token a layer and a token besides; the update is
  then bounded from above by counting every per-parameter and per-token tensor as alive at
  once (``pass_bytes``). ``--check`` measures how loose the bound is on a 12-layer model of
  the same proportions;
- sampling with the HF backend: the bf16 weight copies (2) and a KV cache of
  ``max_batch_tokens`` tokens, or of one prompt's samples when more (they stay together),
  whose keys are fp32 under autocast (rotary embeddings multiply them by fp32 cos/sin) and
  values bf16: 6 bytes an element, not 4 (``tests/test_student_memory.py``);
- sampling with vLLM colocated (``student_backend='vllm'``, sleep mode on): the engine's
  whole share, ``gpu_memory_utilization`` x the card (its bf16 weights, activations and
  KV cache), mapped back at each wake-up; asleep during the update.

Headroom is the card minus the peak of the tensors counted here; the CUDA context
(about 0.5 GB), cuBLAS workspaces and the caching allocator's fragmentation come out of it,
so a plan should keep about 10% of the card. Cards are taken as 80e9 and 141e9 bytes (the
marketed sizes; the byte counts the drivers report are a little larger).

    python benchmarks/memory_plan.py                    # tables for README and docs/scale.md
    python benchmarks/memory_plan.py --check            # how loose the bound is on a measured model
    python benchmarks/memory_plan.py --config /models/M --max-batch-tokens 2048 8192
"""

from __future__ import annotations

import argparse
import json
import weakref
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

GB = 1e9
MEASURED = Path(__file__).resolve().parents[1] / "docs" / "results" / "memory_plan.json"


def llama_3_2_3b() -> LlamaConfig:
    return LlamaConfig(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                       num_attention_heads=24, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                       max_position_embeddings=131072)


class TensorMeter(TorchDispatchMode):
    """Bytes of the tensor storages created under it that are still alive, and their peak
    (in-place results and views of existing storages are not new memory)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[int] = set()

    def _free(self, key: int, size: int) -> None:
        self._seen.discard(key)
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if size and key not in self._seen and key not in inputs:
                self._seen.add(key)
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, key, size)
        return out


def small_model(config, layers: int, vocab: int):
    """The config's layer shapes with ``layers`` layers and a ``vocab``-token vocabulary."""
    small = config.__class__.from_dict({**config.to_dict(), "num_hidden_layers": layers, "vocab_size": vocab})
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(small, dtype=torch.float32)


def measure_update(config, layers: int, vocab: int, rows: int, prompt: int, completion: int) -> dict:
    """Bytes the second of two updates adds over what stays between them (AdamW's states):
    ``policy_gradient_update`` itself, bf16-mixed, with a KL reference, one pass of one prompt
    and ``rows`` completions."""
    from soar_env.lab import StudentLab
    from soar_env.rl import PolicyBatch, policy_gradient_update
    from soar_env.student.hf import HFStudent

    model = small_model(config, layers, vocab)
    student = HFStudent(model, SimpleNamespace(pad_token_id=0, eos_token_id=1, eos_token="</s>"),
                        compute_dtype=torch.bfloat16)
    reference = StudentLab(student, None, kl_reference=True).reference  # as the env makes it
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    generator = torch.Generator().manual_seed(0)
    batch = PolicyBatch(torch.randint(2, vocab, (1, prompt), generator=generator),
                        torch.ones(1, prompt, dtype=torch.long),
                        torch.randint(2, vocab, (rows, completion), generator=generator),
                        torch.ones(rows, completion, dtype=torch.long), rows,
                        torch.randn(rows, generator=generator))
    with TensorMeter() as meter:
        policy_gradient_update(student, optimizer, [batch], 1.0, reference=reference, kl_coef=0.001)
        between = meter.peak = meter.live
        policy_gradient_update(student, optimizer, [batch], 1.0, reference=reference, kl_coef=0.001)
    params = sum(p.numel() for p in model.parameters())
    return {"layers": layers, "vocab": vocab, "rows": rows, "prompt": prompt, "completion": completion,
            "params": params, "between_updates": between, "update": meter.peak - between}


def calibrate(config, rows: int = 4, prompt: int = 16, completions=(256, 512), vocab: int = 2000) -> dict:
    """Bytes of an update pass per token and per token-layer, from four measured updates (1
    and 2 layers of the config's own shapes, a ``vocab``-token vocabulary, two pass sizes),
    fitted as ``a + b L + c T + d L T``: ``d`` is a layer's activations per token, ``c`` the
    rest per token (embeddings, final norm, the small vocabulary's logits)."""
    runs = {(layers, completion): measure_update(config, layers, vocab, rows, prompt, completion)
            for layers in (1, 2) for completion in completions}
    t0, t1 = (rows * c + prompt for c in completions)
    u = {key: run["update"] for key, run in runs.items()}
    short, long = completions
    d = ((u[2, long] - u[1, long]) - (u[2, short] - u[1, short])) / (t1 - t0)
    c = (u[1, long] - u[1, short]) / (t1 - t0) - d
    return {"per_token": c, "per_layer_token": d, "vocab": vocab, "runs": list(runs.values())}


# What one update adds to the weights and AdamW's states, bounded from above: every
# per-parameter tensor at once (the gradients, 4 bytes; autocast's bf16 copies of the
# policy's weights, 2: the frozen reference's are cast a layer at a time, counted in its
# measured activations) and every per-token tensor at once: the measured activations,
# and the logits beyond the measured vocabulary at 16 bytes a token an entry (the policy's
# bf16 logits, their concatenation, fp32 copy and log-softmax: 12, all alive at its
# log-softmax; then its saved log-softmax, 4, beside the reference's 12).
PER_PARAM_BOUND = 4 + 2
LOGITS_BOUND = 12 + 4


def pass_bytes(config, coef: dict, tokens: int, params: int, kl: bool = True) -> float:
    """An upper bound of what one update adds: gradients, bf16 weight copies, and a pass of
    ``tokens`` tokens (activations, logits, the prompt's repeated cache). Without the KL
    reference its logits (12) are not there."""
    logits = LOGITS_BOUND if kl else LOGITS_BOUND - 4
    # The fit's per-token term can come out negative (the first layer adds less than the
    # second); a bound does not subtract it.
    per_token = (max(coef["per_token"], 0.0) + config.num_hidden_layers * coef["per_layer_token"]
                 + logits * (config.vocab_size - coef["vocab"]))
    return PER_PARAM_BOUND * params + tokens * per_token


def plan(config, coef: dict, max_batch_tokens: int, gpu_gb: float, vllm_share: float, prompt: int = 256,
         completion: int = 1024, kl: bool = True, samples: int = 32, hard_k: int = 128) -> dict[str, float]:
    """Each phase's peak (GB) for a student's inner runs on one GPU, bf16-mixed. The HF
    sampler keeps a prompt's samples together (its cache is repeated for them), so its chunk
    holds at least ``samples`` rows; the hard-set build (``hard_k`` samples a prompt) runs at
    reset, before AdamW's states exist."""
    with torch.device("meta"):
        params = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_element = config.num_hidden_layers * config.num_key_value_heads * head_dim
    weights, adam, reference = 4 * params, 8 * params, (4 * params if kl else 0)
    resident = weights + adam + reference
    tokens = max(max_batch_tokens, prompt + completion)  # a pass holds at least one row
    update = resident + pass_bytes(config, coef, tokens, params, kl)
    kv_token = kv_element * (4 + 2)  # fp32 keys, bf16 values under autocast
    hf_sampling = resident + 2 * params + max(max_batch_tokens, samples * (prompt + completion)) * kv_token
    hard_rows = max(max_batch_tokens, hard_k * (prompt + completion))
    hardset = weights + reference + 2 * params + hard_rows * kv_token
    vllm_sampling = resident + vllm_share * gpu_gb * GB
    return {"params_billion": params / 1e9, "resident_gb": resident / GB, "pass_tokens": tokens,
            "update_gb": update / GB, "hf_sampling_gb": hf_sampling / GB,
            "vllm_sampling_gb": vllm_sampling / GB,
            "hf_peak_gb": max(update, hf_sampling) / GB, "vllm_peak_gb": max(update, vllm_sampling) / GB,
            "hardset_hf_gb": hardset / GB, "teacher_gb": resident / GB}


def verdict(config, coef: dict, gpu: float, budgets, prompt: int, margin: float = 0.1) -> str:
    """One line: the largest ``max_batch_tokens`` (and vLLM share) that keeps ``margin`` of the
    card free with vLLM colocated, first with the KL reference, then without it."""
    for kl in (True, False):
        for share in (0.3, 0.25, 0.2):
            peaks = {t: plan(config, coef, t, gpu, share, prompt, kl=kl)["vllm_peak_gb"] for t in budgets}
            fitting = [t for t, peak in peaks.items() if peak <= gpu * (1 - margin)]
            if fitting:
                peak = peaks[max(fitting)]
                how = "with the KL reference" if kl else "only without the KL reference (rl.kl_coef=0)"
                return (f"- {gpu:.0f} GB, vLLM colocated: fits {how} at max_batch_tokens <= {max(fitting)}, "
                        f"gpu_memory_utilization {share}: peak {peak:.1f} GB, headroom {gpu - peak:.1f} GB "
                        f"({(gpu - peak) / gpu:.0%})")
    return f"- {gpu:.0f} GB, vLLM colocated: does not fit with {margin:.0%} headroom at any setting tried"


def scaled_llama(config, layers: int = 12, vocab: int = 32000, width: int = 768):
    """The config's proportions at ``width`` (head size kept), ``layers`` deep: a model whose
    activations outweigh its parameters as the full model's do, small enough to measure here."""
    factor = max(1, config.hidden_size // width)
    return config.__class__.from_dict({
        **config.to_dict(), "hidden_size": width, "intermediate_size": config.intermediate_size // factor,
        "num_attention_heads": max(1, config.num_attention_heads // factor),
        "num_key_value_heads": max(1, config.num_key_value_heads // factor),
        "num_hidden_layers": layers, "vocab_size": vocab})


def check(config, rows: int = 8, completion: int = 256, prompt: int = 16) -> dict:
    """The bound against a measured 12-layer model of the config's proportions (width 768,
    a 32000-token vocabulary), calibrated as the full model is."""
    deep = scaled_llama(config)
    coef = calibrate(deep)
    measured = measure_update(deep, deep.num_hidden_layers, deep.vocab_size, rows, prompt, completion)
    bound = pass_bytes(deep, coef, rows * completion + prompt, measured["params"])
    result = {"layers": deep.num_hidden_layers, "hidden": deep.hidden_size, "vocab": deep.vocab_size,
              "per_token": coef["per_token"], "per_layer_token": coef["per_layer_token"],
              "tokens": rows * completion + prompt, "measured_update_gb": measured["update"] / GB,
              "bound_gb": bound / GB, "bound_over_measured": bound / measured["update"] - 1}
    print(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a model folder or config.json (default: Llama-3.2-3B)")
    parser.add_argument("--max-batch-tokens", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--gpu-gb", type=float, nargs="+", default=[80.0, 141.0])
    parser.add_argument("--vllm-share", type=float, default=0.3, help="gpu_memory_utilization")
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--check", action="store_true", help="test the extension on a measured model")
    parser.add_argument("--remeasure", action="store_true", help=f"measure again (else read {MEASURED.name})")
    args = parser.parse_args()
    config = AutoConfig.from_pretrained(args.config) if args.config else llama_3_2_3b()
    if args.check:
        result = check(config)
        if MEASURED.exists() and not args.config:  # kept beside the measurements it qualifies
            saved = json.loads(MEASURED.read_text())
            MEASURED.write_text(json.dumps({**saved, "check": result}, indent=1) + "\n")
        return
    saved = json.loads(MEASURED.read_text()) if MEASURED.exists() and not args.config else None
    if saved is None or args.remeasure:
        coef = calibrate(config)
        if not args.config:
            MEASURED.write_text(json.dumps({"config": "Llama-3.2-3B layer shapes", "coefficients": coef,
                                            "per_seed": {"0": coef["runs"]}}, indent=1) + "\n")
    else:
        coef = saved["coefficients"]
    print(f"Measured per pass: {coef['per_layer_token'] / 1e3:.1f} kB a token a layer, "
          f"{coef['per_token'] / 1e3:.1f} kB a token besides; bound: {PER_PARAM_BOUND} B a parameter, "
          f"{LOGITS_BOUND} B a token a vocabulary entry\n")
    for gpu in args.gpu_gb:
        print(f"### One {gpu:.0f} GB GPU, a student's inner runs (vLLM share {args.vllm_share})\n")
        print("| max_batch_tokens | tokens a pass | update | sampling, HF | sampling, vLLM | peak, HF "
              "| headroom, HF | peak, vLLM | headroom, vLLM |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for tokens in args.max_batch_tokens:
            p = plan(config, coef, tokens, gpu, args.vllm_share, args.prompt_tokens)
            print(f"| {tokens} | {p['pass_tokens']} | {p['update_gb']:.1f} | {p['hf_sampling_gb']:.1f} "
                  f"| {p['vllm_sampling_gb']:.1f} | {p['hf_peak_gb']:.1f} | {gpu - p['hf_peak_gb']:.1f} "
                  f"| {p['vllm_peak_gb']:.1f} | {gpu - p['vllm_peak_gb']:.1f} |")
        print()
    for gpu in args.gpu_gb:
        print(verdict(config, coef, gpu, args.max_batch_tokens, args.prompt_tokens))
    p = plan(config, coef, args.max_batch_tokens[0], args.gpu_gb[0], args.vllm_share, args.prompt_tokens)
    print(f"\n{p['params_billion']:.2f}B parameters; resident {p['resident_gb']:.1f} GB (weights, AdamW, KL "
          f"reference); a SOAR teacher on the same GPU adds {p['teacher_gb']:.1f} GB; prompts of "
          f"{args.prompt_tokens} tokens, completions of 1024, 32 samples; the hard-set build at reset "
          f"(k=128, HF sampler) peaks at {p['hardset_hf_gb']:.1f} GB.")


if __name__ == "__main__":
    main()
