"""The ``ray`` executor: a round's inner runs on Ray actors (``pip install 'soar-env[ray]'``).

``num_workers`` actors, one GPU each when the cluster has GPUs; Ray's ``ActorPool``
schedules the jobs and keeps their order, so results equal ``serial``'s as the other
executors' do (``soar_env.executors``). A cluster: ``ray start --head``
(``--address=HEAD:6379`` on the other nodes) and ``RAY_ADDRESS``; without it a local Ray
starts. The baseline goes through Ray's object store once per promotion and stays in the
actors' CPU memory (``host_weights``). One GPU per role: the env keeps its student on the
CPU unless given a device, which a local Ray then leaves out (``actor_gpus``); a GPU actor
holds one student and, with ``backend='vllm'``, one engine.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from soar_env.inner_jobs import Done, InnerJob, run_job
from soar_env.lab import InnerRun, StudentLab


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
            weights = None if baseline is None else host_weights(baseline, lab.student.device)
            lab.set_baseline(weights, reference)
            self.version = version
        result, used = run_job(lab, job)
        if isinstance(result, InnerRun) and result.weights is not None:
            result.weights = {k: v.cpu() for k, v in result.weights.items()}
        return result, used


class RayExecutor:
    """Runs the jobs on Ray actors, one per worker (a GPU each when Ray has GPUs)."""

    name = "ray"

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
