"""Reading settings from environment variables: each helper validates and fails with one clear line."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse


class ConfigError(SystemExit):
    """A bad setting: exits with one line naming the variable, never a traceback."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"webrl: configuration error: {name}: {problem}")


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"expected a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    value = env_str(name)
    path = Path(value) if value else default
    if path.exists() and not path.is_dir():
        raise ConfigError(name, f"{path} exists and is not a directory")
    return path


def parse_database_url(name: str, value: str) -> dict:
    """postgres://user:password@host:port/dbname -> Django's DATABASES['default']."""
    url = urlparse(value)
    if url.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ConfigError(
            name, f"expected postgres://user:password@host:port/dbname, got scheme {url.scheme!r}"
        )
    try:
        port = url.port
    except ValueError:
        raise ConfigError(name, f"the port in {value!r} is not a number") from None
    dbname = unquote(url.path.lstrip("/"))
    if not dbname:
        raise ConfigError(name, "no database name (postgres://host:5432/DBNAME)")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": dbname,
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": url.hostname or "",
        "PORT": str(port or ""),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"connect_timeout": 5},
        "TEST": {"NAME": f"test_{dbname}"},
    }


def parse_redis_url(name: str, value: str) -> str:
    url = urlparse(value)
    if url.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(name, f"expected redis://host:port/db, got {value!r}")
    if url.scheme != "unix":
        if not url.hostname:
            raise ConfigError(name, f"no host in {value!r} (expected redis://host:port/db)")
        try:
            _ = url.port
        except ValueError:
            raise ConfigError(name, f"the port in {value!r} is not a number") from None
        db = url.path.lstrip("/")
        if db and not db.isdigit():
            raise ConfigError(name, f"the database in {value!r} must be a number, got {db!r}")
    return value
