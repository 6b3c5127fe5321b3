"""Student backend that samples with vLLM and trains with transformers (``student_backend='vllm'``).

The transformers model stays the one the RLOO update trains and scores (log-probs, exact
pass@1, snapshots, restores: all inherited from ``HFStudent``). A ``vllm.LLM`` in the same
process holds a second copy of the weights and does the sampling, which is most of a
large student's time. Before each sampling call the HF weights are pushed into the engine
in place when they changed since the last push, the way TRL's colocate mode does it
(``load_weights`` on the engine's model, then ``reset_prefix_cache``): vLLM never samples
from stale weights, and no caller has to remember to sync. A change is seen from the
parameters' in-place version counters, which every optimizer step and every ``restore``
bump, so an unchanged model is never copied twice.

The engine is built on the first sample, so everything but sampling (and this module's
import) works without vLLM: the CPU tests run the backend's contract through the same
code. Sampling needs a CUDA GPU and ``pip install 'soar-env[vllm]'``.

Seeds: each call draws one integer from the caller's ``torch.Generator`` and gives prompt
``i`` the vLLM request seed ``seed + i``, so a fixed generator gives fixed samples on one
engine build, though not the same samples as ``HFStudent`` (another sampler).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from soar_env.student.hf import HFStudent, Rollout

VLLM_HELP = ("student_backend='vllm' needs vLLM and a CUDA GPU: pip install 'soar-env[vllm]' "
             "(it pins vllm 0.32.0, built for torch 2.13.0); or use student_backend='hf'")


def rollout_from_token_ids(student: HFStudent, prompt_ids: Tensor, prompt_mask: Tensor,
                           completions: Sequence[Sequence[int]], samples: int) -> Rollout:
    """A ``Rollout`` from sampled token ids, laid out exactly as ``HFStudent.sample`` lays it out.

    ``prompt_ids``/``prompt_mask``: the unique prompts, left-padded [N, P]; ``completions``:
    ``N * samples`` token-id lists, prompt ``i``'s samples at rows ``i*samples ...``. A
    completion ends at its first end token (kept, and masked in, as the HF sampler does).
    """
    if len(completions) != prompt_ids.shape[0] * samples:
        raise ValueError(f"Expects {prompt_ids.shape[0] * samples} completions "
                         f"({prompt_ids.shape[0]} prompts x {samples}), actual {len(completions)}")
    rows = []
    for ids in completions:
        ids = list(ids)
        if student.eos_id in ids:
            ids = ids[: ids.index(student.eos_id) + 1]
        rows.append(ids)
    width = max((len(r) for r in rows), default=0)
    completion_ids = torch.full((len(rows), width), student.pad_id, dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        completion_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        completion_mask[i, : len(r)] = 1
    device = prompt_ids.device
    completion_ids, completion_mask = completion_ids.to(device), completion_mask.to(device)
    return Rollout(prompt_ids.repeat_interleave(samples, 0), prompt_mask.repeat_interleave(samples, 0),
                   completion_ids, completion_mask, student.decode(completion_ids, completion_mask),
                   samples)


class VLLMStudent(HFStudent):
    """``HFStudent`` whose ``sample`` runs on a colocated ``vllm.LLM`` (see the module docstring).

    Args:
        model, tokenizer, max_batch_tokens, compute_dtype: as ``HFStudent`` (the token budget
            bounds the updates; vLLM pages its own KV cache, so sampling needs none).
        model_path: the folder or hub id the engine loads its architecture (and first
            weights) from; the live weights are pushed over them before the first sample.
        gpu_memory_utilization: the share of the GPU vLLM may take (weights + KV cache); the
            rest is the training model's, its optimizer and activations.
        sleep: free vLLM's weights and KV cache between sampling calls (vLLM's sleep mode,
            level 2), so the update has the whole GPU; they are mapped back on the next call.
        engine_args: more ``vllm.LLM`` keyword arguments (e.g. ``max_model_len``).
    """

    def __init__(self, model, tokenizer, max_batch_tokens: int | None = None,
                 compute_dtype: torch.dtype | None = None, model_path: str | Path | None = None,
                 gpu_memory_utilization: float = 0.3, sleep: bool = False,
                 engine_args: dict[str, Any] | None = None):
        super().__init__(model, tokenizer, max_batch_tokens, compute_dtype)
        self.model_path = str(model_path or getattr(model, "name_or_path", "") or "")
        if not self.model_path:
            raise ValueError("VLLMStudent expects model_path= (the folder vLLM builds its engine from)")
        if not 0 < gpu_memory_utilization < 1:
            raise ValueError("gpu_memory_utilization expects a share in (0, 1), "
                             f"actual {gpu_memory_utilization}")
        self.gpu_memory_utilization = gpu_memory_utilization
        self.sleep = sleep
        self.engine_args = dict(engine_args or {})
        self.llm: Any = None
        self._pushed_version: int | None = None
        self.weight_pushes = 0

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str | None = None,
                        dtype: torch.dtype | None = None, precision: str | None = None,
                        max_batch_tokens: int | None = None, **vllm_options: Any) -> VLLMStudent:
        """``HFStudent.from_pretrained`` for the trained copy; ``vllm_options`` as the class.

        Refused at once (not at the first sample) without vLLM or a CUDA device."""
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise ImportError(VLLM_HELP)
        if not (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
            raise RuntimeError(f"{VLLM_HELP} (no CUDA device here)")
        hf = HFStudent.from_pretrained(name_or_path, device=device, dtype=dtype, precision=precision,
                                       max_batch_tokens=max_batch_tokens)
        return cls(hf.model, hf.tokenizer, hf.max_batch_tokens, hf.compute_dtype,
                   model_path=name_or_path, **vllm_options)

    def copy(self) -> HFStudent:
        """A plain ``HFStudent`` copy: copies (the KL reference) score, they never sample, so
        they must not start a second engine."""
        return HFStudent(deepcopy(self.model), self.tokenizer, self.max_batch_tokens, self.compute_dtype)

    # ---- weights -> engine --------------------------------------------------------------
    def weights_version(self) -> int:
        """A number that changes whenever any weight is changed in place (optimizer steps,
        ``restore``): the sum of the parameters' and buffers' autograd version counters."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return sum(t._version for t in tensors)

    def _engine(self):
        if self.llm is not None:
            return self.llm
        if self.device.type != "cuda":
            raise RuntimeError(f"{VLLM_HELP} (this student is on {self.device.type})")
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(VLLM_HELP) from err
        # One in-process engine, as TRL's colocate mode: the external launcher keeps vLLM's
        # workers in this process, where load_weights can reach the model.
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                           ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29517")):
            os.environ.setdefault(key, value)
        dtype = "bfloat16" if self.compute_dtype == torch.bfloat16 else str(
            next(self.model.parameters()).dtype).removeprefix("torch.")
        self.llm = LLM(model=self.model_path, tokenizer=self.model_path, dtype=dtype,
                       gpu_memory_utilization=self.gpu_memory_utilization,
                       enable_sleep_mode=self.sleep, distributed_executor_backend="external_launcher",
                       seed=0, **self.engine_args)
        self._pushed_version = None
        return self.llm

    @torch.no_grad()
    def sync_weights(self) -> bool:
        """Push the live weights into the engine when they changed since the last push
        (True when pushed)."""
        llm = self._engine()
        version = self.weights_version()
        if version == self._pushed_version:
            return False
        if self.sleep:
            llm.wake_up(tags=["weights"])
        target = llm.llm_engine.model_executor.driver_worker.model_runner.model
        for name, tensor in self.model.state_dict().items():
            target.load_weights([(name, tensor)])
        llm.reset_prefix_cache()  # cached prefixes were computed with the old weights
        self._pushed_version = version
        self.weight_pushes += 1
        return True

    # ---- sampling ---------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompts: Sequence[str], samples: int = 1, max_new_tokens: int = 64,
               temperature: float = 1.0, generator: torch.Generator | None = None) -> Rollout:
        """As ``HFStudent.sample``, drawn by vLLM (``temperature=0``: greedy)."""
        if temperature < 0:
            raise ValueError(f"temperature expects >= 0, actual {temperature}")
        self.sync_weights()  # builds the engine first: a clear error without vLLM or a GPU
        from vllm import SamplingParams

        if self.sleep:
            self.llm.wake_up(tags=["kv_cache"])
        prompt_ids, prompt_mask = self.encode_prompts(prompts)
        rows = [ids[mask.bool()].tolist() for ids, mask in zip(prompt_ids, prompt_mask)]
        seed = 0 if generator is None else int(
            torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        params = [SamplingParams(n=samples, temperature=temperature, max_tokens=max_new_tokens,
                                 seed=seed + i, stop_token_ids=[self.eos_id], skip_special_tokens=True)
                  for i in range(len(rows))]
        outputs = self.llm.generate([{"prompt_token_ids": r} for r in rows], sampling_params=params,
                                    use_tqdm=False)
        if self.sleep:
            self.llm.sleep(level=2)
            self._pushed_version = None  # level 2 drops the weights: push them again next time
        completions = []
        for output in outputs:
            for drawn in output.outputs:
                ids = list(drawn.token_ids)
                # A stop on the end token ends the completion with it, as in HFStudent.sample.
                if drawn.finish_reason == "stop" and (not ids or ids[-1] != self.eos_id):
                    ids.append(self.eos_id)
                completions.append(ids)
        return rollout_from_token_ids(self, prompt_ids, prompt_mask, completions, samples)
