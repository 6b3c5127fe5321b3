"""``Machine``: where an env's work runs and how, never what it computes.

The algorithm's settings are ``SoarConfig``'s (recorded with every run); these are the
machine's, and a resumed run may change them. ``gym.make`` takes them as keywords or as one
object, the same either way::

    gym.make("SOAR-Tiny-v1", executor="lockstep", num_workers=2)
    gym.make("SOAR-Tiny-v1", machine=Machine(executor="lockstep", num_workers=2))

Results do not depend on them, with two documented exceptions: ``lockstep`` equals
``serial`` in distribution, not bit for bit (``soar_env.executors``), and precision and
backend change float rounding. ``env.unwrapped.machine`` is the one an env runs on, its
device decided (``place``). A leaf module: the lab, the executors and the students read it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields, replace
from typing import Any

EXECUTORS = ("auto", "serial", "lockstep", "process", "ray")
BACKENDS = ("hf", "vllm")

SPAWN_NEEDS = ("worker processes start by spawn, which runs the main script again in each: it needs "
               "a script file with its work under `if __name__ == '__main__':` (or use executor='serial', "
               "or 'lockstep' without num_workers)")


def main_script_error() -> str | None:
    """Why spawned workers could not run this process's main script again, or None."""
    import multiprocessing.process

    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):  # ``python -m``: imported by name
        return None
    path = getattr(main, "__file__", None)  # none: interactive, ``python -c``, notebooks
    if path is None or os.path.isfile(os.path.join(multiprocessing.process.ORIGINAL_DIR or "", path)):
        return None
    return f"the main script {path!r} is not a file (a script read from stdin?)"


@dataclass(frozen=True)
class Machine:
    """The machine settings of an env (see the module docstring)."""

    device: str | None = None
    """Where the env's own student lives. None: its domain's preset's ``student_device``
    (the CPU for the small chain students), else the CPU under ``executor='ray'`` (whose
    actors train: no GPU holds two students, docs/scale.md), else CUDA when available."""
    precision: str | None = None
    """'fp32' (CPU default), 'bf16-mixed' (CUDA default: fp32 master weights, bf16 compute)
    or 'bf16' (``soar_env.student.hf.PRECISIONS``)."""
    executor: str = "auto"
    """Where a round's inner runs run (``soar_env.executors``): 'auto' (lockstep for small CPU
    Llama students, else serial), 'serial', 'lockstep', 'process' or 'ray'."""
    num_workers: int | None = None
    """Worker processes of 'lockstep' (None or 1: in this process) and 'process' (default 2),
    Ray actors of 'ray' (default 2)."""
    student_backend: str = "hf"
    """'hf' (transformers) or 'vllm' (sampling on a colocated vLLM engine, GPU only)."""
    max_batch_tokens: int | None = None
    """Tokens of one forward pass at most (sampling in prompt chunks, updates in micro-batches:
    for large students); None: no bound."""
    threads: int | None = None
    """torch CPU threads of this process, fixed (``soar_env.threads.fix``; a process holds one
    count, whichever env set it last). None: ``SOAR_ENV_THREADS``, else as many as the
    machine's load allows (``soar_env.threads``). Worker processes use one thread each."""
    vllm_options: dict[str, Any] | None = None
    """vLLM engine options over the defaults derived from the config (``student_backend='vllm'``)."""

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor expects one of {EXECUTORS}, actual {self.executor!r}")
        if self.student_backend not in BACKENDS:
            raise ValueError(f"student_backend expects one of {BACKENDS}, actual {self.student_backend!r}")
        if self.vllm_options and self.student_backend != "vllm":
            raise ValueError(f"vllm_options= is for student_backend='vllm', actual {self.student_backend!r}")
        for name in ("num_workers", "max_batch_tokens", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} expects an int >= 1 or None, actual {value!r}")

    @classmethod
    def from_keywords(cls, machine: Machine | None, keywords: dict[str, Any]) -> Machine:
        """``machine`` (default: ``Machine()``) with the keywords that name its fields taken
        out of ``keywords`` (``gym.make``'s: the rest are algorithm settings)."""
        mine = {f.name: keywords.pop(f.name) for f in fields(cls) if f.name in keywords}
        return replace(machine or cls(), **mine)

    def place(self, student_device: str | None, domain_name: str) -> Machine:
        """This machine with its device decided (see ``device``): ``student_device`` is the
        domain's preset's. A student the preset places on the CPU samples with 'hf'."""
        if self.student_backend == "vllm" and student_device == "cpu":
            raise ValueError(f"student_backend='vllm' samples on a GPU; the {domain_name} domain's small "
                             "student runs on the CPU: use student_backend='hf'")
        device = self.device or student_device or ("cpu" if self.executor == "ray" else None)
        return replace(self, device=device)

    @property
    def local_backend(self) -> str:
        """The env's own student's backend: 'hf' when Ray actors sample and it is on the CPU."""
        return "hf" if self.executor == "ray" and self.device == "cpu" else self.student_backend
