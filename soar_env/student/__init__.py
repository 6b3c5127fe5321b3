"""Student backends: sample completions, score log-probs, train, snapshot and restore.

``hf`` (``HFStudent``) does everything with transformers; ``vllm`` (``VLLMStudent``) samples
with a colocated vLLM engine and trains the same transformers model (GPU only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soar_env.machine import BACKENDS
from soar_env.student.hf import HFStudent, Rollout


def load_student(name_or_path: str | Path, backend: str = "hf", **kwargs: Any) -> HFStudent:
    """A student from a local folder or hub id on ``backend`` (``BACKENDS``); ``kwargs`` go
    to its ``from_pretrained`` (device, precision, max_batch_tokens; vLLM options)."""
    if backend == "hf":
        return HFStudent.from_pretrained(name_or_path, **kwargs)
    if backend == "vllm":
        from soar_env.student.vllm_student import VLLMStudent

        return VLLMStudent.from_pretrained(name_or_path, **kwargs)
    raise ValueError(f"student_backend expects one of {BACKENDS}, actual {backend!r}")


__all__ = ["BACKENDS", "HFStudent", "Rollout", "load_student"]
