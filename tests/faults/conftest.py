"""The fault-injection suite's machinery: a world, real Celery workers on the test database, a
broker, the fault hooks (apps/runs/faults.py), driving a run to its end with the reaper, and the
checks every test makes on what the run left in the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection

from apps.rollouts.models import Step, Trajectory
from apps.runs import faults
from apps.runs.models import Run, StageRun
from sandbox.server import WorldThread, free_port_block
from tests.conftest import ROOT, stop_worker

STALE_S = 20  # heartbeat, trajectory and lease staleness in these tests (production: minutes)
RUN_TIMEOUT_S = 1500
REPORT = ROOT / "var" / "faults-report.jsonl"


@pytest.fixture
def owner(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create(username="fault-owner")
    user.groups.add(Group.objects.get_or_create(name="operators")[0])
    return user


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def clear_broker(url: str) -> None:
    """Empty the Celery queues, reservations and results of `url` (nothing else there)."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("*"):
        name = key.decode(errors="replace")
        if name.split("\x06")[0] in ("default", "rollout", "gpu") or name.startswith(
            ("unacked", "celery-task-meta", "_kombu")
        ):
            client.delete(key)
    client.close()


class Cluster:
    """Workers, a broker and the hooks of one test; `env` is what every process it starts gets."""

    def __init__(self, world, tmp_path: Path, broker_url: str, hooks_url: str, points: list[str]):
        self.tmp = tmp_path
        self.env = {
            **os.environ,
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "webrl_site.test_settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": broker_url,
            "WORLD_URL": world.url,
            "MEDIA_ROOT": str(tmp_path / "media"),
            "CHECKPOINT_ROOT": str(tmp_path / "ckpt"),
            "TRAJECTORY_STALE_S": str(STALE_S),
            "WORLD_LEASE_TTL_S": str(STALE_S),
            "RUN_HEARTBEAT_STALE_S": str(STALE_S),
            "LOG_LEVEL": "WARNING",
            "WEBRL_FAULT_POINTS": ",".join(points),
            "WEBRL_FAULT_REDIS": hooks_url,
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.hooks = redis.Redis.from_url(hooks_url, socket_timeout=1200)
        self.points = points
        faults.reset(self.hooks, *points)
        self.client = Celery(broker=broker_url, backend=broker_url)
        self.last_reap = 0.0
        self.injected = 0

    def start(self, name: str, queues: str) -> subprocess.Popen:
        log = open(self.tmp / f"worker-{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webrl_site", "worker", "-Q", queues,
             "-n", f"{name}-{os.getpid()}@%h", "--pool", "solo", "-l", "WARNING",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self.procs[name]

    def worker_of(self, pid: int) -> str:
        return next(name for name, proc in self.procs.items() if proc.pid == pid)

    def kill(self, name: str) -> None:
        """SIGKILL the worker and everything it started (its Chromium too)."""
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()
        self.injected += 1

    def send(self, task: str, *args, queue: str = "default") -> None:
        self.client.send_task(task, args=list(args), queue=queue)

    def reached(self, point: str, timeout_s: float = 900) -> dict:
        """Wait for a worker to reach `point`, running the reaper (beat's job) every 10 s meanwhile:
        a run that needs it before the point (a lost message, a dead claim) would otherwise wait
        out the whole timeout. On a timeout, say where the runs were and what the workers logged."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                return faults.wait_reached(self.hooks, point, max(1.0, min(5.0, left)))
            except TimeoutError:
                if left <= 5.0:
                    stages = list(StageRun.objects.exclude(status="pending").values_list(
                        "phase__run_id", "phase__index", "name", "status", "attempts"))  # fmt: skip
                    raise TimeoutError(
                        f"no worker reached fault point {point!r} within {timeout_s:.0f} s; "
                        f"stages: {stages}\n{self.logs()}"
                    ) from None
            if time.monotonic() - self.last_reap > 10:
                self.reap()

    def release(self, point: str) -> None:
        faults.release(self.hooks, point)

    def reap(self) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", "reap_runs", "--stale-after", str(STALE_S)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        self.last_reap = time.monotonic()
        return out.stdout + out.stderr

    def drive(self, *runs: Run, timeout_s: float = RUN_TIMEOUT_S) -> None:
        """Wait for the runs to end, running the reaper (beat's job) every 10 s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            statuses = set(
                Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
            )
            if not statuses & set(Run.ACTIVE):
                return
            if time.monotonic() - self.last_reap > 10:
                self.reap()
            time.sleep(2)
        stages = list(StageRun.objects.filter(phase__run__in=runs).values_list(
            "phase__run_id", "phase__index", "name", "status", "attempts"))  # fmt: skip
        raise AssertionError(f"runs did not finish in {timeout_s} s: {stages}\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        out = []
        for path in sorted(self.tmp.glob("worker-*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(out)

    def stop(self) -> None:
        for point in self.points:  # never leave a worker waiting on a hook
            self.release(point)
        for proc in self.procs.values():
            stop_worker(proc)
        self.hooks.close()


@pytest.fixture
def cluster_factory(world, tmp_path, settings):
    made: list[Cluster] = []
    hooks_url = os.environ.get("REDIS_URL", settings.REDIS_URL)

    def make(points: list[str], broker_url: str | None = None) -> Cluster:
        broker = broker_url or hooks_url
        clear_broker(broker)
        settings.MEDIA_ROOT = str(tmp_path / "media")
        cluster = Cluster(world, tmp_path, broker, hooks_url, points)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


# --- what every test checks -------------------------------------------------------------------


def integrity(run: Run, expected: dict[str, int], orm_threshold: float = 0.5) -> dict:
    """Counts of what went wrong in a finished run's trajectories (all zero when intact)."""
    figures = Counter(trajectories=0, lost=0, duplicated=0, interleaved=0, reward_mismatch=0,
                      unfinished=0, demo_unsolved=0)  # fmt: skip
    rows = Trajectory.objects.filter(run=run).select_related("phase")
    for phase_index in sorted({t.phase.index for t in rows}):
        for purpose, n in expected.items():
            mine = [t for t in rows if t.phase.index == phase_index and t.purpose == purpose]
            keys = Counter((t.task_id, t.sample_index) for t in mine)
            figures["duplicated"] += sum(c - 1 for c in keys.values())
            finished = [t for t in mine if t.status in Trajectory.FINISHED]
            figures["unfinished"] += len(mine) - len(finished)
            figures["lost"] += max(0, n - len({(t.task_id, t.sample_index) for t in finished}))
    for traj in rows:
        figures["trajectories"] += 1
        steps = list(
            Step.objects.filter(trajectory=traj).order_by("index").values_list("index", "claim")
        )
        indices = [i for i, _ in steps]
        claims = {c for _, c in steps}
        if indices != list(range(traj.step_count)) or (steps and claims != {traj.token}):
            figures["interleaved"] += 1
        if traj.purpose == Trajectory.Purpose.DEMO and not (
            traj.status == "ok" and traj.score == 1.0
        ):
            figures["demo_unsolved"] += 1  # the oracle always solves a task on a world of its own
        if traj.status == "ok" and traj.score is None:
            figures["reward_mismatch"] += 1
        if traj.purpose == Trajectory.Purpose.TRAIN and traj.status == "ok":
            if traj.human_label is not None:
                want = 1.0 if traj.human_label else 0.0
            elif traj.orm_p_yes is not None:
                want = 1.0 if traj.orm_p_yes >= orm_threshold else 0.0
            else:
                want = None
            if want is None or traj.reward != want:
                figures["reward_mismatch"] += 1
    return dict(figures)


def record(test: str, fault: str, injected: int, runs: list[Run], figures: list[dict]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    statuses = [Run.objects.values_list("status", flat=True).get(pk=r.pk) for r in runs]
    line = {"test": test, "fault": fault, "injected": injected, "runs": len(runs),
            "completed": statuses.count(Run.Status.SUCCEEDED), "t": time.time(),
            **{k: sum(f[k] for f in figures) for k in figures[0]}}  # fmt: skip
    with REPORT.open("a") as fh:
        fh.write(json.dumps(line) + "\n")


def assert_intact(figures: dict) -> None:
    broken = {k: v for k, v in figures.items() if k != "trajectories" and v}
    assert not broken, figures
