"""Student backend that samples with vLLM and trains with transformers (``student_backend='vllm'``).

The transformers model stays the one the RLOO update trains and scores (log-probs, exact
pass@1, snapshots, restores: all inherited from ``HFStudent``). A ``vllm.LLM`` in the same
process holds a second copy of the weights and does the sampling, which is most of a
large student's time. Before each sampling call the HF weights are pushed into the engine
in place when they changed since the last push, the way TRL's colocate mode does it
(``load_weights`` on the engine's model, reached by ``LLM.apply_model``, then
``reset_prefix_cache``): vLLM never samples
from stale weights, and no caller has to remember to sync. A change is seen from the
parameters' in-place version counters, which every optimizer step and every ``restore``
bump, so an unchanged model is never copied twice.

The engine is built on the first sample, so everything but sampling (and this module's
import) works without vLLM: the CPU tests run the backend's contract through the same
code. Sampling needs a CUDA GPU and ``pip install 'soar-env[vllm]'``.

Seeds: each call draws one integer from the caller's ``torch.Generator``. vLLM seeds sample
``j`` of a request with ``n > 1`` as ``seed + j`` (``vllm/v1/engine/parallel_sampling.py``,
``_get_child_sampling_params``), so prompt ``i`` of ``samples`` gets ``seed + i * samples``
(``request_seeds``): every sample of a call has its own stream. A fixed generator gives fixed
samples on one engine build, though not the same samples as ``HFStudent`` (another sampler).

What vLLM 0.32.0 does that this module relies on (file and function in the vllm wheel):
- the external launcher initialises ``torch.distributed`` from ``MASTER_ADDR``/``MASTER_PORT``
  (``v1/executor/uniproc_executor.py``, ``ExecutorWithExternalLauncher._distributed_args``)
  and puts the engine on ``cuda:LOCAL_RANK`` (``v1/worker/gpu_worker.py``, ``init_device``):
  each engine gets a free port and its student's device (``launcher_env``);
- a request stops on its stop ids and on the generation config's end ids, and the sampled
  stop id is kept in ``token_ids`` (``v1/core/sched/utils.py``, ``check_stop``;
  ``v1/engine/detokenizer.py``, ``update``): nothing is appended here;
- ``LLM.apply_model(fn)`` runs ``fn`` on the engine's model; under the external launcher it
  runs in this process, with no copy of the arguments (``entrypoints/llm.py``,
  ``v1/executor/uniproc_executor.py``, ``collective_rpc``; ``v1/worker/worker_base.py``);
- ``sleep(level=2)`` discards weights and KV cache and pauses the scheduler; ``wake_up``
  maps them back by tag and resumes once all are back (``v1/engine/core.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from soar_env.student.hf import HFStudent, Rollout

VLLM_HELP = ("student_backend='vllm' needs vLLM and a CUDA GPU: pip install 'soar-env[vllm]' "
             "(it pins vllm 0.32.0, built for torch 2.13.0); or use student_backend='hf'")


def rollout_from_token_ids(student: HFStudent, prompt_ids: Tensor, prompt_mask: Tensor,
                           completions: Sequence[Sequence[int]], samples: int,
                           end_ids: Iterable[int] | None = None) -> Rollout:
    """A ``Rollout`` from sampled token ids, laid out exactly as ``HFStudent.sample`` lays it out.

    ``prompt_ids``/``prompt_mask``: the unique prompts, left-padded [N, P]; ``completions``:
    ``N * samples`` token-id lists, prompt ``i``'s samples at rows ``i*samples ...``. A
    completion ends at its first end token (``end_ids``, default the tokenizer's), kept and
    masked in, as the HF sampler does; a completion without one is used as drawn: no end
    token is ever added, since the update scores every masked-in token as sampled.
    """
    if len(completions) != prompt_ids.shape[0] * samples:
        raise ValueError(f"Expects {prompt_ids.shape[0] * samples} completions "
                         f"({prompt_ids.shape[0]} prompts x {samples}), actual {len(completions)}")
    ends = set(end_ids) if end_ids is not None else {student.eos_id}
    rows = []
    for ids in completions:
        ids = list(ids)
        stop = next((i for i, t in enumerate(ids) if t in ends), None)
        rows.append(ids if stop is None else ids[: stop + 1])
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


def request_seeds(seed: int, prompts: int, samples: int) -> list[int]:
    """The request seed of each prompt: vLLM seeds its ``samples`` children ``seed + j``, so
    prompt ``i`` starts at ``seed + i * samples`` and no two samples of a call share a stream."""
    return [seed + i * samples for i in range(prompts)]


def end_token_ids(student: HFStudent) -> list[int]:
    """The ids that end a completion: the tokenizer's end token and the generation config's
    (Llama-3 Instruct has several), as vLLM stops on both."""
    ends = {student.eos_id}
    for config in (getattr(student.model, "generation_config", None), getattr(student.model, "config", None)):
        found = getattr(config, "eos_token_id", None)
        ends.update([found] if isinstance(found, int) else (found or []))
    return sorted(ends)


def completions_from_outputs(outputs: Sequence[Any]) -> list[list[int]]:
    """The sampled ids of vLLM ``RequestOutput``s, prompt by prompt, sample by sample, as
    drawn: a stop on an end token already keeps that token (nothing is appended)."""
    return [list(drawn.token_ids) for output in outputs for drawn in output.outputs]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the OS picks it), as TRL picks its rendezvous port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def launcher_env(device: torch.device) -> dict[str, str]:
    """The variables vLLM's external launcher reads to build a one-process engine: rank 0 of 1,
    on ``device`` (``cuda:LOCAL_RANK``), with a rendezvous port of its own (a fixed port would
    collide with any other engine on the node: the driver's and each Ray actor's)."""
    return {"RANK": "0", "LOCAL_RANK": str(device.index or 0), "WORLD_SIZE": "1",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}


@contextlib.contextmanager
def scoped_environ(values: dict[str, str]):
    """``os.environ`` with ``values`` set, restored after (nothing leaks to later processes)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def configure_engine(student: HFStudent, prompt: Any, max_question_chars: int, max_new_tokens: int,
                     overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The engine's options for an env: defaults derived from its config, then ``overrides``;
    set on ``student`` when it is a ``VLLMStudent`` (not when Ray actors sample for it).

    - ``max_model_len``: the longest prompt the env can send (its prompt template around a
      question of ``max_question_chars`` characters, counted as 4 tokens a character: a
      UTF-8 byte is at most one token) plus ``max_new_tokens``, capped by the model's
      context. vLLM's default is the model's whole context (131072 at Llama-3.2): its KV
      cache for one sequence alone is 15 GB at 3B, more than a colocated engine's share.
    - ``max_num_batched_tokens``: 4096, as TRL's colocate mode sets it (vLLM's profiler
      otherwise sizes its activations for 16384 tokens on an H100).
    - ``sleep``: on; the engine always shares its GPU with the training copy, which needs
      the memory during the update.
    - ``gpu_memory_utilization``: 0.3 (``VLLMStudent``); see ``benchmarks/memory_plan.py``.
    """
    template = len(student.tokenizer(prompt(""), add_special_tokens=True)["input_ids"])
    longest = template + 4 * max_question_chars + max_new_tokens
    context = getattr(student.model.config, "max_position_embeddings", None) or longest
    options: dict[str, Any] = {"max_model_len": min(longest, context), "sleep": True,
                               "max_num_batched_tokens": 4096, "gpu_memory_utilization": 0.3,
                               **(overrides or {})}
    if isinstance(student, VLLMStudent):
        student.configure(**options)
    return options


class VLLMStudent(HFStudent):
    """``HFStudent`` whose ``sample`` runs on a colocated ``vllm.LLM`` (see the module docstring).

    Args:
        model, tokenizer, max_batch_tokens, compute_dtype: as ``HFStudent`` (the token budget
            bounds the updates; vLLM pages its own KV cache, so sampling needs none).
        model_path: the folder or hub id the engine loads its architecture (and first
            weights) from; the live weights are pushed over them before the first sample.
        gpu_memory_utilization: the share of the whole GPU vLLM takes (weights, activations,
            KV cache); it must be free when the engine starts and each time it wakes up.
        sleep: free vLLM's weights and KV cache after each sampling call (vLLM's sleep mode,
            level 2), so the update has the memory; they are mapped back, and the weights
            pushed again, on the next call. On by default: the engine shares its GPU.
        engine_args, **more: more ``vllm.LLM`` keyword arguments (e.g. ``max_model_len``).
    """

    def __init__(self, model, tokenizer, max_batch_tokens: int | None = None,
                 compute_dtype: torch.dtype | None = None, model_path: str | Path | None = None,
                 gpu_memory_utilization: float = 0.3, sleep: bool = True,
                 engine_args: dict[str, Any] | None = None, **more: Any):
        super().__init__(model, tokenizer, max_batch_tokens, compute_dtype)
        self.model_path = str(model_path or getattr(model, "name_or_path", "") or "")
        if not self.model_path:
            raise ValueError("VLLMStudent expects model_path= (the folder vLLM builds its engine from)")
        if not 0 < gpu_memory_utilization < 1:
            raise ValueError("gpu_memory_utilization expects a share in (0, 1), "
                             f"actual {gpu_memory_utilization}")
        self.gpu_memory_utilization = gpu_memory_utilization
        self.sleep = sleep
        self.engine_args = {**(engine_args or {}), **more}
        self.end_ids = end_token_ids(self)
        self.llm: Any = None
        self._asleep: set[str] = set()  # the engine's memory tags now released
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

    def configure(self, **options: Any) -> None:
        """Set engine options (as the constructor's) before the engine is built."""
        if self.llm is not None:
            raise RuntimeError("The vLLM engine is already built: set its options before the first sample")
        share = options.pop("gpu_memory_utilization", self.gpu_memory_utilization)
        if not 0 < share < 1:
            raise ValueError(f"gpu_memory_utilization expects a share in (0, 1), actual {share}")
        self.gpu_memory_utilization = share
        self.sleep = options.pop("sleep", self.sleep)
        self.engine_args.update(options.pop("engine_args", None) or {}, **options)

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
        # workers in this process, where apply_model reaches the model.
        dtype = "bfloat16" if self.compute_dtype == torch.bfloat16 else str(
            next(self.model.parameters()).dtype).removeprefix("torch.")
        with scoped_environ(launcher_env(self.device)):
            self.llm = LLM(model=self.model_path, tokenizer=self.model_path, dtype=dtype,
                           gpu_memory_utilization=self.gpu_memory_utilization,
                           enable_sleep_mode=self.sleep, distributed_executor_backend="external_launcher",
                           seed=0, **self.engine_args)
        self._asleep, self._pushed_version = set(), None
        return self.llm

    def _wake(self, tag: str) -> None:
        """Map one of the engine's memory tags back after a sleep. The update's cached
        blocks are returned to the GPU first, as TRL does (``empty_cache`` before
        ``wake_up``): the caching allocator would otherwise keep what vLLM needs."""
        if tag in self._asleep:
            torch.cuda.empty_cache()
            self.llm.wake_up(tags=[tag])
            self._asleep.discard(tag)

    def _fall_asleep(self) -> None:
        if self.sleep:
            self.llm.sleep(level=2)
            self._asleep = {"weights", "kv_cache"}
            self._pushed_version = None  # level 2 drops the weights: push them again next time

    @torch.no_grad()
    def sync_weights(self) -> bool:
        """Push the live weights into the engine when they changed since the last push
        (True when pushed)."""
        llm = self._engine()
        version = self.weights_version()
        if version == self._pushed_version:
            return False
        self._wake("weights")
        weights = self.model.state_dict()
        # vLLM's public path to its model (the same load_weights TRL calls through
        # driver_worker.model_runner.model); returns nothing large.

        def push(model) -> None:
            model.load_weights(iter(weights.items()))

        llm.apply_model(push)
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

        prompt_ids, prompt_mask = self.encode_prompts(prompts)
        rows = [ids[mask.bool()].tolist() for ids, mask in zip(prompt_ids, prompt_mask)]
        limit = self.llm.model_config.max_model_len  # vllm entrypoints/llm.py, LLM.__init__
        too_long = max((len(r) for r in rows), default=0)
        if too_long >= limit:
            raise ValueError(f"A student prompt of {too_long} tokens does not fit the vLLM engine's "
                             f"max_model_len={limit}: pass vllm_options={{'max_model_len': "
                             f"{too_long + max_new_tokens}}} to gym.make")
        seed = 0 if generator is None else int(
            torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        params = [SamplingParams(n=samples, temperature=temperature, max_tokens=max_new_tokens,
                                 seed=s, stop_token_ids=self.end_ids, skip_special_tokens=True)
                  for s in request_seeds(seed, len(rows), samples)]
        self._wake("kv_cache")
        try:
            outputs = self.llm.generate([{"prompt_token_ids": r} for r in rows], sampling_params=params,
                                        use_tqdm=False)
        finally:
            self._fall_asleep()
        return rollout_from_token_ids(self, prompt_ids, prompt_mask, completions_from_outputs(outputs),
                                      samples, self.end_ids)
