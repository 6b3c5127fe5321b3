"""Small random Llamas built from a config, with a character tokenizer: no download.

For tests, benchmarks and dry runs of the math ids where no model can be fetched: the
tokenizer knows printable ASCII and newline, so any MATH-style text encodes.
"""

from __future__ import annotations

from pathlib import Path


def build_char_llama(folder: str | Path, hidden_size: int, layers: int, heads: int, kv_heads: int,
                     chat_template: str, intermediate_size: int | None = None,
                     max_positions: int = 1024, seed: int = 0) -> Path:
    """A random ``LlamaForCausalLM`` and its character tokenizer, saved to ``folder``."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>")
    tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    ))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)
