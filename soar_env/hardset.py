"""Hard sets: problems the student solved 0 times in k tries (fail@k), split and cached.

A hard set is built once per (student weights, candidate set, k, seed, sampling settings)
and cached on disk as JSON, so a second build is a file read. The cache folder is
``$SOAR_ENV_CACHE`` or ``~/.cache/soar_env``. The tiny model's default hard set ships with
the package (``SHIPPED_DIRS``), found by the same key. A build saves each finished chunk
of candidates, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from soar_env.files import cache_dir as default_cache_dir  # the names this module had
from soar_env.files import write_atomic
from soar_env.problems import Problem
from soar_env.student.hf import HFStudent

SHIPPED_DIRS = (Path(__file__).parent / "assets" / "tiny-chain",
                Path(__file__).parent / "assets" / "tiny-chain-v1",
                Path(__file__).parent / "assets" / "tiny-chain-v2",
                Path(__file__).parent / "assets" / "tiny-chain-v3",
                Path(__file__).parent / "assets" / "tiny-chain-v4")
"""Read-only folders of hard sets shipped with the package (``scripts/ship_tiny_hardset.py``)."""


class GradedDomain(Protocol):
    """What hard-set building needs from a domain."""

    def student_prompt(self, question: str) -> str: ...
    def grade_batch(self, completions: list[str], problems: list[Problem]) -> list[float]: ...


@dataclass
class HardSet:
    """The fail@k survivors, split 50/50 into train (reward questions) and test (held out)."""

    train: list[Problem]
    test: list[Problem]
    meta: dict = field(default_factory=dict)
    source: str = field(default="built", compare=False)
    """Where this copy came from: 'built', 'cache' or 'shipped' (not saved; not in ``meta``,
    so that two envs with the same settings report the same ``info``)."""

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
                   [Problem.from_dict(p) for p in data["test"]], dict(data["meta"]))


@dataclass
class _Chunks:
    """Finished chunks of one build (counts and the sampler's state after them), saved next
    to the cache entry under its key, so that a build started again resumes exactly."""

    folder: Path
    key: str

    def _file(self, start: int) -> Path:
        return self.folder / f"hardset-{self.key}.chunk{start:06d}.json"

    def load(self, per_batch: int, total: int) -> tuple[list[int], bytes | None]:
        """Counts of the saved chunks in a row from the first, and the sampler state after them."""
        counts: list[int] = []
        state = None
        while len(counts) < total:
            try:
                data = json.loads(self._file(len(counts)).read_text(encoding="utf-8"))
                size = min(per_batch, total - len(counts))
                if (data["key"], data["per_batch"], len(data["counts"])) != (self.key, per_batch, size):
                    break  # another chunk size samples differently: not this build's chunk
                counts, state = counts + [int(c) for c in data["counts"]], bytes.fromhex(data["rng"])
            except (OSError, ValueError, KeyError, TypeError):
                break  # missing or unreadable: resume from the chunks before it
        return counts, state

    def save(self, start: int, per_batch: int, counts: list[int], state: torch.Tensor) -> None:
        write_atomic(self._file(start), json.dumps({
            "key": self.key, "per_batch": per_batch, "counts": counts,
            "rng": state.cpu().numpy().tobytes().hex(),
        }))

    def clear(self) -> None:
        for file in self.folder.glob(f"hardset-{self.key}.chunk*.json"):
            file.unlink(missing_ok=True)


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
    chunks: _Chunks | None = None,
) -> list[int]:
    """Successes of each problem in k samples at the given temperature.

    With ``chunks``, each finished chunk is saved and saved chunks are not sampled again;
    the random stream continues from the saved state, so the counts equal an
    uninterrupted run's.
    """
    from tqdm.auto import tqdm

    generator = torch.Generator(device=student.device.type).manual_seed(seed)
    per_batch = max(1, sequences_per_batch // k)
    counts, state = chunks.load(per_batch, len(problems)) if chunks else ([], None)
    if state is not None:
        generator.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
    starts = range(len(counts), len(problems), per_batch)
    total = -(-len(problems) // per_batch)
    for i in tqdm(starts, desc=f"fail@{k} filter", disable=not progress, total=total,
                  initial=total - len(starts)):
        chunk = problems[i : i + per_batch]
        rollout = student.sample([domain.student_prompt(p.question) for p in chunk], k,
                                 max_new_tokens, temperature, generator)
        scores = domain.grade_batch(rollout.texts, [p for p in chunk for _ in range(k)])
        done = [int(sum(s >= 1.0 for s in scores[j * k : (j + 1) * k])) for j in range(len(chunk))]
        counts += done
        if chunks is not None:
            chunks.save(i, per_batch, done, generator.get_state())
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


def _read(file: Path, key: str) -> HardSet | None:
    """The hard set saved in ``file`` if it is this key's; None (with a warning when the file
    exists) otherwise: a damaged or stale entry is rebuilt, never trusted."""
    if not file.is_file():
        return None
    try:
        hard_set = HardSet.from_json(file.read_text(encoding="utf-8"))
        if hard_set.meta.get("key") == key:
            return hard_set
        problem = f"its key is {hard_set.meta.get('key')!r}, expected {key!r}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        problem = f"{type(err).__name__}: {str(err)[:80]}"
    warnings.warn(f"Ignoring hard-set file {file} ({problem}); rebuilding", stacklevel=3)
    return None


def _check_writable(folder: Path) -> None:
    """Fail before hours of sampling, not after, when the result could not be saved."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OSError(f"Hard-set cache folder {folder} is not writable ({err.strerror or err}); "
                      "set SOAR_ENV_CACHE to a writable folder") from None


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
    sequences_per_batch: int = 4096,
    shipped_dirs: Sequence[Path] | None = None,
) -> HardSet:
    """Keep the candidates with 0 successes in k samples; seeded 50/50 train/test split.

    Cached under ``cache_dir`` (None: ``default_cache_dir()``) keyed by the student's
    weights hash, the candidates' prompts and answers, k, seed and the sampling settings; a
    cache hit, or a file of that key in ``shipped_dirs`` (None: ``SHIPPED_DIRS``), does no
    sampling (``source`` says which). Concurrent builds of one key are safe; an interrupted build resumes.
    """
    if k < 1:
        raise ValueError(f"k expects >= 1, actual {k}")
    if not candidates:
        raise ValueError("Expects candidate problems to filter, actual none")
    key = cache_key(student.weights_hash(), [domain.student_prompt(p.question) for p in candidates],
                    [p.answer for p in candidates], k, seed, temperature, max_new_tokens)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = path / f"hardset-{key}.json"
    shipped = SHIPPED_DIRS if shipped_dirs is None else shipped_dirs
    for source, found in [("cache", file)] + [("shipped", Path(d) / file.name) for d in shipped]:
        if (hard_set := _read(found, key)) is not None:
            hard_set.source = source
            return hard_set
    _check_writable(path)
    chunks = _Chunks(path, key)
    counts = success_counts(student, domain, candidates, k, temperature, max_new_tokens, seed,
                            sequences_per_batch, progress, chunks)
    hard = [p for p, c in zip(candidates, counts) if c == 0]
    random.Random(seed).shuffle(hard)
    half = len(hard) // 2
    meta = {
        "k": k, "seed": seed, "temperature": temperature, "candidates": len(candidates),
        "hard": len(hard), "solved_at_least_once": sum(c > 0 for c in counts), "key": key,
    }
    hard_set = HardSet(hard[:half], hard[half:], meta)
    write_atomic(file, hard_set.to_json())
    chunks.clear()  # only once the whole result is saved
    return hard_set
