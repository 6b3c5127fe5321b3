"""Where a round's inner runs run: one after another (``serial``) or in worker processes.

A round of grounded SOAR is ``g x r`` independent inner runs (each: train the baseline on
one dataset, measure it on the reward questions). The env draws every run's seeds before
dispatch and hands the executor ``InnerJob``s; the executor returns one ``InnerRun`` (or
the ``NonFiniteUpdate`` message) per job, in job order. Results therefore never depend on
scheduling: the ``process`` executor gives what ``serial`` gives, bit for bit (tested).

- ``serial``: the env's own lab, in this process.
- ``process``: ``num_workers`` local processes (spawned: ``soar_env.machine.SPAWN_NEEDS``), one torch thread
  each, each with its own copy of the student (loaded once from the same folder). The
  baseline reaches them when it changes (a promotion), as a safetensors file they load once.
- ``lockstep``: all the jobs in this process as one stacked model (``soar_env.lockstep``):
  one batched sampling call and one batched update per step for every run at once. The
  CPU default for small Llama students (``auto``). Each run keeps its own seeds, clipping
  and optimizer state; its numbers equal ``serial``'s within float rounding, not bit for bit.
  With ``num_workers >= 2`` the jobs are split in that many contiguous shares, each trained
  in lockstep in a worker process with one thread (faster on 2 cores than one process with
  two threads: ``docs/scale.md``).
- ``ray``: ``num_workers`` Ray actors, one GPU each when the cluster has GPUs
  (``soar_env.ray_executor``).
"""

from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from soar_env.inner_jobs import Done, InnerJob, run_job
from soar_env.lab import InnerRun, StudentLab
from soar_env.machine import SPAWN_NEEDS, Machine, main_script_error


class SerialExecutor:
    """Runs the jobs in this process on the env's lab (``progress``: a bar per run)."""

    name = "serial"

    def __init__(self, lab: StudentLab, progress: bool = False):
        self.lab, self.progress = lab, progress

    def run(self, jobs: list[InnerJob]) -> list[Done]:
        from tqdm.auto import tqdm

        return [run_job(self.lab, job, tqdm(range(job.steps), desc=f"inner run {i + 1}/{len(jobs)}",
                                            unit="step", leave=False, disable=not self.progress))
                for i, job in enumerate(jobs)]

    def close(self) -> None:
        pass


class LockstepExecutor:
    """Runs the jobs in lockstep in this process, at most ``max_stack`` runs per stack."""

    name = "lockstep"

    def __init__(self, lab: StudentLab, progress: bool = False, max_stack: int = 8):
        self.lab, self.progress, self.max_stack = lab, progress, max_stack

    def run(self, jobs: list[InnerJob]) -> list[Done]:
        done: list[Done] = []
        for at in range(0, len(jobs), self.max_stack):
            done += self._stack(jobs[at : at + self.max_stack])
        return done

    def _stack(self, jobs: list[InnerJob]) -> list[Done]:
        from tqdm.auto import tqdm

        from soar_env.lockstep import LockstepRLOO

        lab, first = self.lab, jobs[0]
        if any((j.steps, j.rl, j.measure_on) != (first.steps, first.rl, first.measure_on) for j in jobs):
            raise ValueError("lockstep expects the jobs of one stack to share steps, settings and "
                             "reward questions")
        reference = lab.reference.snapshot() if lab.reference is not None else None
        trainer = LockstepRLOO(lab.student, lab.domain.reward_batch, lab.student_prompt, first.rl,
                               [lab.baseline] * len(jobs), [j.seed for j in jobs], reference,
                               exact_answers=lab.domain.exact_answers)
        tokens, updates = [0] * len(jobs), [0] * len(jobs)
        rewards: list[list[float]] = [[] for _ in jobs]
        bar = tqdm(range(first.steps), desc=f"{len(jobs)} inner runs in lockstep", unit="step", leave=False,
                   disable=not self.progress)
        for _ in bar:
            active = list(trainer.runs)
            for run, stats in zip(active, trainer.step([jobs[r].problems for r in active])):
                tokens[run] += int(stats["sampled_tokens"])
                updates[run] += int(stats["updated"])
                rewards[run].append(stats["reward"])
            if trainer.failed and set(trainer.failed) & set(trainer.runs):
                trainer.drop([r for r in trainer.runs if r in trainer.failed])
            if not trainer.runs:
                break
        after = dict(zip(trainer.runs, self._measure(trainer, first, jobs))) if trainer.runs else {}
        out: list[Done] = []
        for run, job in enumerate(jobs):
            if run in trainer.failed:
                used = {"sampled_tokens": tokens[run], "student_updates": updates[run]}
                out.append((trainer.failed[run], used))
                continue
            value, used = after[run]
            used = {"sampled_tokens": tokens[run] + used, "student_updates": updates[run]}
            if not math.isfinite(value):
                out.append((f"accuracy after training is {value}", used))
                continue
            out.append((InnerRun(value - job.before, value, rewards[run], trainer.weights(run)), used))
        return out

    def _measure(self, trainer, first: InnerJob, jobs: list[InnerJob]) -> list[tuple[float, int]]:
        """Each stacked run's accuracy on the reward questions, and the tokens it sampled."""
        m = first.measure
        if m["measure"] == "exact":
            return [(a, 0) for a in trainer.exact_accuracy(first.measure_on)]
        seeds = None if m["measure"] == "greedy" else [jobs[r].measure["seed"] for r in trainer.runs]
        accuracy, used = trainer.graded_accuracy(first.measure_on, m["samples"], m["max_new_tokens"], seeds,
                                                 self.lab.domain.grade_batch)
        return list(zip(accuracy, used))

    def close(self) -> None:
        pass


