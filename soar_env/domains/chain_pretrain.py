"""Pretrain the embedded tiny chain model from scratch (the CPU default student and teacher).

The shipped weights in ``soar_env/assets/tiny-chain`` were produced by::

    python -m soar_env.domains.chain_pretrain --out soar_env/assets/tiny-chain

and SOAR-Tiny-v1's (the same recipe on the domain with an off-target family) by::

    python -m soar_env.domains.chain_pretrain --variant v1 --out soar_env/assets/tiny-chain-v1

and SOAR-Tiny-v2's (keys and traps; docs/embedded-domain.md) by::

    python -m soar_env.domains.chain_pretrain --variant v2 --steps 4000 --out soar_env/assets/tiny-chain-v2

Deterministic for a seed on CPU. The model is a plain ``LlamaForCausalLM`` (RoPE, tied
embeddings) with a character-level ``PreTrainedTokenizerFast``, so both load with the
usual ``from_pretrained`` calls from a local folder.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

from soar_env.domains.chain import ALPHABET, ChainDomain, v1_domain
from soar_env.domains.chain_v2 import v2_domain

PAD, EOS = "<pad>", "<eos>"
VARIANTS = {"v0": ChainDomain, "v1": v1_domain, "v2": v2_domain}
"""Domain of each shipped model variant."""


def build_tokenizer(alphabet: str = ALPHABET):
    """A character-level fast tokenizer over the domain's alphabet."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, EOS: 1, **{ch: i + 2 for i, ch in enumerate(alphabet)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, padding_side="left"
    )


def build_model(vocab_size: int, hidden: int = 128, layers: int = 2, heads: int = 4,
                max_positions: int = 128):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return LlamaForCausalLM(config)


def pretrain(
    out_dir: str | Path,
    steps: int = 2500,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    hidden: int = 128,
    layers: int = 2,
    domain: ChainDomain | None = None,
    progress: bool = True,
) -> dict:
    """Train the chain model on a noisy-writer corpus and save it to ``out_dir``.

    Returns the training summary (also written to ``out_dir/pretrain.json``).
    """
    import torch
    from tqdm.auto import tqdm

    domain = domain or ChainDomain()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = build_tokenizer(domain.alphabet)
    model = build_model(len(tokenizer), hidden=hidden, layers=layers)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    start, losses = time.time(), []
    bar = tqdm(range(steps), desc="pretrain tiny chain model", disable=not progress)
    for _ in bar:
        lines = [domain.pretraining_line(rng) + EOS for _ in range(batch_size)]
        batch = tokenizer(lines, return_tensors="pt", padding=True, padding_side="right")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    summary = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "hidden": hidden,
        "layers": layers,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        "seconds": round(time.time() - start, 1),
        "domain": {"max_len": domain.max_len, "writer_accuracy": domain.writer_accuracy},
    }
    if domain.off_target:  # v1 only: v0's summary keeps its keys
        summary["domain"].update(name=domain.name, off_target=list(domain.off_target),
                                 off_target_share=domain.off_target_share)
    (out / "pretrain.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the model and tokenizer")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="v0",
                        help="domain variant: v0 (SOAR-Tiny-v0), v1 (with off-target chains) or v2 "
                             "(keys and traps)")
    args = parser.parse_args(argv)
    summary = pretrain(args.out, args.steps, args.batch_size, args.lr, args.seed,
                       args.hidden, args.layers, domain=VARIANTS[args.variant]())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
