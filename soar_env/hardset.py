"""Hard sets: problems the student solved 0 times in k tries (fail@k), split and cached.

A hard set is built once per (student weights, candidate set, k, seed, sampling settings)
and cached on disk as JSON, so a second build is a file read. The cache folder is
``$SOAR_ENV_CACHE`` or ``~/.cache/soar_env``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from soar_env.problems import Problem
from soar_env.student.hf import HFStudent


class GradedDomain(Protocol):
    """What hard-set building needs from a domain."""

    def student_prompt(self, question: str) -> str: ...
    def grade_batch(self, completions: list[str], references: list[str]) -> list[float]: ...


@dataclass
class HardSet:
    """The fail@k survivors, split 50/50 into train (reward questions) and test (held out)."""

    train: list[Problem]
    test: list[Problem]
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "train": [p.to_dict() for p in self.train],
            "test": [p.to_dict() for p in self.test],
            "meta": self.meta,
        })

    @classmethod
    def from_json(cls, text: str) -> HardSet:
        data = json.loads(text)
        return cls([Problem.from_dict(p) for p in data["train"]],
                   [Problem.from_dict(p) for p in data["test"]], data["meta"])


def default_cache_dir() -> Path:
    return Path(os.environ.get("SOAR_ENV_CACHE", Path.home() / ".cache" / "soar_env"))


def success_counts(
    student: HFStudent,
    domain: GradedDomain,
    problems: Sequence[Problem],
    k: int = 128,
    temperature: float = 1.0,
    max_new_tokens: int = 1024,
    seed: int = 0,
    sequences_per_batch: int = 4096,
    progress: bool = False,
) -> list[int]:
    """Successes of each problem in k samples at the given temperature."""
    from tqdm.auto import tqdm

    generator = torch.Generator(device=student.device.type).manual_seed(seed)
    per_batch = max(1, sequences_per_batch // k)
    counts: list[int] = []
    chunks = range(0, len(problems), per_batch)
    for i in tqdm(chunks, desc=f"fail@{k} filter", disable=not progress):
        chunk = problems[i : i + per_batch]
        rollout = student.sample([domain.student_prompt(p.question) for p in chunk], k,
                                 max_new_tokens, temperature, generator)
        scores = domain.grade_batch(rollout.texts, [p.answer for p in chunk for _ in range(k)])
        counts += [int(sum(s >= 1.0 for s in scores[j * k : (j + 1) * k])) for j in range(len(chunk))]
    return counts


def cache_key(weights_hash: str, prompts: Sequence[str], answers: Sequence[str], k: int,
              seed: int, temperature: float, max_new_tokens: int) -> str:
    """Keyed by the prompts the student sees, not only the questions: a changed prompt
    format or chat template is a different hard set."""
    digest = hashlib.sha256()
    digest.update(json.dumps([weights_hash, k, seed, temperature, max_new_tokens]).encode())
    for prompt, answer in zip(prompts, answers):
        digest.update(json.dumps([prompt, answer]).encode())
    return digest.hexdigest()[:24]


def build_hard_set(
    student: HFStudent,
    domain: GradedDomain,
    candidates: Sequence[Problem],
    k: int = 128,
    seed: int = 0,
    temperature: float = 1.0,
    max_new_tokens: int = 1024,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> HardSet:
    """Keep the candidates with 0 successes in k samples; seeded 50/50 train/test split.

    Cached under ``cache_dir`` (None: ``default_cache_dir()``) keyed by the student's
    weights hash, the candidates' prompts and answers, k, seed and the sampling settings; a
    cache hit does no sampling.
    """
    if k < 1:
        raise ValueError(f"k expects >= 1, actual {k}")
    if not candidates:
        raise ValueError("Expects candidate problems to filter, actual none")
    key = cache_key(student.weights_hash(), [domain.student_prompt(p.question) for p in candidates],
                    [p.answer for p in candidates], k, seed, temperature, max_new_tokens)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = path / f"hardset-{key}.json"
    if file.exists():
        try:
            return HardSet.from_json(file.read_text())
        except (json.JSONDecodeError, KeyError, TypeError):
            file.unlink()  # a corrupted cache entry is rebuilt, not trusted
    counts = success_counts(student, domain, candidates, k, temperature, max_new_tokens, seed,
                            progress=progress)
    hard = [p for p, c in zip(candidates, counts) if c == 0]
    random.Random(seed).shuffle(hard)
    half = len(hard) // 2
    meta = {
        "k": k, "seed": seed, "temperature": temperature, "candidates": len(candidates),
        "hard": len(hard), "solved_at_least_once": sum(c > 0 for c in counts), "key": key,
    }
    hard_set = HardSet(hard[:half], hard[half:], meta)
    path.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(hard_set.to_json())
    tmp.replace(file)  # atomic: an interrupted build never leaves a half-written cache
    return hard_set
