"""What a stored task (and any text a person types) may hold: checked before anything is written,
so a bad value gets a message naming the field instead of a database error.

Postgres refuses NUL in text and jsonb and NaN/Infinity in jsonb; `Task.sites` holds at most 40
characters a site; task configs are validated as the importer validates them.
"""

from __future__ import annotations

import json
import math
from typing import Any

from trainer.env.webarena import validate_task

MAX_TEXT = 10_000
MAX_INTENT = 2_000
MAX_SITE = 40  # Task.sites: ArrayField(CharField(max_length=40))
MAX_CONFIG_BYTES = 200_000
MAX_DEPTH = 20


def clean_text(value: Any, field: str, max_len: int = MAX_TEXT, *, required: bool = False) -> str:
    """A string with no NUL, at most `max_len` characters; stripped. ValueError names the field."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{field}: contains a NUL character (\\x00), which cannot be stored")
    value = value.strip()
    if required and not value:
        raise ValueError(f"{field}: must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{field}: {len(value)} characters, at most {max_len}")
    return value


def check_json(value: Any, field: str, max_bytes: int = MAX_CONFIG_BYTES) -> None:
    """JSON Postgres can store: finite numbers, no NUL in keys or strings, string keys, at most
    MAX_DEPTH levels and `max_bytes` bytes."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{field}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{where}: {item} is not a number JSON can store (NaN or Infinity)")
        if isinstance(item, str) and "\x00" in item:
            raise ValueError(f"{where}: contains a NUL character (\\x00)")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"{where}: key {key!r} is not a string")
                if "\x00" in key:
                    raise ValueError(f"{where}: a key contains a NUL character (\\x00)")
                stack.append((child, f"{where}.{key[:40]}", depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif not isinstance(item, str | int | float | bool | type(None)):
            raise ValueError(f"{where}: {type(item).__name__} is not JSON")
    size = len(json.dumps(value, allow_nan=False))
    if size > max_bytes:
        raise ValueError(f"{field}: {size} bytes, at most {max_bytes}")


def clean_task_config(config: Any, intent: str) -> dict:
    """A reviewer's (or an importer's) task config with `intent` in it, valid as an imported
    WebArena record; ValueError lists everything wrong."""
    if not isinstance(config, dict):
        raise ValueError("config: must be a JSON object (a WebArena task config)")
    check_json(config, "config")
    intent = clean_text(intent, "intent", MAX_INTENT, required=True)
    record = {**config, "intent": intent}
    sites = record.get("sites")
    if isinstance(sites, list):
        for site in sites:
            if isinstance(site, str) and len(site) > MAX_SITE:
                raise ValueError(
                    f"config.sites: {site[:50]!r}... longer than {MAX_SITE} characters"
                )
    # Generated tasks have no WebArena task id (their key is their identity).
    checked = {**record, "task_id": record["task_id"] if record.get("task_id") is not None else 0}
    errors = validate_task(checked)
    if errors:
        raise ValueError("config: " + "; ".join(errors))
    return record


def storable_errors(record: dict) -> list[str]:
    """Why Postgres would refuse an otherwise valid record (NUL, NaN, too deep or too big)."""
    try:
        check_json(record, "record")
        clean_text(record.get("intent", ""), "intent", MAX_INTENT, required=True)
    except ValueError as exc:
        return [str(exc)]
    return []
