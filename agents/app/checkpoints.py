"""Files a run folder holds, read back without ever unpickling anything.

Users share run folders, and ``torch.load`` of a pickle runs whatever code the file asks
for. So a saved state is one safetensors file: its tensors (weights, optimizer moments,
torch RNG states) as safetensors, everything else as JSON in the file's metadata, with a
sha256 of both so a changed byte anywhere is caught. ``manifest.json`` holds the sha256 of
every file a resume reads (each file of the promoted students' ``save_pretrained`` folders
too); it is written last, so it always names a complete checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soar_env.files import write_atomic


class RunFolderError(ValueError, RuntimeError):
    """A run folder or checkpoint that cannot be used as it is; the message is one line
    that names the file and says what to do. Both a ValueError and a RuntimeError, so
    callers that caught either from the older loaders still catch it."""


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1))


def read_json(path: Path, what: str = "") -> Any:
    """A JSON file, or one clear error that names it (JSON cannot run code)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFolderError(
            f"{path} is not valid JSON ({type(err).__name__}: {err}); {what or 'restore or delete it'}"
        ) from err


# ---- nested state <-> JSON skeleton + flat tensors ----------------------------------------
# JSON has no tuples (random.Random.setstate needs one) and only string keys (optimizer
# state is keyed by int), so both are tagged; tensors are replaced by their safetensors key.
def split(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: split(v, f"{key}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, split(v, f"{key}/{i}", tensors)] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [split(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [split(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"Cannot store a {type(obj).__name__} at {key} in a checkpoint")


def join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(join(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {k: join(v, tensors) for k, v in obj["__items__"]}
        return {k: join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join(v, tensors) for v in obj]
    return obj


def _digest(text: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(text.encode())
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def not_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Keys of floating tensors holding NaN or inf (a diverged run: sampling from it fails)."""
    return [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts, lists, tuples, numbers, strings, tensors) to ``path``."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    text = json.dumps(split(state, "", tensors))
    meta = {"format": "soar-state-1", "state": text, "sha256": _digest(text, tensors)}
    write_atomic(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_state(path: Path) -> dict[str, Any]:
    """Read ``save_state``'s file: refused unless whole, unchanged and free of NaN or inf."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"{path} is missing; restore it, or train again into another folder")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types on malformed files
        raise RunFolderError(
            f"{path} is corrupted or not a checkpoint of this package ({err}); restore it, or train again"
        ) from err
    if meta.get("format") != "soar-state-1" or "state" not in meta:
        raise RunFolderError(f"{path} is not a checkpoint of this package (no state in it); train again")
    if _digest(meta["state"], tensors) != meta.get("sha256"):
        raise RunFolderError(
            f"{path} has been changed or damaged since it was saved (its sha256 does not match); "
            "restore it, or train again"
        )
    bad = not_finite(tensors)
    if bad:
        raise RunFolderError(
            f"{path} holds NaN or inf values in {bad[0]} ({len(bad)} tensors): the run diverged "
            "before this checkpoint; train again (e.g. with a lower learning rate)"
        )
    try:
        state = join(json.loads(meta["state"]), tensors)
    except (KeyError, TypeError, ValueError) as err:  # only a file made to pass the sha256 gets here
        problem = f"{type(err).__name__}: {err}"
        raise RunFolderError(f"{path} holds a malformed state ({problem}); train again") from err
    if not isinstance(state, dict):
        raise RunFolderError(f"{path} holds a malformed state (not a mapping); train again")
    return state


# ---- manifest ---------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_manifest(run: Path) -> dict[str, Any]:
    """``run/manifest.json``, after checking that every file it lists is there, unchanged."""
    path = run / "manifest.json"
    manifest = read_json(path, "restore it, or train again into another folder")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not isinstance(manifest.get("checkpoint"), str):
        raise RunFolderError(f"{path} is not a manifest of this package; train again into another folder")
    for name, digest in files.items():
        file = run / name
        if not file.is_file():
            raise RunFolderError(f"{file} is missing (listed in {path}); restore it, or train again")
        if sha256_file(file) != digest:
            raise RunFolderError(
                f"{file} has been changed or damaged since it was saved (its sha256 is not the one "
                f"in {path}); restore it, or train again into another folder"
            )
    if manifest["checkpoint"] not in files:
        raise RunFolderError(f"{path} does not list its checkpoint; train again into another folder")
    return manifest


# ---- the run's own record -----------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparing records."""
    return json.loads(json.dumps(obj, default=str))


def differences(saved: Any, given: Any, prefix: str = "") -> list[str]:
    """``key: saved -> given`` for every leaf that differs (NaN equals NaN)."""
    if isinstance(saved, dict) and isinstance(given, dict):
        out = []
        for k in list(saved) + [k for k in given if k not in saved]:
            out += differences(saved.get(k, "(none)"), given.get(k, "(none)"), f"{prefix}{k}.")
        return out
    same = saved == given or (
        isinstance(saved, float) and isinstance(given, float) and math.isnan(saved) and math.isnan(given)
    )
    return [] if same else [f"{prefix[:-1]}: {saved!r} -> {given!r}"]


# ---- promoted students: Hugging Face folders (older runs: one weight file) -----------------
def folder_files(run: Path, folder: str) -> dict[str, str]:
    """``{"FOLDER/FILE": sha256}`` for every file in ``run/folder``, for the manifest (so a
    resume or an evaluation notices a damaged or missing file of a saved folder)."""
    return {p.relative_to(run).as_posix(): sha256_file(p) for p in sorted((run / folder).rglob("*"))
            if p.is_file()}


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors weight file (a promoted folder's ``model.safetensors``, or an older
    run's ``promoted/round_R.safetensors``), refused when missing, unreadable or not finite."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise RunFolderError(f"{path} is missing; restore it, or train again")
    try:
        weights = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types on malformed files
        raise RunFolderError(f"{path} is corrupted or not a safetensors weight file ({err})") from err
    bad = not_finite(weights)
    if bad:
        raise RunFolderError(f"{path} holds NaN or inf values in {bad[0]}; delete it, or train again")
    return weights
