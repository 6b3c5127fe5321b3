"""Student backend on transformers: sampling, greedy decoding, log-probs, snapshots.

Sampling is a small KV-cached loop of our own rather than ``model.generate``: for the tiny
models of the CPU default, ``generate``'s per-token machinery costs more than the model,
and our loop draws from a ``torch.Generator`` so runs are reproducible without touching
the global RNG. Prompts are left-padded; position ids follow the attention mask, so any
decoder-only HF model works (Llama, Qwen, GPT-2 style).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from soar_env import threads


@dataclass
class Rollout:
    """Sampled completions, one row per sample, prompts repeated ``samples`` times.

    Shapes: ``prompt_ids``/``prompt_mask`` [B, P] (left-padded), ``completion_ids``/
    ``completion_mask`` [B, C] (right-padded; the mask covers the end token when emitted).
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    completion_ids: Tensor
    completion_mask: Tensor
    texts: list[str]
    samples: int

    @property
    def num_tokens(self) -> int:
        return int(self.completion_mask.sum())


def _load_local(path: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return (AutoModelForCausalLM.from_pretrained(path, dtype=dtype),
                AutoTokenizer.from_pretrained(path))
    except Exception as err:  # safetensors, OSError, ValueError...: one clear message
        if isinstance(err, OSError) and not any(path.glob("*.safetensors")) and not any(
            path.glob("*.bin")
        ):
            raise FileNotFoundError(f"No weights in {path}: expects model.safetensors") from err
        raise RuntimeError(
            f"Could not load the model in {path} ({type(err).__name__}: {str(err)[:200]}). "
            "The checkpoint is probably corrupted or incomplete: save it again with "
            "model.save_pretrained(folder) and tokenizer.save_pretrained(folder)."
        ) from err


def _load_hub(model_id: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from soar_env.hub import hub_reachable

    # The cache first; the network only when a one-second probe says the hub answers.
    attempts = [True, False] if hub_reachable() else [True]
    last: Exception | None = None
    for local_only in attempts:  # the cache first: no network round trip when cached
        try:
            return (AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype,
                                                         local_files_only=local_only),
                    AutoTokenizer.from_pretrained(model_id, local_files_only=local_only))
        except Exception as err:
            last = err
    raise FileNotFoundError(
        f"Could not load {model_id!r}: it is not in the local Hugging Face cache and the hub "
        f"could not be reached ({type(last).__name__}). Pass a local folder instead, e.g. "
        f"`hf download {model_id} --local-dir /models/NAME` on a machine with "
        "network, then student='/models/NAME'."
    ) from last


def _cache_of(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


PRECISIONS = ("fp32", "bf16-mixed", "bf16")
"""``from_pretrained`` precisions: fp32 weights and compute (the CPU default); fp32 master
weights with bf16 compute under autocast (the CUDA default: AdamW's small steps survive);
pure bf16 (half the weight memory; at lr 1e-5 most updates round away)."""


def _concat_rollouts(parts: list[Rollout], pad_id: int) -> Rollout:
    """Rollouts of consecutive prompt chunks as one (prompts left-padded, completions right)."""
    if len(parts) == 1:
        return parts[0]

    def stack(tensors: list[Tensor], fill: int, left: bool) -> Tensor:
        width = max(t.shape[1] for t in tensors)
        out = []
        for t in tensors:
            pad = t.new_full((t.shape[0], width - t.shape[1]), fill)
            out.append(torch.cat([pad, t] if left else [t, pad], dim=1))
        return torch.cat(out)

    return Rollout(
        stack([p.prompt_ids for p in parts], pad_id, left=True),
        stack([p.prompt_mask for p in parts], 0, left=True),
        stack([p.completion_ids for p in parts], pad_id, left=False),
        stack([p.completion_mask for p in parts], 0, left=False),
        [t for p in parts for t in p.texts], parts[0].samples,
    )


class HFStudent:
    """A causal LM and its tokenizer, with what the RL inner loop needs.

    Args:
        model: a ``transformers`` causal LM.
        tokenizer: its tokenizer; needs an end token and a pad token (the end token is
            used as pad when there is none).
        max_batch_tokens: the most tokens (rows x sequence length) one forward pass may
            hold: sampling runs prompt chunks under it, the RLOO update micro-batches under
            it (``soar_env.rl``), so activations and logits stay bounded for large students.
            None: no limit (the tiny CPU models; results then equal unchunked ones bit for
            bit; a limit changes the order of float sums, as another GPU would).
        compute_dtype: run forwards under ``torch.autocast`` in this dtype (bf16 compute on
            fp32 master weights); None: the weights' dtype.
    """

    def __init__(self, model, tokenizer, max_batch_tokens: int | None = None,
                 compute_dtype: torch.dtype | None = None):
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens expects >= 1 or None, actual {max_batch_tokens}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_tokens = max_batch_tokens
        self.compute_dtype = compute_dtype
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id
        if self.eos_id is None:
            raise ValueError("Expects a tokenizer with an eos_token, actual none")
        # transformers 5 renamed `past_key_values` to `cache`; accept either release line.
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str | None = None,
                        dtype: torch.dtype | None = None, precision: str | None = None,
                        max_batch_tokens: int | None = None) -> HFStudent:
        """Load a causal LM from a local folder or a hub id.

        ``precision`` (``PRECISIONS``): 'fp32' on CPU and 'bf16-mixed' on CUDA by default;
        ``dtype`` (older argument) sets the weights' dtype directly. ``max_batch_tokens``:
        see the class.

        A hub id is read from the local Hugging Face cache first; only when it is not
        cached (and ``HF_HUB_OFFLINE`` is not set) is the hub asked, and any failure
        there ends in one error that says how to pass a local folder instead.
        """
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        precision = precision or ("bf16-mixed" if device.startswith("cuda") else "fp32")
        if precision not in PRECISIONS:
            raise ValueError(f"precision expects one of {PRECISIONS}, actual {precision!r}")
        compute = torch.bfloat16 if precision == "bf16-mixed" else None
        dtype = dtype or (torch.bfloat16 if precision == "bf16" else torch.float32)
        path = Path(name_or_path)
        if path.exists() or str(name_or_path).startswith((".", "/", "~")):
            if not (path / "config.json").exists():
                raise FileNotFoundError(
                    f"No model at {path}: expects a folder with config.json and weights "
                    "(save one with model.save_pretrained(folder))."
                )
            model, tokenizer = _load_local(path, dtype)
        else:
            model, tokenizer = _load_hub(str(name_or_path), dtype)
        model.to(device)
        model.eval()
        return cls(model, tokenizer, max_batch_tokens=max_batch_tokens, compute_dtype=compute)

    def copy(self) -> HFStudent:
        """An independent copy (model, tokenizer, token budget and precision)."""
        return type(self)(deepcopy(self.model), self.tokenizer, self.max_batch_tokens, self.compute_dtype)

    def autocast(self):
        """The forward context: bf16 autocast on fp32 weights when mixed, else nothing."""
        if self.compute_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    def rows_per_pass(self, sequence_tokens: int) -> int | None:
        """How many sequences of ``sequence_tokens`` fit one pass (None: no limit)."""
        if self.max_batch_tokens is None:
            return None
        return max(1, self.max_batch_tokens // max(1, sequence_tokens))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- encoding -----------------------------------------------------------------
    def chat_prompt(self, text: str) -> str:
        """``text`` as one user turn in the tokenizer's chat template, ready for the reply.

        Tokenizers without a chat template (base models, the tiny chain model) get the
        text unchanged.
        """
        if not getattr(self.tokenizer, "chat_template", None):
            return text
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )

    def encode_prompts(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        # A rendered chat template already starts with the BOS token: add it only otherwise.
        bos = self.tokenizer.bos_token
        add_special = not (bos and prompts and all(p.startswith(bos) for p in prompts))
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True,
                             padding_side="left", add_special_tokens=add_special)
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def encode_completions(self, completions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Right-padded completion ids with the end token appended to each."""
        rows = [self.tokenizer(c, add_special_tokens=False)["input_ids"] + [self.eos_id]
                for c in completions]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids.to(self.device), mask.to(self.device)

    def decode(self, completion_ids: Tensor, completion_mask: Tensor) -> list[str]:
        texts = []
        for ids, mask in zip(completion_ids.tolist(), completion_mask.tolist()):
            kept = [t for t, m in zip(ids, mask) if m and t != self.eos_id]
            texts.append(self.tokenizer.decode(kept, skip_special_tokens=True))
        return texts

    # ---- generation ---------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        samples: int = 1,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        """``samples`` completions per prompt; ``temperature=0`` decodes greedily.

        The prompt is encoded once and its KV cache repeated for the samples; a sequence
        leaves the batch when it emits the end token, so each decoding step only pays for
        the sequences still running.
        """
        if temperature < 0:
            raise ValueError(f"temperature expects >= 0, actual {temperature}")
        if self.device.type == "cpu":
            threads.adapt()  # one thread while another process holds a core (soar_env.threads)
        # Under a token budget, prompt chunks run one after another (one generator stream).
        longest = max((len(self.tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts),
                      default=0) if self.max_batch_tokens is not None else 0
        per_pass = self.rows_per_pass((longest + max_new_tokens) * samples)
        if per_pass is None or per_pass >= len(prompts):
            with self.autocast():
                return self._sample(prompts, samples, max_new_tokens, temperature, generator)
        parts = []
        for i in range(0, len(prompts), per_pass):
            with self.autocast():
                parts.append(self._sample(prompts[i : i + per_pass], samples, max_new_tokens,
                                          temperature, generator))
        return _concat_rollouts(parts, self.pad_id)

    def _sample(self, prompts: Sequence[str], samples: int, max_new_tokens: int, temperature: float,
                generator: torch.Generator | None) -> Rollout:
        from soar_env.student.kv_cache import compacting  # loads transformers' cache classes

        unique_ids, unique_mask = self.encode_prompts(prompts)
        prompt_ids = unique_ids.repeat_interleave(samples, 0)
        prompt_mask = unique_mask.repeat_interleave(samples, 0)
        batch = prompt_ids.shape[0]
        was_training = self.model.training
        self.model.eval()
        position_ids = (unique_mask.cumsum(-1) - 1).clamp(min=0)
        # Without padding the mask is all ones: passing None lets attention skip it.
        padded = not bool(unique_mask.all())
        out = self.model(input_ids=unique_ids, attention_mask=unique_mask if padded else None,
                         position_ids=position_ids, use_cache=True)
        cache = _cache_of(out)
        if samples > 1:
            cache.batch_repeat_interleave(samples)
        compacting(cache)  # drops of finished rows ride on the next append's copy
        logits = out.logits[:, -1, :].repeat_interleave(samples, 0)
        mask = prompt_mask
        last_pos = position_ids[:, -1:].repeat_interleave(samples, 0)
        running = torch.arange(batch, device=self.device)  # batch rows still decoding
        completion_ids = torch.full((batch, max_new_tokens), self.pad_id, dtype=torch.long,
                                    device=self.device)
        completion_mask = torch.zeros_like(completion_ids)
        width = 0
        for step in range(max_new_tokens):
            if temperature == 0:
                token = logits.argmax(-1)
            else:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            completion_ids[running, step] = token
            completion_mask[running, step] = 1
            width = step + 1
            alive = token != self.eos_id
            if not bool(alive.any()) or step + 1 == max_new_tokens:
                break
            if not bool(alive.all()):
                keep = alive.nonzero().squeeze(-1)
                cache.batch_select_indices(keep)
                running, token, mask, last_pos = running[keep], token[keep], mask[keep], last_pos[keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            last_pos = last_pos + 1
            out = self.model(input_ids=token[:, None], attention_mask=mask if padded else None,
                             position_ids=last_pos, use_cache=True, **{self._cache_arg: cache})
            cache, logits = _cache_of(out), out.logits[:, -1, :]
        self.model.train(was_training)
        completion_ids = completion_ids[:, :width]
        completion_mask = completion_mask[:, :width]
        texts = self.decode(completion_ids, completion_mask)
        return Rollout(prompt_ids, prompt_mask, completion_ids, completion_mask, texts, samples)

    def greedy(self, prompts: Sequence[str], max_new_tokens: int = 64) -> list[str]:
        return self.sample(prompts, 1, max_new_tokens, temperature=0.0).texts

    # ---- scoring ------------------------------------------------------------------
    def token_logprobs(self, prompt_ids: Tensor, prompt_mask: Tensor,
                       completion_ids: Tensor, completion_mask: Tensor,
                       temperature: float = 1.0, samples: int = 1) -> Tensor:
        with self.autocast():
            return self._token_logprobs(prompt_ids, prompt_mask, completion_ids, completion_mask,
                                        temperature, samples)

    def _token_logprobs(self, prompt_ids: Tensor, prompt_mask: Tensor,
                        completion_ids: Tensor, completion_mask: Tensor,
                        temperature: float = 1.0, samples: int = 1) -> Tensor:
        """Log-prob of each completion token under the model, [B, C] (0 where masked).

        With ``samples > 1`` the prompts are the *unique* ones ([B / samples, P]) and row
        ``i`` of the completions belongs to prompt ``i // samples``: each prompt is encoded
        once and its KV cache shared by its samples (gradients flow through it). In RLOO
        the prompt is most of each sequence, so this is most of the update's compute.
        Runs with gradients when the caller has them enabled (the RL update).
        """
        if samples == 1:
            ids = torch.cat([prompt_ids, completion_ids], dim=1)
            mask = torch.cat([prompt_mask, completion_mask], dim=1)
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            # Right padding after the completion cannot affect earlier tokens under a causal
            # mask, so only left padding in the prompt needs the attention mask.
            attention = mask if not bool(prompt_mask.all()) else None
            logits = self.model(input_ids=ids, attention_mask=attention,
                                position_ids=position_ids).logits
            logits = logits[:, -completion_ids.shape[1] - 1 : -1, :]
        else:
            position_ids = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
            padded = not bool(prompt_mask.all())
            out = self.model(input_ids=prompt_ids, attention_mask=prompt_mask if padded else None,
                             position_ids=position_ids, use_cache=True)
            cache = _cache_of(out)
            cache.batch_repeat_interleave(samples)
            first = out.logits[:, -1:, :].repeat_interleave(samples, 0)
            mask = torch.cat([prompt_mask.repeat_interleave(samples, 0), completion_mask], dim=1)
            steps = torch.arange(1, completion_ids.shape[1] + 1, device=prompt_ids.device)
            positions = position_ids[:, -1:].repeat_interleave(samples, 0) + steps
            rest = self.model(input_ids=completion_ids, attention_mask=mask, position_ids=positions,
                              use_cache=True, **{self._cache_arg: cache}).logits
            logits = torch.cat([first, rest[:, :-1, :]], dim=1)
        logits = logits.float()
        if temperature not in (0, 1):
            logits = logits / temperature
        logp = torch.log_softmax(logits, dim=-1).gather(-1, completion_ids[..., None]).squeeze(-1)
        return logp * completion_mask

    @torch.no_grad()
    def answer_logprobs(self, prompts: Sequence[str], answers: Sequence[str],
                        batch_size: int = 256) -> Tensor:
        """log p(answer followed by the end token | prompt) at temperature 1, one per prompt.

        ``exp`` of it is the exact expected pass@1 of a problem graded by exact match.
        """
        if len(prompts) != len(answers):
            raise ValueError(f"Expects one answer per prompt, actual {len(answers)} for {len(prompts)}")
        was_training = self.model.training
        self.model.eval()
        if self.max_batch_tokens is not None:  # the longest prompt + answer bounds a row
            longest = max((len(self.tokenizer(p + a)["input_ids"]) + 1 for p, a in zip(prompts, answers)),
                          default=1)
            batch_size = min(batch_size, self.rows_per_pass(longest))
        out = []
        for i in range(0, len(prompts), batch_size):
            p_ids, p_mask = self.encode_prompts(prompts[i : i + batch_size])
            c_ids, c_mask = self.encode_completions(answers[i : i + batch_size])
            out.append(self.token_logprobs(p_ids, p_mask, c_ids, c_mask).sum(-1))
        self.model.train(was_training)
        return torch.cat(out) if out else torch.zeros(0)

    def exact_pass_at_1(self, prompts: Sequence[str], answers: Sequence[str]) -> Tensor:
        """Expected pass@1 of each problem under exact-match grading, without sampling."""
        return self.answer_logprobs(prompts, answers).exp()

    # ---- weights ------------------------------------------------------------------
    def snapshot(self) -> dict[str, Tensor]:
        """A detached copy of the weights in CPU memory (pinned when the model is on a GPU,
        so restoring is one fast copy): snapshots never take accelerator memory."""
        pin = self.device.type == "cuda"
        out = {}
        for k, v in self.model.state_dict().items():
            copy = v.detach().to("cpu", copy=True)
            out[k] = copy.pin_memory() if pin else copy
        return out

    @torch.no_grad()
    def restore(self, snapshot: dict[str, Tensor]) -> None:
        """Copy a snapshot back into the live weights in place (cheap: no allocation)."""
        state = self.model.state_dict()
        missing = set(state) - set(snapshot)
        if missing:
            raise ValueError(f"Snapshot does not match this model: missing {sorted(missing)[:3]}")
        for k, v in state.items():
            v.copy_(snapshot[k])

    def weights_hash(self) -> str:
        """A content hash of the weights, used to key caches (hard sets)."""
        import hashlib

        digest = hashlib.sha256()
        for k, v in sorted(self.model.state_dict().items()):
            digest.update(k.encode())
            digest.update(v.detach().float().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]
