"""Bad settings stop start-up with one clear line; production-like settings pass check --deploy."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def run_manage(args, env_overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_clear_line(result, variable):
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert variable in lines[0]


def test_an_unreachable_database_stops_startup_with_one_line():
    result = run_manage(["migrate"], {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/webrl"})
    assert_one_clear_line(result, "DATABASE_URL")
    assert "cannot connect" in result.stderr


def test_a_malformed_database_url_is_named():
    result = run_manage(["migrate"], {"DATABASE_URL": "mysql://root@localhost/x"})
    assert_one_clear_line(result, "DATABASE_URL")


def test_a_malformed_redis_url_stops_startup_with_one_line():
    result = run_manage(["migrate"], {"REDIS_URL": "http//nonsense"})
    assert_one_clear_line(result, "REDIS_URL")


def test_an_unreachable_redis_stops_startup_with_one_line():
    result = run_manage(["migrate"], {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert_one_clear_line(result, "REDIS_URL")


def test_debug_off_without_a_secret_key_stops_startup():
    result = run_manage(["check"], {"DEBUG": "0"})
    assert_one_clear_line(result, "SECRET_KEY")


def test_a_bad_boolean_names_the_variable():
    result = run_manage(["check"], {"DEBUG": "maybe"})
    assert_one_clear_line(result, "DEBUG")


def test_check_deploy_passes_with_production_settings():
    result = run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "0",
            "SECRET_KEY": "k" * 20 + "-production-secret-0123456789abcdefghij",
            "ALLOWED_HOSTS": "webrl.example.org",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
