"""Latency of the dashboard at load size: `manage.py seed_load` first, then `manage.py bench_dashboard --json`.

Starts daphne on the load database, logs in over HTTP and times each page with httpx (p50/p95), then
connects 50 websocket clients to a run while this process writes frames through `send_to_run`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.dashboard.management.commands.seed_load import (
    BENCH_PASSWORD,
    BENCH_USER,
    LOAD_ALIAS,
    load_database_url,
    register_load_database,
)

DAPHNE_LOG = Path("/tmp") / f"webrl-bench-daphne-{os.getpid()}.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# Runs daphne after raising the channel layer's Redis socket timeout (see --layer-socket-timeout).
_PATCHED_DAPHNE = """
import sys, django
from django.conf import settings
django.setup()
layer = settings.CHANNEL_LAYERS["default"]
layer["CONFIG"]["hosts"] = [{"address": settings.REDIS_URL, "socket_timeout": float(sys.argv[1])}]
sys.argv = ["daphne"] + sys.argv[2:]
from daphne.cli import CommandLineInterface
CommandLineInterface.entrypoint()
"""


def start_daphne(
    database_url: str, port: int, debug: bool = False, layer_socket_timeout: float = 0.0
) -> subprocess.Popen:
    """Production-like by default: DEBUG off (no query log, no template debug), plain HTTP on loopback."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "1" if debug else "0",
        "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "webrl_site.settings",
    }
    args = ["-b", "127.0.0.1", "-p", str(port), "--websocket_connect_timeout", "60"]
    args.append("webrl_site.asgi:application")
    if layer_socket_timeout > 0:
        command = [sys.executable, "-c", _PATCHED_DAPHNE, str(layer_socket_timeout), *args]
    else:
        command = [str(Path(sys.executable).with_name("daphne")), *args]
    return subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(DAPHNE_LOG, "wb"),  # noqa: SIM115 (closed with the process)
        start_new_session=True,
    )


