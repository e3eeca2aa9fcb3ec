"""Create the database named by DATABASE_URL if it does not exist (idempotent)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from webrl_site.env import ConfigError, parse_database_url  # noqa: E402


def main() -> int:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/webrl"
    try:
        db = parse_database_url("DATABASE_URL", url)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    params = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "connect_timeout": 5,
    }
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                print(f"setup: created database {db['NAME']}")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"webrl: configuration error: DATABASE_URL: cannot connect to "
            f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}: {reason}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
