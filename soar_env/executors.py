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

- ``ray``: ``num_workers`` Ray actors (``pip install 'soar-env[ray]'``), one GPU each when
  the cluster has GPUs; Ray's ``ActorPool`` schedules the jobs. Start a cluster with
  ``ray start --head`` (and ``ray start --address=HEAD:6379`` on the other nodes) and set
  ``RAY_ADDRESS``; without it, a local Ray instance starts. The baseline goes through Ray's
  object store, once per promotion, and stays in the actors' CPU memory (``host_weights``).
  One GPU per role: the env keeps its own student on the CPU, unless given a device, which
  a local Ray then leaves out (``actor_gpus``); each GPU actor holds one student and, with
  ``backend='vllm'``, one engine built with the env's ``vllm_options``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soar_env.config import RLOOConfig
from soar_env.lab import InnerRun, StudentLab
from soar_env.problems import Problem
from soar_env.rl import NonFiniteUpdate

EXECUTORS = ("serial", "process", "ray")


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


def host_weights(weights: dict[str, Any], device: Any) -> dict[str, Any]:
    """Weights as an actor keeps them for a student on ``device``: CPU tensors, pinned when the
    student is on a GPU (restores are then one fast copy), never a GPU copy (12.9 GB at 3B)."""
    import torch

    pin = torch.device(device).type == "cuda" and torch.cuda.is_available()
    return {k: v.cpu().pin_memory() if pin else v.cpu() for k, v in weights.items()}


def visible_gpus() -> list[str]:
    """This process's GPUs as ``CUDA_VISIBLE_DEVICES`` names them (all, when it is unset)."""
    import torch

    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    if names is not None:
        return [n.strip() for n in names.split(",") if n.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def actor_gpus(visible: list[str], held: int | None) -> list[str]:
    """The GPUs a local Ray may give actors: the visible ones but the env's own (index ``held``)."""
    return [name for i, name in enumerate(visible) if i != held]


class _RayWorker:
    """A Ray actor holding one student (the class is wrapped by ``ray.remote`` on use)."""

    def __init__(self, student: str, domain: Any, precision: str | None, max_batch_tokens: int | None,
                 kl_reference: bool, device: str, backend: str = "hf",
                 vllm_options: dict[str, Any] | None = None):
        import torch

        from soar_env.student import load_student

        if device == "cpu":
            os.environ["SOAR_ENV_THREADS"] = "1"
            torch.set_num_threads(1)
            backend = "hf"  # vLLM samples on GPUs only; a CPU actor keeps the HF sampler
        options = dict(vllm_options or {}) if backend == "vllm" else {}
        model = load_student(student, backend, device=device, precision=precision,
                             max_batch_tokens=max_batch_tokens, **options)
        self.lab, self.version = StudentLab(model, domain, kl_reference=kl_reference), None
        self._placement = {"device": str(model.device), "backend": backend, "vllm_options": vllm_options}

    def placement(self) -> dict[str, Any]:
        """Where this actor's student lives: device, backend, the engine options it was given
        (used when the backend is 'vllm'; a CPU actor keeps the HF sampler), and on a GPU the
        peak memory PyTorch allocated there so far (GB)."""
        import torch

        cuda = self.lab.student.device.type == "cuda"
        peak = torch.cuda.max_memory_allocated(self.lab.student.device) / 1e9 if cuda else None
        return {**self._placement, "peak_gpu_gb": peak}

    def run(self, job: InnerJob, baseline: Any, version: int, reference: str) -> Done:
        lab = self.lab
        if self.version != version:
            lab.baseline = lab.base if baseline is None else host_weights(baseline, lab.student.device)
            lab.set_reference(lab.baseline if reference == "baseline" else lab.base)
            self.version = version
        result, used = run_job(lab, job)
        if isinstance(result, InnerRun) and result.weights is not None:
            result.weights = {k: v.cpu() for k, v in result.weights.items()}
        return result, used


class RayExecutor:
    """Runs the jobs on Ray actors, one per worker (a GPU each when Ray has GPUs)."""

    def __init__(self, lab: StudentLab, student: str, num_workers: int, precision: str | None,
                 kl_reference: str, backend: str = "hf", vllm_options: dict[str, Any] | None = None,
                 reference_copy: bool | None = None):
        try:
            import ray
            from ray.util import ActorPool
        except ImportError as err:
            raise ImportError("executor='ray' needs Ray: pip install 'soar-env[ray]'") from err
        held = (lab.student.device.index or 0) if lab.student.device.type == "cuda" else None
        if not ray.is_initialized():
            from soar_env.student.vllm_student import scoped_environ

            # A local Ray never hands an actor the GPU the env's own student is on.
            others = ",".join(actor_gpus(visible_gpus(), held))
            with scoped_environ({} if held is None else {"CUDA_VISIBLE_DEVICES": others}):
                ray.init(ignore_reinit_error=True, log_to_driver=False)
        elif held is not None:
            warnings.warn(f"The env's student is on cuda:{held} and Ray was started elsewhere: start it "
                          "without that GPU (CUDA_VISIBLE_DEVICES) or an actor may share it", stacklevel=3)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= num_workers else 0
        actor = ray.remote(num_cpus=1, num_gpus=gpus)(_RayWorker)
        self._ray, self.lab, self.kl_reference = ray, lab, kl_reference
        # The env's own lab may hold no KL reference (it does not train): say it explicitly.
        reference_copy = lab.reference is not None if reference_copy is None else reference_copy
        self._actors = [actor.remote(student, lab.domain, precision, lab.student.max_batch_tokens,
                                     reference_copy, "cuda" if gpus else "cpu", backend, vllm_options)
                        for _ in range(num_workers)]
        self._pool = ActorPool(self._actors)
        self._version, self._sent, self._ref = 0, None, None

    def run(self, jobs: list[InnerJob]) -> list[Done]:
        if self.lab.baseline is self.lab.base:
            ref, version = None, 0
        else:
            if self._sent is not self.lab.baseline:  # one put per promotion
                self._version += 1
                self._ref, self._sent = self._ray.put(self.lab.baseline), self.lab.baseline
            ref, version = self._ref, self._version
        # ActorPool.map keeps the jobs' order, whichever actor finishes first.
        return list(self._pool.map(lambda a, job: a.run.remote(job, ref, version, self.kl_reference), jobs))

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)


def make_executor(name: str, lab: StudentLab, student: str, num_workers: int | None,
                  precision: str | None, kl_reference: str, progress: bool = False,
                  backend: str = "hf", vllm_options: dict[str, Any] | None = None,
                  reference_copy: bool | None = None):
    if name == "serial":
        return SerialExecutor(lab, progress)
    if name == "process":
        if lab.student.device.type != "cpu":
            raise ValueError("executor='process' runs CPU students; a GPU student needs one device per "
                             "worker (not written yet: use executor='serial')")
        return ProcessExecutor(lab, student, num_workers or 2, precision, kl_reference)
    if name == "ray":
        return RayExecutor(lab, student, num_workers or 2, precision, kl_reference, backend, vllm_options,
                           reference_copy)
    raise ValueError(f"executor expects one of {EXECUTORS}, actual {name!r}")