def wait_until_up(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise CommandError(
                f"daphne exited: {proc.stderr.read().decode(errors='replace')[-2000:]}"
            )
        try:
            httpx.get(base + "/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise CommandError("daphne did not answer within 60 s")


def login(client: httpx.Client, base: str) -> str:
    client.get(base + "/login/")
    token = client.cookies.get("csrftoken")
    response = client.post(
        base + "/login/",
        data={"username": BENCH_USER, "password": BENCH_PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={token}"},
    )
    session = client.cookies.get("sessionid")
    if response.status_code != 302 or not session:
        raise CommandError("could not log in as the bench user: run `manage.py seed_load` first")
    # With DEBUG off the cookies are marked Secure; send them explicitly over loopback HTTP.
    client.headers["Cookie"] = f"sessionid={session}; csrftoken={token}"
    return session


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show the server's own cost per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_pages(
    client: httpx.Client, base: str, pages: dict[str, str], requests: int, server_pid: int
) -> dict:
    results = {}
    for name, path in pages.items():
        for _ in range(3):
            warm = client.get(base + path)
            if warm.status_code != 200:
                raise CommandError(f"{name} ({path}) answered {warm.status_code}")
        samples = []
        cpu_before = cpu_seconds(server_pid)
        for _ in range(requests):
            started = time.perf_counter()
            client.get(base + path)
            samples.append((time.perf_counter() - started) * 1000)
        results[name] = {
            "path": path,
            "p50_ms": round(percentile(samples, 0.5), 1),
            "p95_ms": round(percentile(samples, 0.95), 1),
            "server_cpu_ms": round((cpu_seconds(server_pid) - cpu_before) * 1000 / requests, 1),
        }
    return results


async def _ws_client(port, path, session, sent, latencies, ready, stop, gate, attempts=5):
    for attempt in range(attempts):
        try:
            async with gate:  # a few handshakes at a time, as browsers arriving would
                reader, writer = await _ws_handshake(port, path, session)
            break
        except (ConnectionError, asyncio.IncompleteReadError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    ready()
    await _ws_read(reader, writer, sent, latencies, stop)


async def _ws_handshake(port: int, path: str, session: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nCookie: sessionid={session}\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in status.split(b"\r\n", 1)[0]:
        raise CommandError(f"websocket refused: {status[:80]!r}")
    return reader, writer


async def _ws_read(reader, writer, sent: dict, latencies: list, stop) -> None:
    while not stop.is_set():
        try:
            head = await asyncio.wait_for(reader.readexactly(2), timeout=0.5)
        except TimeoutError:
            continue
        except asyncio.IncompleteReadError:
            return
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        now = time.perf_counter()
        if head[0] & 0x0F != 1:
            continue
        match = re.search(r'data-seq=\\?"(\d+)', payload.decode(errors="replace"))
        if match and int(match.group(1)) in sent:
            latencies.append((now - sent[int(match.group(1))]) * 1000)
    writer.close()


def time_websocket(
    port: int, run_id: int, session: str, clients: int, frames: int, rate: float
) -> dict:
    from apps.runs.live import send_to_run
    from apps.runs.models import MetricPoint

    sent: dict[int, float] = {}
    latencies: list[float] = []
    connected = threading.Semaphore(0)
    stop = threading.Event()

    def run_clients():
        async def main():
            gate = asyncio.Semaphore(5)
            path = f"/ws/runs/{run_id}/"
            jobs = [
                _ws_client(port, path, session, sent, latencies, connected.release, stop, gate)
                for _ in range(clients)
            ]
            await asyncio.gather(*jobs)

        asyncio.run(main())

    thread = threading.Thread(target=run_clients, daemon=True)
    thread.start()
    for _ in range(clients):
        if not connected.acquire(timeout=90):
            raise CommandError("websocket clients did not all connect within 90 s")
    time.sleep(0.5)
    for seq in range(frames):
        html = f'<figure class="slot" id="slot-{seq % 8}" data-seq="{seq}"><figcaption>step {seq}</figcaption></figure>'
        # The run writes while it streams: a metric row per frame, as a rollout worker would.
        MetricPoint.objects.using(LOAD_ALIAS).create(
            run_id=run_id, name="rollout/steps_per_s", step=10_000 + seq, value=15.0
        )
        sent[seq] = time.perf_counter()
        send_to_run(run_id, "frame", {"slot": seq % 8, "html": html})
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=10)
    MetricPoint.objects.using(LOAD_ALIAS).filter(run_id=run_id, step__gte=10_000).delete()
    expected = clients * frames
    return {
        "p50": round(percentile(latencies, 0.5), 1),
        "p95": round(percentile(latencies, 0.95), 1),
        "clients": clients,
        "frames": frames,
        "delivered": len(latencies),
        "expected": expected,
    }


class Command(BaseCommand):
    help = "Time the dashboard's pages and websocket frames against the load database."

    def add_arguments(self, parser):
        parser.add_argument("--database-url", default=None)
        parser.add_argument("--requests", type=int, default=60, help="timed requests per page")
        parser.add_argument("--clients", type=int, default=50)
        parser.add_argument("--frames", type=int, default=100)
        parser.add_argument("--rate", type=float, default=10.0, help="frames per second")
        parser.add_argument("--json", action="store_true", help="print only the JSON result")
        parser.add_argument("--debug", action="store_true", help="run daphne with DEBUG on")
        parser.add_argument(
            "--layer-socket-timeout",
            type=float,
            default=0.0,
            help="if > 0, run daphne with this Redis socket timeout for the channel layer "
            "(redis-py's default, 5 s, equals channels-redis's blocking-pop timeout)",
        )

    def handle(self, *args, **opts):
        import logging

        from apps.rollouts.models import Trajectory

        logging.getLogger("httpx").setLevel(logging.WARNING)
        from apps.runs.models import Run

        url = load_database_url(opts["database_url"])
        register_load_database(url)
        run = Run.objects.using(LOAD_ALIAS).filter(status="running").order_by("id").first()
        if run is None:
            raise CommandError(f"no running run in {url}: run `manage.py seed_load` first")
        trajectory = (
            Trajectory.objects.using(LOAD_ALIAS)
            .filter(run=run, step_count__gte=10)
            .order_by("-id")
            .first()
        )
        total = (
            Trajectory.objects.using(LOAD_ALIAS)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        pages = {
            "run_page": f"/runs/{run.pk}/",
            "trajectory_list_filtered": f"/trajectories/?run={run.pk}&outcome=success&disagree=1",
            "trajectory_detail": f"/trajectories/{trajectory.pk}/",
            "review_queue": "/review/",
            "review_agreement": "/review/agreement/",
            "curriculum_list": "/curriculum/?status=proposed",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_daphne(url, port, opts["debug"], opts["layer_socket_timeout"])
        try:
            wait_until_up(base, proc)
            with httpx.Client(follow_redirects=False, timeout=30) as client:
                session = login(client, base)
                page_times = time_pages(client, base, pages, opts["requests"], proc.pid)
            try:
                ws = time_websocket(
                    port, run.pk, session, opts["clients"], opts["frames"], opts["rate"]
                )
            except (CommandError, OSError) as exc:  # the pages' figures still get printed
                ws = {"error": str(exc), "daphne_log": str(DAPHNE_LOG)}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        result = {
            "pages": page_times,
            "ws_frame_ms": ws,
            "client": f"httpx against daphne (1 process, DEBUG={int(opts['debug'])}), sequential requests",
            "load_average": round(os.getloadavg()[0], 1),
            "layer_socket_timeout_s": opts["layer_socket_timeout"]
            or "settings (redis-py default 5)",
            "trajectories": total,
            "trajectory_steps": trajectory.step_count,
        }
        if not opts["json"]:
            self.stdout.write(f"load database {url}")
        self.stdout.write(json.dumps(result, indent=None if opts["json"] else 2))
