"""Shared fixtures: the cast of users and a real Celery worker started as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make_cast(django_user_model):
    """owner (operator), reviewer, outsider (logged in, no role)."""
    from django.contrib.auth.models import Group

    operators, _ = Group.objects.get_or_create(name="operators")
    reviewers, _ = Group.objects.get_or_create(name="reviewers")
    owner = django_user_model.objects.create_user("owner", password="pw-owner-123")
    owner.groups.add(operators)
    reviewer = django_user_model.objects.create_user("reviewer", password="pw-reviewer-123")
    reviewer.groups.add(reviewers)
    outsider = django_user_model.objects.create_user("outsider", password="pw-outsider-123")
    return owner, reviewer, outsider


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing(request):
    """Tests create many users; production hashing would dominate their run time."""
    if not request.config.pluginmanager.hasplugin("django"):
        return  # the GPU check runs the trainer's gpu tests without Django (`-p no:django`)
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def tensorboard_root(tmp_path_factory):
    """Runs report to TensorBoard by default: keep their event files out of the checkout's var/
    (the environment variable reaches the workers and servers that tests start)."""
    from django.conf import settings

    root = tmp_path_factory.mktemp("tensorboard")
    os.environ["TENSORBOARD_ROOT"] = str(root)
    settings.TENSORBOARD_ROOT = root
    return root


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database per pytest process, so that concurrent test runs never share one."""
    from django.conf import settings

    suffix = os.environ.get("WEBRL_TEST_DB_SUFFIX") or str(os.getpid())
    for alias in settings.DATABASES.values():
        alias.setdefault("TEST", {})["NAME"] = f"test_{alias['NAME']}_{suffix}"
        drop_stale_test_databases(alias)


def drop_stale_test_databases(alias: dict) -> None:
    """Remove test databases left by killed pytest processes (their pid no longer runs)."""
    import re

    import psycopg
    from psycopg import sql

    pattern = re.compile(rf"^test_{re.escape(alias['NAME'])}_(\d+)$")
    params = {
        "host": alias["HOST"] or None,
        "port": alias["PORT"] or None,
        "user": alias["USER"] or None,
        "password": alias["PASSWORD"] or None,
    }
    try:
        with psycopg.connect(
            dbname="postgres", autocommit=True, connect_timeout=5, **params
        ) as conn:
            names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
            for name in names:
                match = pattern.match(name)
                if match and not os.path.exists(f"/proc/{match.group(1)}"):
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.Error:
        pass  # cleanup is a courtesy; pytest-django reports a real connection problem itself


@pytest.fixture
def cast(db, django_user_model):
    return make_cast(django_user_model)


def start_worker(
    queues: str, name: str, extra_env: dict | None = None, pool: str = "solo"
) -> subprocess.Popen:
    """A real Celery worker on the test's Redis, consuming `queues` (comma-separated); `pool` is
    "solo" (one process, the tests' default) or "prefork" with one child, as deployments run."""
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webrl_site",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{name}@%h",
            "--pool",
            pool,
            *(["--concurrency", "1"] if pool == "prefork" else []),
            "-l",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc


def wait_for_queues(queues: list[str], timeout: float = 40.0) -> None:
    from apps.dashboard.health import queue_states

    deadline = time.time() + timeout
    while time.time() < deadline:
        states = queue_states(timeout=0.5)
        if all(states.get(q, {}).get("ok") for q in queues):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no worker consumed {queues} within {timeout} s")


def stop_worker(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def celery_worker_all_queues():
    """One worker consuming default, rollout and gpu for the module that asks for it.

    Not for the session: a worker left running would take the tasks that later tests send to
    their own workers (test_celery_run's, with their own world and checkpoint root)."""
    proc = start_worker("default,rollout,gpu", "test-all")
    try:
        wait_for_queues(["default", "rollout", "gpu"])
        yield proc
    finally:
        stop_worker(proc)
