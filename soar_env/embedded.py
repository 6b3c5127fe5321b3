"""The embedded CPU default: the shipped tiny chain model and its reference datasets.

Everything here works offline: the weights (a ~2 MB safetensors file) ship inside the
package. The datasets below are the fixed points of the stepping-stone benchmark and the
tests: a good stepping-stone set, a deliberately narrow set, and hard-set candidates.
"""

from __future__ import annotations

from pathlib import Path

from soar_env.domains.chain import GOOD_LENGTHS, HARD_LENGTHS
from soar_env.domains.chain_variants import (  # noqa: F401 (the embedded default's names, re-exported)
    CHAIN_VARIANTS,
    TINY_CHAIN_PATH,
    TINY_CHAIN_V1_PATH,
    TINY_CHAIN_V2_PATH,
    TINY_CHAIN_V3_PATH,
    TINY_CHAIN_V4_PATH,
    tiny_domain,
    variant_domain,
    variant_hardset_path,
    variant_model_path,
)
from soar_env.problems import Problem

NARROW_SKILLS = ("+",)
"""The narrow set drills one skill only: it sharpens ``+`` and leaves ``-`` and ``*``."""


def load_tiny_student(path: str | Path | None = None, device: str | None = None):
    """Load the shipped tiny chain model as an ``HFStudent`` (CPU by default)."""
    from soar_env.student.hf import HFStudent

    path = Path(path) if path is not None else TINY_CHAIN_PATH
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(
            f"Tiny model weights not found at {path}. Reinstall soar-env, or rebuild them with "
            f"`python -m soar_env.domains.chain_pretrain --out {path}`."
        )
    return HFStudent.from_pretrained(path, device=device or "cpu")


def good_stones(n: int, seed: int) -> list[Problem]:
    return tiny_domain().problems(n, GOOD_LENGTHS, seed=seed)


def narrow_stones(n: int, seed: int) -> list[Problem]:
    return tiny_domain().problems(n, GOOD_LENGTHS, seed=seed, skills=NARROW_SKILLS)


def hard_candidates(n: int, seed: int) -> list[Problem]:
    return tiny_domain().problems(n, HARD_LENGTHS, seed=seed)


def off_target_stones(n: int, seed: int) -> list[Problem]:
    """Medium chains (as ``good_stones``) of the off-target family only: learnable, unused
    by the hard set. On-target sets (``good_stones`` etc.) are valid v1 problems as they are."""
    from soar_env.domains.chain import OFF_TARGET_SKILLS

    return variant_domain("v1").problems(n, GOOD_LENGTHS, seed=seed, skills=OFF_TARGET_SKILLS)
