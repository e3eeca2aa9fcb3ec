"""Serve the world: a control API plus one uvicorn server per (instance, site), on one asyncio loop.

Control API on `port`: GET /healthz, GET /instances, GET /instances/{i}, POST /instances/{i}/reset.
/healthz and /instances also say which seed the world was built from.
Instance i, site k (order of SITES) listens on port + 10 + 10*i + k.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sandbox import DEFAULT_SEED
from sandbox.instance import Instance, seed_world, site_modules, site_urls, snapshot
from sandbox.web import STATIC_DIR, agent_session_id, not_found, session_cookie

log = logging.getLogger(__name__)


class World:
    """N instances built from one seed snapshot."""

    def __init__(
        self,
        instances: int,
        port: int,
        host: str = "127.0.0.1",
        seed: int = DEFAULT_SEED,
        public_host: str | None = None,
    ):
        if instances < 1:
            raise ValueError("instances must be at least 1")
        self.port = port
        self.host = host
        self.seed = seed
        """Where the servers listen."""
        self.public_host = public_host or host
        """The host name in the URLs and cookies handed to agents (a compose service name)."""
        self.modules = site_modules()
        self.blob = snapshot(seed_world(seed))
        self.instances = [
            Instance(i, self.blob, site_urls(self.public_host, port, i, list(self.modules)))
            for i in range(instances)
        ]

    def describe(self, index: int) -> dict:
        inst = self.instances[index]
        return {
            "index": index,
            "urls": inst.urls,
            "storage_state": self.storage_state(index),
            "allowed_origins": list(inst.urls.values()),
        }

    def storage_state(self, index: int) -> dict:
        """Playwright storage_state with the agent's permanent session cookie for every site."""
        cookies = []
        for site in self.instances[index].urls:
            if getattr(self.modules[site], "AGENT_USER", None) is None:
                continue
            cookies.append(
                {
                    "name": session_cookie(site),
                    "value": agent_session_id(site),
                    "domain": self.public_host,
                    "path": "/",
                    "expires": -1,
                    "httpOnly": False,
                    "secure": False,
                    "sameSite": "Lax",
                }
            )
        return {"cookies": cookies, "origins": []}


def _error_page(status: int, text: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{status}</title><h1>{text}</h1>", status_code=status
    )


def site_app(world: World, index: int, site: str) -> Starlette:
    """The Starlette app of one site of one instance."""

    async def on_404(request: Request, exc: Exception) -> HTMLResponse:
        return not_found(request)

    async def on_http(request: Request, exc: HTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return not_found(request)
        return _error_page(exc.status_code, exc.detail)

    async def on_500(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("error in %s instance %d: %s", site, index, exc)
        return _error_page(500, "Something went wrong.")

    routes = list(world.modules[site].routes())
    routes.append(Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"))
    app = Starlette(
        routes=routes,
        exception_handlers={404: on_404, HTTPException: on_http, 500: on_500},
    )
    app.state.instance = world.instances[index]
    app.state.site = site
    return app


def control_app(world: World) -> Starlette:
    """The JSON control API of the world."""

    def lookup(request: Request) -> int | None:
        try:
            index = int(request.path_params["index"])
        except ValueError:
            return None
        return index if 0 <= index < len(world.instances) else None

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "instances": len(world.instances), "seed": world.seed})

    async def instances(request: Request) -> JSONResponse:
        items = [{"index": i.index, "urls": i.urls} for i in world.instances]
        return JSONResponse({"count": len(items), "instances": items, "seed": world.seed})

    async def instance(request: Request) -> JSONResponse:
        index = lookup(request)
        if index is None:
            return JSONResponse({"error": "no such instance"}, status_code=404)
        return JSONResponse(world.describe(index))

    async def reset(request: Request) -> JSONResponse:
        index = lookup(request)
        if index is None:
            return JSONResponse({"error": "no such instance"}, status_code=404)
        started = time.perf_counter()
        world.instances[index].reset()
        return JSONResponse({"ok": True, "ms": (time.perf_counter() - started) * 1000})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/instances", instances),
            Route("/instances/{index}", instance),
            Route("/instances/{index}/reset", reset, methods=["POST"]),
        ]
    )


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (many share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _server(app: Starlette, host: str, port: int) -> _Server:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return _Server(config)


async def serve_async(
    world: World, stop: asyncio.Event, ready: threading.Event | None = None
) -> None:
    """Run every server of `world` until `stop` is set."""
    servers = [_server(control_app(world), world.host, world.port)]
    for inst in world.instances:
        for site, url in inst.urls.items():
            port = int(url.rsplit(":", 1)[1])
            servers.append(_server(site_app(world, inst.index, site), world.host, port))
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            for s in servers:
                s.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            raise RuntimeError(f"world server could not start (ports from {world.port} in use?)")
        await asyncio.sleep(0.02)
    if ready is not None:
        ready.set()
    await stop.wait()
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)


def serve(
    instances: int = 1,
    port: int = 9400,
    host: str = "127.0.0.1",
    seed: int = DEFAULT_SEED,
    public_host: str | None = None,
) -> None:
    """Serve the world in the foreground until SIGINT/SIGTERM (`python manage.py world serve`)."""
    world = World(instances, port, host, seed, public_host=public_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_async(world, stop)

    asyncio.run(main())


class WorldThread:
    """The world served from a background thread (for tests and commands that need one)."""

    def __init__(
        self,
        instances: int = 1,
        port: int = 9400,
        host: str = "127.0.0.1",
        seed: int = DEFAULT_SEED,
        public_host: str | None = None,
    ):
        self.world = World(instances, port, host, seed, public_host=public_host)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="sandbox-world")

    @property
    def url(self) -> str:
        return f"http://{self.world.host}:{self.world.port}"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_async(self.world, self._stop, self._ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    def start(self, timeout: float = 30.0) -> WorldThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("world server did not start in time")
        if self._error is not None:
            raise RuntimeError(str(self._error)) from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> WorldThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port_block(size: int = 40) -> int:
    """A base port with `size` free ports above it on 127.0.0.1 (for worlds in tests and
    commands that must not collide with another world on this machine)."""
    for _ in range(50):
        base = random.randint(20_000, 60_000)
        socks = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports on 127.0.0.1")
