"""One round of SOAR-MATH-v0 on a GPU with a config-built ~100M Llama: memory, tokens/s, s/step.

Nothing is downloaded: the student is a random Llama built from a config with a character
tokenizer (saved to ``--work``), the data a small MATH-format file written here. The
student's answers are noise, so every candidate is hard; the run exercises the machinery
(hard set, inner RLOO runs, grading with Math-Verify, promotion bookkeeping) at a size
where the GPU path's memory and speed show.

    python benchmarks/gpu_smoke.py                      # CUDA when available
    python benchmarks/gpu_smoke.py --device cpu --layers 2 --hidden 256   # a CPU dry run
    python benchmarks/gpu_smoke.py --max-batch-tokens 4096 --precision bf16-mixed

Prints one JSON line: peak GPU memory (GB), sampled tokens per second, seconds per step.
``--backend vllm`` samples with vLLM (needs ``.[vllm]``); by default the HF backend runs,
and vLLM too when it is installed (one JSON line each).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/gpu_smoke", help="folder for the model and data")
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--max-batch-tokens", type=int, default=None)
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16-mixed", "bf16"))
    parser.add_argument("--backend", default=None, choices=("hf", "vllm"),
                        help="student backend (default: hf, then vllm when installed and on CUDA)")
    args = parser.parse_args()

    import gymnasium as gym
    import torch

    import soar_env  # noqa: F401
    from soar_env.config import RLOOConfig
    from soar_env.domains.math import load_problems

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    student = build_student(work / "student", args.hidden, args.layers)
    data = write_problems(work / "problems.jsonl", 128)
    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    if not cuda:
        import os

        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the env's student then stays on the CPU
    rl = RLOOConfig(questions_per_step=8, samples_per_question=8, learning_rate=1e-5, kl_coef=0.001,
                    max_new_tokens=64)
    import importlib.util

    backends = [args.backend] if args.backend else (
        ["hf", "vllm"] if cuda and importlib.util.find_spec("vllm") else ["hf"])
    for backend in backends:
        run_round(gym, torch, load_problems, student, data, rl, args, cuda, backend)


def run_round(gym, torch, load_problems, student, data, rl, args, cuda: bool, backend: str) -> None:
    env = gym.make("SOAR-MATH-v0", student=str(student), dataset=str(data), hard_candidates=64, hard_k=8,
                   reward_questions=32, dataset_size=16, group_size=2, inner_runs=2, inner_steps=2,
                   rounds=2, rl=rl, max_batch_tokens=args.max_batch_tokens, precision=args.precision,
                   student_backend=backend)
    start = time.perf_counter()
    env.reset(seed=0)
    reset_seconds = time.perf_counter() - start
    unwrapped = env.unwrapped
    problems = load_problems(str(data))
    actions = [problems[:16], problems[16:32]]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tokens_before = unwrapped.compute["sampled_tokens"]
    start = time.perf_counter()
    steps = unwrapped.step_round(actions)
    seconds = time.perf_counter() - start
    tokens = unwrapped.compute["sampled_tokens"] - tokens_before
    params = sum(p.numel() for p in unwrapped.student.model.parameters())
    print(json.dumps({
        "device": "cuda" if cuda else "cpu",
        "backend": backend,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "params_million": round(params / 1e6, 1),
        "precision": args.precision or ("bf16-mixed" if cuda else "fp32"),
        "max_batch_tokens": args.max_batch_tokens,
        "reset_seconds": round(reset_seconds, 1),
        "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
        "sampled_tokens_per_second": round(tokens / seconds, 1),
        "seconds_per_step": round(seconds / len(actions), 2),
        "rewards": [s[1] for s in steps],
    }))
    env.close()


if __name__ == "__main__":
    main()
