"""The embedded CPU default: the shipped tiny chain model and its reference datasets.

Everything here works offline: the weights (a ~2 MB safetensors file) ship inside the
package. The datasets below are the fixed points of the stepping-stone benchmark and the
tests: a good stepping-stone set, a deliberately narrow set, and hard-set candidates.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from soar_env.domains.chain import GOOD_LENGTHS, HARD_LENGTHS, ChainDomain
from soar_env.problems import Problem

TINY_CHAIN_PATH = Path(__file__).parent / "assets" / "tiny-chain"
"""Folder of the shipped tiny model (config.json, model.safetensors, tokenizer files)."""

NARROW_SKILLS = ("+",)
"""The narrow set drills one skill only: it sharpens ``+`` and leaves ``-`` and ``*``."""


def tiny_domain() -> ChainDomain:
    """The domain the shipped model was pretrained on."""
    return ChainDomain(default_student=str(TINY_CHAIN_PATH))


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


# ---- SOAR-Tiny-v1: the same machinery plus an off-target family (min, max, xor) ----------
TINY_CHAIN_V1_PATH = Path(__file__).parent / "assets" / "tiny-chain-v1"
"""Folder of the v1 model (``chain_pretrain --variant v1``): v0's recipe, larger alphabet."""

TINY_CHAIN_V2_PATH = Path(__file__).parent / "assets" / "tiny-chain-v2"
"""Folder of the v2 model (``chain_pretrain --variant v2``): keys, traps, v2's corpus."""

CHAIN_VARIANTS = ("v0", "v1", "v2")
"""Values of ``SoarConfig.chain_variant``."""


def variant_domain(variant: str = "v0") -> ChainDomain:
    """The chain domain of a variant: v0's (``tiny_domain``), v1's (off-target family) or
    v2's (keys and traps, ``soar_env.domains.chain_v2``)."""
    from soar_env.domains.chain import v1_domain
    from soar_env.domains.chain_v2 import v2_domain

    if variant not in CHAIN_VARIANTS:
        raise ValueError(f"chain_variant expects one of {CHAIN_VARIANTS}, actual {variant!r}")
    if variant == "v0":
        return tiny_domain()
    if variant == "v2":
        return replace(v2_domain(), default_student=str(TINY_CHAIN_V2_PATH))
    return replace(v1_domain(), default_student=str(TINY_CHAIN_V1_PATH))


def variant_model_path(variant: str = "v0") -> Path:
    """The shipped model folder of a variant."""
    variant_domain(variant)  # validates the name
    return {"v0": TINY_CHAIN_PATH, "v1": TINY_CHAIN_V1_PATH, "v2": TINY_CHAIN_V2_PATH}[variant]


def off_target_stones(n: int, seed: int) -> list[Problem]:
    """Medium chains (as ``good_stones``) of the off-target family only: learnable, unused
    by the hard set. On-target sets (``good_stones`` etc.) are valid v1 problems as they are."""
    from soar_env.domains.chain import OFF_TARGET_SKILLS

    return variant_domain("v1").problems(n, GOOD_LENGTHS, seed=seed, skills=OFF_TARGET_SKILLS)