# ---- worker processes ---------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(student: str, domain: Any, precision: str | None, max_batch_tokens: int | None,
                 kl_reference: bool) -> None:
    import signal

    import torch

    from soar_env.lifetime import die_with
    from soar_env.student.hf import HFStudent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's to handle: it stops us
    die_with(os.getppid())  # a SIGKILLed owner cannot stop us: we stop ourselves
    os.environ["SOAR_ENV_THREADS"] = "1"  # the workers share the cores: one thread each
    torch.set_num_threads(1)
    model = HFStudent.from_pretrained(student, device="cpu", precision=precision,
                                      max_batch_tokens=max_batch_tokens)
    _worker.update(lab=StudentLab(model, domain, kl_reference=kl_reference), version=None)


def _worker_lab(baseline_file: str | None, version: int, reference: str) -> StudentLab:
    lab: StudentLab = _worker["lab"]
    if _worker["version"] != version:  # a promotion since this worker last ran: load it once
        from safetensors.torch import load_file

        lab.set_baseline(None if baseline_file is None else load_file(baseline_file), reference)
        _worker["version"] = version
    return lab


def _run_in_worker(job: InnerJob, baseline_file: str | None, version: int, reference: str) -> Done:
    return run_job(_worker_lab(baseline_file, version, reference), job)


def _run_stack_in_worker(jobs: list[InnerJob], baseline_file: str | None, version: int,
                         reference: str) -> list[Done]:
    return LockstepExecutor(_worker_lab(baseline_file, version, reference)).run(jobs)


def _fresh_in_worker(runs: list, config: Any, rl: Any, real: list, progress: bool, label: str) -> list:
    import threading

    from tqdm import tqdm

    from soar_env.fresh_students import train_stacks

    # A thread lock for the progress bar, not tqdm's default multiprocessing one: a worker
    # stopped by Ctrl-C would leave that semaphore behind (a resource_tracker warning).
    tqdm.set_lock(threading.RLock())
    train_stacks(_worker["lab"], real, rl, runs, config, progress, label=label)  # the worker's base student
    return runs


