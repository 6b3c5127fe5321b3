"""The chain domain's variants (``SoarConfig.chain_variant``) and the model shipped for each.

The weights (~2 MB safetensors files) ship inside the package, under ``soar_env/assets``;
``soar_env.embedded`` builds the CPU default on them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from soar_env.domains.chain import ChainDomain, v1_domain
from soar_env.domains.chain_v2 import v2_domain
from soar_env.domains.chain_v3 import v3_domain
from soar_env.domains.chain_v4 import v4_domain

if TYPE_CHECKING:
    from soar_env.config import SoarConfig

_ASSETS = Path(__file__).parents[1] / "assets"

TINY_CHAIN_PATH = _ASSETS / "tiny-chain"
"""Folder of the shipped tiny model (config.json, model.safetensors, tokenizer files)."""

TINY_CHAIN_V1_PATH = _ASSETS / "tiny-chain-v1"
"""Folder of the v1 model (``chain_pretrain --variant v1``): v0's recipe, larger alphabet."""

TINY_CHAIN_V2_PATH = _ASSETS / "tiny-chain-v2"
"""Folder of the v2 model (``chain_pretrain --variant v2``): keys, traps, v2's corpus."""

TINY_CHAIN_V3_PATH = _ASSETS / "tiny-chain-v3"
"""Folder of v3's shipped hard set only: v3 runs v2's model (``TINY_CHAIN_V2_PATH``)."""

TINY_CHAIN_V4_PATH = _ASSETS / "tiny-chain-v4"
"""Folder of v4's shipped hard set only: v4 runs v2's model too."""

CHAIN_VARIANTS = ("v0", "v1", "v2", "v3", "v4")
"""Values of ``SoarConfig.chain_variant``."""


def tiny_domain() -> ChainDomain:
    """The domain the shipped model was pretrained on."""
    return ChainDomain(default_student=str(TINY_CHAIN_PATH))


def variant_domain(variant: str = "v0") -> ChainDomain:
    """The chain domain of a variant: v0's (``tiny_domain``), v1's (off-target family) or
    v2's (keys and traps, ``soar_env.domains.chain_v2``) or v3's (v2's with one-key hard
    problems, ``soar_env.domains.chain_v3``) or v4's (v2's with hard problems on 6 of the
    12 keys, ``soar_env.domains.chain_v4``)."""
    if variant not in CHAIN_VARIANTS:
        raise ValueError(f"chain_variant expects one of {CHAIN_VARIANTS}, actual {variant!r}")
    if variant == "v0":
        return tiny_domain()
    if variant == "v2":
        return replace(v2_domain(), default_student=str(TINY_CHAIN_V2_PATH))
    if variant == "v3":
        return replace(v3_domain(), default_student=str(TINY_CHAIN_V2_PATH))
    if variant == "v4":
        return replace(v4_domain(), default_student=str(TINY_CHAIN_V2_PATH))
    return replace(v1_domain(), default_student=str(TINY_CHAIN_V1_PATH))


def variant_model_path(variant: str = "v0") -> Path:
    """The shipped model folder of a variant."""
    variant_domain(variant)  # validates the name
    return {"v0": TINY_CHAIN_PATH, "v1": TINY_CHAIN_V1_PATH, "v2": TINY_CHAIN_V2_PATH,
            "v3": TINY_CHAIN_V2_PATH, "v4": TINY_CHAIN_V2_PATH}[variant]


def variant_hardset_path(variant: str = "v0") -> Path:
    """Where a variant's hard set ships: its model's folder, except v3 and v4 (which share
    v2's model but not its hard set)."""
    return {"v3": TINY_CHAIN_V3_PATH, "v4": TINY_CHAIN_V4_PATH}.get(variant) or variant_model_path(variant)


def domain_from_config(config: SoarConfig) -> ChainDomain:
    """The registered ``"chain"`` domain: the variant ``config.chain_variant`` names."""
    return variant_domain(config.chain_variant)
