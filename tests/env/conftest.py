"""Fixtures for browser tests: static servers on 127.0.0.1 and one BrowserPool per module."""

from __future__ import annotations

import asyncio
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PAGES = Path(__file__).parent / "pages"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class StaticServer:
    def __init__(self, root: Path):
        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
        )
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pages():
    server = StaticServer(PAGES)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_site():
    server = StaticServer(PAGES)
    yield server
    server.stop()


class Env:
    """An event loop and a started pool shared by a module's tests."""

    def __init__(self, contexts: int = 2):
        from trainer.env.pool import BrowserPool

        self.loop = asyncio.new_event_loop()
        self.pool = BrowserPool(contexts=contexts)
        self.run(self.pool.start())

    def run(self, coro, timeout: float = 120):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self):
        self.run(self.pool.close())
        self.loop.close()


@pytest.fixture(scope="module")
def env():
    e = Env()
    yield e
    e.close()