class ProcessExecutor:
    """Runs the jobs in ``num_workers`` local processes (CPU students): one job at a time per
    worker, or (``stacked``, the lockstep executor with workers) one share of the jobs per
    worker, trained there in lockstep."""

    name = "process"

    def __init__(self, lab: StudentLab, student: str, num_workers: int, precision: str | None,
                 kl_reference: str, stacked: bool = False):
        import multiprocessing

        self.lab, self.kl_reference, self.stacked = lab, kl_reference, stacked
        self.num_workers = num_workers
        if stacked:
            self.name = "lockstep"
        reason = main_script_error()
        if reason:
            raise RuntimeError(f"executor={self.name!r} with {num_workers} workers cannot start: {reason}; "
                               f"{SPAWN_NEEDS}")
        self._running: list = []  # the futures of the last run() (close() stops them if unfinished)
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
        if self.stacked:  # contiguous shares: the split, and so every result, is fixed by the jobs
            size = -(-len(jobs) // self.num_workers)
            work, items = _run_stack_in_worker, [jobs[at : at + size] for at in range(0, len(jobs), size)]
        else:
            work, items = _run_in_worker, jobs
        self._running = [self._pool.submit(work, item, baseline, version, self.kl_reference)
                         for item in items]
        done = self._gather()
        return [d for share in done for d in share] if self.stacked else done

    def _gather(self) -> list:
        """The results of ``self._running``, in order, waited for in slices of 0.2 s: Ctrl-C
        may reach one of the pool's threads rather than the main one, and then does not
        interrupt a long wait on a lock; the main thread handles it at its next slice."""
        from concurrent.futures import FIRST_EXCEPTION, wait

        pending = set(self._running)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                break
        try:
            return [f.result() for f in self._running]
        except BrokenProcessPool as err:
            raise RuntimeError(f"A worker process of executor={self.name!r} died ({err}); if none was "
                               f"killed (out of memory, a signal), {SPAWN_NEEDS}") from err

    def train_fresh(self, runs: list, config: Any, rl: Any, real: list, progress: bool) -> None:
        """Fresh students of an evaluation (``soar_env.fresh_students``), in contiguous shares,
        one stack per worker; fills each run's results in place. Stacked workers only."""
        size = -(-len(runs) // self.num_workers)
        shares = [runs[at : at + size] for at in range(0, len(runs), size)]
        self._running = [
            self._pool.submit(_fresh_in_worker, share, config, rl, real, progress and i == 0,
                              f", share 1 of {len(shares)}" if len(shares) > 1 else "")
            for i, share in enumerate(shares)
        ]
        for share, back in zip(shares, self._gather()):
            for run, result in zip(share, back):
                run.__dict__.update(result.__dict__)

    def close(self) -> None:
        # Idle workers stop cleanly. Running jobs (an interrupted run) are abandoned, not
        # awaited: a SIGTERM'd run must exit within a scheduler's grace period. There is no
        # public way to stop a ProcessPoolExecutor's workers before Python 3.14
        # (``terminate_workers``), so they are taken from ``_processes``.
        if any(not future.done() for future in self._running):
            stop = getattr(self._pool, "terminate_workers", None)
            if stop is not None:
                stop()
            for worker in list((getattr(self._pool, "_processes", None) or {}).values()):
                if worker.is_alive():
                    worker.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._folder.cleanup()


def lockstep_unsupported(lab: StudentLab, backend: str = "hf") -> str | None:
    """Why the lockstep executor cannot run this lab's student, or None when it can."""
    from soar_env.student.stacked import stackable

    if backend != "hf" or lab.student.device.type != "cpu":
        return "it runs transformers students on the CPU"
    if lab.student.max_batch_tokens is not None:
        return "it has no max_batch_tokens budget (small students only)"
    return stackable(lab.student.model)


def make_executor(machine: Machine, lab: StudentLab, student: str, kl_reference: str,
                  reference_copy: bool, progress: bool = False):
    """The executor ``machine.executor`` names, for ``lab`` (the env's) and ``student`` (what
    workers load); ``reference_copy``: workers keep a KL reference (the RL has a KL term)."""
    name, workers, backend = machine.executor, machine.num_workers, machine.student_backend
    if name == "auto":  # lockstep where the student allows it, else one run after another
        name = "serial" if lockstep_unsupported(lab, backend) else "lockstep"
    if name == "serial":
        return SerialExecutor(lab, progress)
    if name == "lockstep":
        reason = lockstep_unsupported(lab, backend)
        if reason:
            raise ValueError(f"executor='lockstep' cannot run this student: {reason}; use executor='serial'")
        if workers and workers > 1:  # shares of the stack in worker processes
            return ProcessExecutor(lab, student, workers, machine.precision, kl_reference, stacked=True)
        return LockstepExecutor(lab, progress)
    if name == "process":
        if lab.student.device.type != "cpu":
            raise ValueError("executor='process' runs CPU students; a GPU student needs one device per "
                             "worker (not written yet: use executor='serial')")
        return ProcessExecutor(lab, student, workers or 2, machine.precision, kl_reference)
    from soar_env.ray_executor import RayExecutor  # Ray is an extra: imported on use

    return RayExecutor(lab, student, workers or 2, machine.precision, kl_reference, backend,
                       machine.vllm_options, reference_copy)
