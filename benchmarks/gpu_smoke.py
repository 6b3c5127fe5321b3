"""One round of SOAR-MATH-v0 on a GPU with a config-built ~100M Llama: memory, tokens/s, s/step.

Nothing is downloaded: the student is a random Llama built from a config with a character
tokenizer (saved to ``--work``), the data a small MATH-format file written here. The
student's answers are noise, so every candidate is hard; the run exercises the machinery
(hard set, inner RLOO runs, grading with Math-Verify, promotion bookkeeping) at a size
where the GPU path's memory and speed show.

One command gives every GPU figure the README needs (a machine with one GPU):

    python benchmarks/gpu_smoke.py                      # every case this machine can run
    python benchmarks/gpu_smoke.py --device cuda:1      # another GPU (refused if absent)
    python benchmarks/gpu_smoke.py --device cpu --layers 2 --hidden 256   # a CPU dry run

The cases, each one JSON line (and all of them in ``--out``):
- ``hf``: the env's student samples and trains with transformers on the GPU;
- ``vllm``: sampling on a colocated vLLM engine (``pip install '.[vllm]'``);
- ``ray-vllm``: the env on the CPU, one Ray actor training on the GPU with its own engine
  (``pip install '.[ray,vllm]'``), the layout of a multi-GPU run.

Each case builds its hard set (a cache folder of its own, emptied first), so ``reset_seconds``
is a build with that sampler. Memory, in GB (1e9 bytes), from PyTorch's allocator on the
student's GPU: ``peak_sampling_gb`` over the sampling calls (with vLLM: its weights and the
KV cache it preallocates, ``vllm_kv_cache_gb``, when awake), ``peak_training_gb`` over the
rest (the update; vLLM asleep); ``device_peak_gb`` is the whole device's peak seen by
``cudaMemGetInfo`` (all processes, the CUDA context and allocator caches included).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import threading
import time
from pathlib import Path

GB = 1e9


def build_student(folder: Path, hidden: int, layers: int) -> Path:
    """A random Llama (character tokenizer, chat template) of about 100M parameters by default."""
    from soar_env.student.scratch import build_char_llama

    template = ("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
                "{% if add_generation_prompt %}\nAnswer: {% endif %}")
    return build_char_llama(folder, hidden, layers, heads=max(1, hidden // 64),
                            kv_heads=max(1, hidden // 256), chat_template=template,
                            intermediate_size=4 * hidden, max_positions=4096)


def write_problems(path: Path, count: int) -> Path:
    rng = random.Random(0)
    with path.open("w") as f:
        for _ in range(count):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            f.write(json.dumps({"problem": f"What is ${a} + {b}$?", "answer": str(a + b)}) + "\n")
    return path


def usable_device(name: str | None):
    """``name`` as a ``torch.device`` this machine has; exits with one line otherwise."""
    import torch

    try:
        device = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise SystemExit(f"--device {name}: expects cpu or cuda[:N]") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {name}: this machine has no CUDA device (torch {torch.__version__})")
        if (device.index or 0) >= torch.cuda.device_count():
            raise SystemExit(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", device.index or 0)
    if device.type != "cpu":
        raise SystemExit(f"--device {name}: expects cpu or cuda[:N]")
    return device


def cases(device, backend: str | None) -> list[str]:
    import importlib.util

    if backend:
        return [backend]
    if device.type != "cuda":
        return ["hf"]
    has = {name: importlib.util.find_spec(name) is not None for name in ("vllm", "ray")}
    return ["hf"] + (["vllm"] if has["vllm"] else []) + (["ray-vllm"] if has["vllm"] and has["ray"] else [])


class PhasePeaks:
    """Peak allocated memory inside the student's ``sample`` calls and outside them."""

    def __init__(self, torch, device, student):
        self.torch, self.device, self.sampling, self.training = torch, device, 0, 0
        sample = student.sample

        def measured(*args, **kwargs):
            self.training = max(self.training, torch.cuda.max_memory_allocated(device))
            torch.cuda.reset_peak_memory_stats(device)
            try:
                return sample(*args, **kwargs)
            finally:
                self.sampling = max(self.sampling, torch.cuda.max_memory_allocated(device))
                torch.cuda.reset_peak_memory_stats(device)

        student.sample = measured
        torch.cuda.reset_peak_memory_stats(device)

    def done(self) -> None:
        self.training = max(self.training, self.torch.cuda.max_memory_allocated(self.device))


