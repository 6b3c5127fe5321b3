"""Where a round's inner runs run: one after another (``serial``) or in worker processes.

A round of grounded SOAR is ``g x r`` independent inner runs (each: train the baseline on
one dataset, measure it on the reward questions). The env draws every run's seeds before
dispatch and hands the executor ``InnerJob``s; the executor returns one ``InnerRun`` (or
the ``NonFiniteUpdate`` message) per job, in job order. Results therefore never depend on
scheduling: the ``process`` executor gives what ``serial`` gives, bit for bit (tested).

- ``serial``: the env's own lab, in this process (the default).
- ``process``: ``num_workers`` local processes, one torch thread each, each with its own
  copy of the student (loaded once from the same folder). The baseline reaches them only
  when it changes (at a promotion), as a safetensors file they load by version.

Multi-node (Ray) execution would plug in here with the same job contract; it is not written
yet (docs/scale.md).
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soar_env.config import RLOOConfig
from soar_env.lab import InnerRun, StudentLab
from soar_env.problems import Problem
from soar_env.rl import NonFiniteUpdate

EXECUTORS = ("serial", "process")


@dataclass(frozen=True)
class InnerJob:
    """One inner run, fully specified (seeds included)."""

    problems: tuple[Problem, ...]
    steps: int
    rl: RLOOConfig
    seed: int
    measure_on: tuple[Problem, ...]
    measure: dict[str, Any]
    before: float
    keep_weights: bool


Done = tuple["InnerRun | str", dict[str, int]]
"""A job's inner run (or its divergence message) and what it used (sampled tokens, updates)."""


def run_job(lab: StudentLab, job: InnerJob, progress: Any = None) -> Done:
    """The job's inner run on ``lab`` or the divergence message (the run is then skipped),
    and its usage; ``lab.usage`` is left as it was (the env counts usage per step)."""
    before = dict(lab.usage)
    try:
        result: InnerRun | str = lab.run_inner(list(job.problems), job.steps, job.rl, job.seed,
                                               list(job.measure_on), job.measure, job.before,
                                               job.keep_weights, progress=progress)
    except NonFiniteUpdate as error:
        result = str(error)
    used = {k: lab.usage[k] - before[k] for k in before}
    lab.usage.update(before)
    return result, used


class SerialExecutor:
    """Runs the jobs in this process on the env's lab (``progress``: a bar per run)."""

    def __init__(self, lab: StudentLab, progress: bool = False):
        self.lab, self.progress = lab, progress

    def run(self, jobs: list[InnerJob]) -> list[Done]:
        from tqdm.auto import tqdm

        return [run_job(self.lab, job, tqdm(range(job.steps), desc=f"inner run {i + 1}/{len(jobs)}",
                                            unit="step", leave=False, disable=not self.progress))
                for i, job in enumerate(jobs)]

    def close(self) -> None:
        pass


# ---- worker processes ---------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(student: str, domain: Any, precision: str | None, max_batch_tokens: int | None,
                 kl_reference: bool) -> None:
    import torch

    from soar_env.student.hf import HFStudent

    os.environ["SOAR_ENV_THREADS"] = "1"  # the workers share the cores: one thread each
    torch.set_num_threads(1)
    model = HFStudent.from_pretrained(student, device="cpu", precision=precision,
                                      max_batch_tokens=max_batch_tokens)
    _worker.update(lab=StudentLab(model, domain, kl_reference=kl_reference), version=None)


def _run_in_worker(job: InnerJob, baseline_file: str | None, version: int, reference: str) -> Done:
    lab: StudentLab = _worker["lab"]
    if _worker["version"] != version:  # a promotion since this worker last ran: load it once
        from safetensors.torch import load_file

        lab.baseline = lab.base if baseline_file is None else load_file(baseline_file)
        lab.set_reference(lab.baseline if reference == "baseline" else lab.base)
        _worker["version"] = version
    return run_job(lab, job)


class ProcessExecutor:
    """Runs the jobs in ``num_workers`` local processes (CPU students)."""

    def __init__(self, lab: StudentLab, student: str, num_workers: int, precision: str | None,
                 kl_reference: str):
        import multiprocessing

        self.lab, self.kl_reference = lab, kl_reference
        self._folder = tempfile.TemporaryDirectory(prefix="soar-env-baseline-")
        self._version, self._sent = 0, None
        self._pool = ProcessPoolExecutor(
            num_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(student, lab.domain, precision, lab.student.max_batch_tokens,
                      lab.reference is not None))

    def _baseline(self) -> str | None:
        """The baseline's file for the workers (written once per promotion), or None (base)."""
        if self.lab.baseline is self.lab.base:
            return None
        if self._sent is not self.lab.baseline:
            from safetensors.torch import save_file

            self._version += 1
            path = Path(self._folder.name) / f"baseline-{self._version}.safetensors"
            save_file({k: v.contiguous() for k, v in self.lab.baseline.items()}, str(path))
            self._sent = self.lab.baseline
        return str(Path(self._folder.name) / f"baseline-{self._version}.safetensors")

    def run(self, jobs: list[InnerJob]) -> list[Done]:
        baseline = self._baseline()
        version = self._version if baseline is not None else 0
        futures = [self._pool.submit(_run_in_worker, job, baseline, version, self.kl_reference)
                   for job in jobs]
        return [future.result() for future in futures]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._folder.cleanup()


def make_executor(name: str, lab: StudentLab, student: str, num_workers: int | None,
                  precision: str | None, kl_reference: str, progress: bool = False):
    if name == "serial":
        return SerialExecutor(lab, progress)
    if name == "process":
        if lab.student.device.type != "cpu":
            raise ValueError("executor='process' runs CPU students; a GPU student needs one device per "
                             "worker (not written yet: use executor='serial')")
        return ProcessExecutor(lab, student, num_workers or 2, precision, kl_reference)
    raise ValueError(f"executor expects one of {EXECUTORS}, actual {name!r}")
