"""Start-up checks: an unreachable database or Redis stops the process with one clear line."""

from __future__ import annotations

import os
import sys

# Commands that must work without the services (inspection, packaging, help).
OFFLINE_COMMANDS = {
    "check",
    "help",
    "version",
    "makemigrations",
    "collectstatic",
    "diffsettings",
    "import_tasks_check",
    "sendtestemail",
    "shell_plus",
}


def check_database() -> str | None:
    from django.db import connection
    from django.db.utils import OperationalError

    try:
        connection.ensure_connection()
    except OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        db = connection.settings_dict
        return f"DATABASE_URL: cannot connect to {db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}: {reason}"
    finally:
        connection.close()
    return None


def check_redis() -> str | None:
    import redis
    from django.conf import settings

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3
        )
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"REDIS_URL: cannot reach Redis at {settings.REDIS_URL}: {exc}"
    return None


def check_services() -> None:
    """Exit with one line per unreachable service (skipped with WEBRL_SKIP_SERVICE_CHECK=1)."""
    if os.environ.get("WEBRL_SKIP_SERVICE_CHECK") == "1":
        return
    problems = [p for p in (check_database(), check_redis()) if p]
    if problems:
        for problem in problems:
            print(f"webrl: configuration error: {problem}", file=sys.stderr)
        raise SystemExit(2)
