"""Launches `vllm serve MODEL_DIR` as a subprocess for the policy and stops it (the `gpu` extra)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from trainer.serve.sampling import GenerationError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class VllmServer:
    """Starts `vllm serve MODEL_DIR` on 127.0.0.1 and stops it; a context manager."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 900.0,
        executable: str = "vllm",
    ) -> None:
        self.model_dir = str(model_dir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.executable = executable
        self.process: subprocess.Popen | None = None
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> VllmServer:
        exe = shutil.which(self.executable)
        if exe is None:
            raise GenerationError(
                f"{self.executable!r} is not installed; install the 'gpu' extra or use rollout.backend 'hf'"
            )
        if not Path(self.model_dir).is_dir():
            raise GenerationError(f"model directory {self.model_dir!r} does not exist")
        cmd = [
            exe,
            "serve",
            self.model_dir,
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-500:]
                raise GenerationError(
                    f"vllm serve exited with code {self.process.returncode}: {err}"
                )
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise GenerationError(f"vllm serve did not answer within {self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
