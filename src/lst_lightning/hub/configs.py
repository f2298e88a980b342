"""Config dataclasses as plain JSON and back, whatever fields they have.

A checkpoint or an exported folder stores a network config as ``{"class_path": ..., "init_args":
...}`` (the form jsonargparse and the experiment YAMLs use), with ``init_args`` from
:func:`dataclasses.asdict`. Reading it back walks the dataclass's type hints, so nested configs
(``TransformerConfig`` inside ``LSTConfig``) and fields added later are handled without a list of
known fields: a field missing from an old file takes its default, an unknown one is an error that
names it. Only classes inside this package are imported, so a config file cannot make the loader
import arbitrary code.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from typing import Any

ALLOWED_PREFIX = "lst_lightning."
"""Config classes must live in the kit (a config file names the class it is read with)."""


def class_path(obj_or_cls: Any) -> str:
    """``lst_lightning.model.config.LSTConfig`` for an instance or a class."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(path: str) -> type:
    """The class a ``class_path`` names; only kit classes are imported."""
    if not isinstance(path, str) or not path.startswith(ALLOWED_PREFIX) or "." not in path:
        raise ValueError(f"class_path {path!r} is not a class of lst_lightning")
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"class_path {path!r} does not name a class ({e})") from None
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise ValueError(f"class_path {path!r} is not a config dataclass")
    return cls


def to_dict(config: Any) -> dict[str, Any]:
    """``{"class_path": ..., "init_args": asdict(config)}`` (tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a config dataclass instance, got {type(config).__name__}")
    return {"class_path": class_path(config), "init_args": _plain(dataclasses.asdict(config))}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_dict(data: dict[str, Any], default_cls: type | None = None, where: str = "config") -> Any:
    """Invert :func:`to_dict`. A dict without ``class_path`` is read as ``default_cls``'s fields
    (``where`` names the option in errors)."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    if "class_path" in data:
        cls = import_class(data["class_path"])
        args = data.get("init_args") or {}
    elif default_cls is not None:
        cls, args = default_cls, data
    else:
        raise ValueError(f"{where}: no class_path")
    return build(cls, args, where)


def build(cls: type, args: dict[str, Any], where: str) -> Any:
    """``cls(**args)`` with nested dataclasses and tuples rebuilt from their type hints."""
    if not isinstance(args, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {args!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(args) - names)
    if unknown:
        raise ValueError(
            f"{where}: {cls.__name__} has no field {', '.join(map(repr, unknown))} "
            f"(fields: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(hints.get(k), v, f"{where}.{k}") for k, v in args.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: invalid {cls.__name__}: {e}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if hint is None or value is None:
        return value
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if isinstance(value, dict):
        if "class_path" in value:
            return from_dict(value, where=where)
        for option in options:
            if isinstance(option, type) and dataclasses.is_dataclass(option):
                return build(option, value, where)
    if isinstance(value, list):
        for option in options:
            if typing.get_origin(option) is tuple or option is tuple:
                return tuple(value)
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)
