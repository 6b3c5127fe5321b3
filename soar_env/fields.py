"""Type and range checks of the config dataclasses, and ``--set key=value`` parsing.

A config class lists its one-field bounds in ``BOUNDS`` (``{"lr": (">", 0)}``, optionally
with a reason as a third item);
``check_fields`` runs at construction (``__post_init__``) and ``coerce_field`` applies the
same checks to one command-line value, so a CLI error names the field before any run starts.
Checks between fields stay in each class's ``__post_init__``.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import types
from dataclasses import fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

_COMPARE = {">": operator.gt, ">=": operator.ge}


def _kinds(hint: Any) -> tuple[Any, ...]:
    """``str | None`` -> (str, NoneType); ``int`` -> (int,)."""
    return get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)


def _typed(value: Any, kind: Any) -> tuple[bool, Any]:
    """(does ``value`` have ``kind``, the value as a plain Python object of that kind)."""
    if kind is type(None):
        return value is None, None
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:  # bool is an int to Python, never to a config; numpy ints are ints
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return ok, int(value) if ok else value
    if kind is float:  # ints are accepted; NaN and infinities are not numbers to train with
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    return isinstance(value, kind), value


def _describe(hint: Any) -> str:
    names = {int: "an int", float: "a finite number", bool: "a bool", str: "a string",
             type(None): "None"}
    return " or ".join(names.get(k, getattr(k, "__name__", str(k))) for k in _kinds(hint))


def _hints(cls: type) -> dict[str, Any]:
    """The dataclass fields' resolved annotations (not ClassVars such as ``BOUNDS``)."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _check(cls: type, name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field's type and bound; returns it normalized.

    A class may list fields in ``INFINITE_OK`` whose float may be +-inf (never NaN): e.g.
    ``tau = inf`` means "never promote".
    """
    field_name = name.rsplit(".", 1)[-1]
    if (field_name in getattr(cls, "INFINITE_OK", ()) and isinstance(value, numbers.Real)
            and not isinstance(value, bool) and math.isinf(value)):
        return float(value)
    for kind in _kinds(hint):
        ok, typed = _typed(value, kind)
        if ok:
            break
    else:
        raise ValueError(f"{name} expects {_describe(hint)}, actual {value!r}")
    bound = getattr(cls, "BOUNDS", {}).get(name.rsplit(".", 1)[-1])
    if bound is not None and typed is not None and not _COMPARE[bound[0]](typed, bound[1]):
        why = f" ({bound[2]})" if len(bound) > 2 else ""
        raise ValueError(f"{name} expects {bound[0]} {bound[1]}{why}, actual {typed!r}")
    return typed


def check_fields(config: Any) -> None:
    """Check every field of a config dataclass (type, finiteness, ``BOUNDS``) in place."""
    for name, hint in _hints(type(config)).items():
        object.__setattr__(config, name, _check(type(config), name, hint, getattr(config, name)))


def field_names(config_cls: type, prefix: str = "") -> list[str]:
    """Every settable name, nested ones dotted ('rl.learning_rate')."""
    names = []
    for name, hint in _hints(config_cls).items():
        nested = [k for k in _kinds(hint) if is_dataclass(k)]
        names += field_names(nested[0], f"{prefix}{name}.") if nested else [prefix + name]
    return names


def coerce_field(config_cls: type, name: str, text: str) -> Any:
    """The value of ``--set name=text`` for ``config_cls``, typed and checked as at construction.

    ``name`` may be dotted into a nested config ('rl.learning_rate'). The text is read as
    JSON when it parses (``16``, ``1e-4``, ``true``, ``null``), else as a string; an int field
    takes ``16``, never ``16.5`` or ``true``. An unknown name lists the valid ones.
    """
    cls, parts, hint = config_cls, name.split("."), None
    for i, part in enumerate(parts):
        hint = _hints(cls).get(part) if is_dataclass(cls) else None
        if hint is None:
            break
        cls = hint if i < len(parts) - 1 else cls
    if hint is None or is_dataclass(hint):
        raise ValueError(f"Unknown setting {name!r}; valid: {', '.join(field_names(config_cls))}")
    try:
        value = json.loads(text.lower() if text.lower() in ("true", "false") else text)
    except json.JSONDecodeError:
        value = text
    if str in _kinds(hint) and not isinstance(value, str) and value is not None:
        value = text  # a string field keeps '123' as written
    return _check(cls, name, hint, value)