class DevicePeak:
    """The device's lowest free memory (``cudaMemGetInfo``), polled every 20 ms."""

    def __init__(self, torch, device):
        self.torch, self.device, self.least, self._stop = torch, device, None, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            free, self.total = self.torch.cuda.mem_get_info(self.device)
            self.least = free if self.least is None else min(self.least, free)
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return (self.total - self.least) / GB


def kv_cache_gb(student) -> float | None:
    """The KV cache vLLM preallocated (v1/worker/gpu_worker.py, available_kv_cache_memory_bytes)."""
    llm = getattr(student, "llm", None)
    if llm is None:
        return None
    return llm.collective_rpc(lambda worker: worker.available_kv_cache_memory_bytes)[0] / GB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/gpu_smoke", help="folder for the model, data and caches")
    parser.add_argument("--out", default=None, help="results JSON (default: WORK/results.json)")
    parser.add_argument("--device", default=None, help="cuda[:N] (default when available) or cpu")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--max-batch-tokens", type=int, default=None)
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16-mixed", "bf16"))
    parser.add_argument("--backend", default=None, choices=("hf", "vllm", "ray-vllm"),
                        help="one case (default: every case this machine can run)")
    args = parser.parse_args()

    import torch

    from soar_env.config import RLOOConfig

    device = usable_device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    student = build_student(work / "student", args.hidden, args.layers)
    data = write_problems(work / "problems.jsonl", 128)
    rl = RLOOConfig(questions_per_step=8, samples_per_question=8, learning_rate=1e-5, kl_coef=0.001,
                    max_new_tokens=64)
    results = [run_round(torch, student, data, rl, args, device, case)
               for case in cases(device, args.backend)]
    out = Path(args.out) if args.out else work / "results.json"
    out.write_text(json.dumps({"cases": results, "per_seed": {"0": results}}, indent=1) + "\n")


def run_round(torch, student: Path, data: Path, rl, args, device, case: str) -> dict:
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_env.domains.math import load_problems

    cache = Path(args.work) / f"cache-{case}"  # the hard set is built with this case's sampler
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["SOAR_ENV_CACHE"] = str(cache)
    ray_case = case == "ray-vllm"
    extra = dict(executor="ray", num_workers=1) if ray_case else dict(device=str(device))
    env = gym.make("SOAR-MATH-v0", student=str(student), dataset=str(data), hard_candidates=64, hard_k=8,
                   reward_questions=32, dataset_size=16, group_size=2, inner_runs=2, inner_steps=2,
                   rounds=2, rl=rl, max_batch_tokens=args.max_batch_tokens, precision=args.precision,
                   student_backend="hf" if case == "hf" else "vllm", **extra)
    unwrapped = env.unwrapped
    cuda = device.type == "cuda" and not ray_case  # the env's own student on the GPU
    poll = DevicePeak(torch, device) if device.type == "cuda" else None
    phases = PhasePeaks(torch, device, unwrapped.student) if cuda else None
    start = time.perf_counter()
    env.reset(seed=0)
    reset_seconds = time.perf_counter() - start
    problems = load_problems(str(data))
    actions = [problems[:16], problems[16:32]]
    tokens_before = unwrapped.compute["sampled_tokens"]
    start = time.perf_counter()
    steps = unwrapped.step_round(actions)
    seconds = time.perf_counter() - start
    tokens = unwrapped.compute["sampled_tokens"] - tokens_before
    if phases:
        phases.done()
    params = sum(p.numel() for p in unwrapped.student.model.parameters())
    result = {
        "case": case,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "params_million": round(params / 1e6, 1),
        "precision": args.precision or ("bf16-mixed" if device.type == "cuda" else "fp32"),
        "max_batch_tokens": args.max_batch_tokens,
        "vllm_options": unwrapped.vllm_options,
        "reset_seconds": round(reset_seconds, 1),
        "sampled_tokens_per_second": round(tokens / seconds, 1),
        "seconds_per_step": round(seconds / len(actions), 2),
        "peak_sampling_gb": round(phases.sampling / GB, 2) if phases else None,
        "peak_training_gb": round(phases.training / GB, 2) if phases else None,
        "vllm_kv_cache_gb": round(kv, 2) if cuda and (kv := kv_cache_gb(unwrapped.student)) else None,
        "device_peak_gb": round(poll.stop(), 2) if poll else None,
        "rewards": [s[1] for s in steps],
    }
    if ray_case:
        import ray

        result["actor"] = ray.get(unwrapped._executor._actors[0].placement.remote())
    print(json.dumps(result))
    env.close()
    if ray_case:
        import ray

        ray.shutdown()
    return result


if __name__ == "__main__":
    main()
