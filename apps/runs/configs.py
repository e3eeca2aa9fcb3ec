"""Run configs as flat `section.field` maps: a preset plus overrides, differences between configs,
and the field a `ConfigError` message names. Every check is the trainer's own `RunConfig`."""

from __future__ import annotations

import functools
from typing import Any

from trainer.config import PRESETS, ConfigError, RunConfig, preset


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """`{"actor": {"lr": 1e-5}}` -> `{"actor.lr": 1e-5}`, in the config's own order."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def assign(config: dict, dotted: str, value: Any) -> None:
    """Set `section.field` in a nested dict; a path through a plain value is a ConfigError."""
    *parents, leaf = dotted.split(".")
    target = config
    for i, part in enumerate(parents):
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(parents[: i + 1])}: is a field, not a section")
        target = nxt
    target[leaf] = value


def from_preset(name: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The preset's config with `{"section.field": value}` overrides (JSON values, not text),
    checked by `RunConfig.from_dict`: unknown keys and wrong types raise its ConfigError."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    data = preset(name).to_dict()
    for key, value in (overrides or {}).items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"overrides: keys are section.field names, got {key!r}")
        assign(data, key, value)
    return RunConfig.from_dict(data)


def diff(configs: list[dict]) -> list[tuple[str, list[Any]]]:
    """(field, [value in each config]) for the fields whose values are not all equal."""
    flats = [flatten(c) for c in configs]
    keys: list[str] = []
    for flat in flats:
        keys.extend(k for k in flat if k not in keys)
    missing = object()
    rows = []
    for key in keys:
        values = [flat.get(key, missing) for flat in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, [None if v is missing else v for v in values]))
    return rows


@functools.cache
def known_keys() -> frozenset[str]:
    """Every `section.field` of RunConfig, and every section's name."""
    leaves = flatten(RunConfig().to_dict())
    return frozenset(leaves) | {k.split(".", 1)[0] for k in leaves}


def error_field(message: str) -> str | None:
    """The `section.field` a ConfigError message names: the unknown key of `unknown key 'actor.lrr'
    ...`, else the known field or section it starts with (`actor.lr: expected ...`), else None."""
    if message.startswith("unknown key "):
        return message.removeprefix("unknown key ").split(" ", 1)[0].strip("'\"")
    head = message.split(":", 1)[0].strip().split("[", 1)[0]
    return head if head in known_keys() or head in ("overrides", "config") else None
