"""`make run`: start the dashboard, the Celery workers, beat, the built-in world and TensorBoard;
Ctrl-C stops all.

Each child runs in its own process group; its output is prefixed with its name and also written
to var/log/<name>.log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("WEBRL_HOST", "127.0.0.1")
PORT = int(os.environ.get("WEBRL_PORT", "8000"))
WORLD_INSTANCES = os.environ.get("WORLD_INSTANCES", "2")
# The world is served where the workers will look for it (settings' WORLD_URL default).
WORLD_PORT = str(
    urllib.parse.urlsplit(os.environ.get("WORLD_URL", "http://127.0.0.1:9400")).port or 9400
)
# Logs, the admin password file and beat's schedule (WEBRL_VAR_DIR: elsewhere, e.g. in a test).
VAR_DIR = Path(os.environ.get("WEBRL_VAR_DIR") or ROOT / "var")
LOG_DIR = VAR_DIR / "log"
TENSORBOARD_ROOT = Path(os.environ.get("TENSORBOARD_ROOT") or ROOT / "var" / "tensorboard")
TENSORBOARD_PORT = os.environ.get("WEBRL_TENSORBOARD_PORT", "6006")
OPTIONAL = {"tensorboard"}  # its exit (say, the port is taken) leaves the rest running
PASSWORD_FILE = VAR_DIR / "admin-password.txt"


def manage(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, check=check, text=True, capture_output=capture
    )


def has_command(name: str) -> bool:
    out = manage("help", "--commands", capture=True, check=False).stdout.split()
    return name in out


def celery(*args: str) -> list[str]:
    return [PY, "-m", "celery", "-A", "webrl_site", *args]


def services(with_world: bool) -> dict[str, list[str]]:
    procs = {
        "web": [PY, "-m", "daphne", "-b", HOST, "-p", str(PORT), "webrl_site.asgi:application"],
        "worker-default": celery(
            "worker", "-Q", "default", "-c", "1", "-n", "default@%h", "-l", "INFO"
        ),
        "worker-rollout": celery(
            "worker", "-Q", "rollout", "-c", "1", "-n", "rollout@%h", "-l", "INFO"
        ),
        "worker-gpu": celery("worker", "-Q", "gpu", "-c", "1", "-n", "gpu@%h", "-l", "INFO"),
        "beat": celery("beat", "-l", "INFO", "-s", str(VAR_DIR / "celerybeat-schedule")),
    }
    procs["tensorboard"] = [str(Path(PY).with_name("tensorboard")), "--logdir",
                            str(TENSORBOARD_ROOT), "--host", HOST, "--port", TENSORBOARD_PORT]  # fmt: skip
    if with_world:
        procs["world"] = [PY, "manage.py", "world", "serve", "--instances", WORLD_INSTANCES,
                          "--port", WORLD_PORT]  # fmt: skip
    return procs


def pump(name: str, proc: subprocess.Popen) -> None:
    with open(LOG_DIR / f"{name}.log", "a") as log:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            sys.stdout.write(f"{name:>15} | {line}")
            sys.stdout.flush()


def start(name: str, cmd: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    threading.Thread(target=pump, args=(name, proc), daemon=True).start()
    return proc


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_healthy(timeout: float) -> dict | None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{PORT}/healthz", timeout=3) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            last = json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(1)
    print(f"devserver: /healthz did not answer 200 within {timeout:.0f} s: {last}")
    return None


def admin_password() -> str:
    out = manage("bootstrap_admin", capture=True).stdout
    if "password" in out and "'" in out:
        password = out.rsplit("password", 1)[1].strip().strip("'")
        PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.write_text(password + "\n")
        PASSWORD_FILE.chmod(0o600)
        return password
    if PASSWORD_FILE.exists():
        return PASSWORD_FILE.read_text().strip()
    return "(set by an earlier install; reset it with `python manage.py changepassword admin`)"


def main() -> int:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    TENSORBOARD_ROOT.mkdir(parents=True, exist_ok=True)
    manage("check_services")
    password = admin_password()
    with_world = has_command("world")
    procs: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, cmd in services(with_world).items():
            procs[name] = start(name, cmd)
        if wait_healthy(120) is not None:
            for command in ("load_world_tasks", "launch_demo"):
                if has_command(command) and not stopping.is_set():
                    manage(command, check=False)
        print(
            f"\n  webrl is up: http://{HOST}:{PORT}/\n"
            f"  log in as admin / {password}\n"
            f"  TensorBoard: http://{HOST}:{TENSORBOARD_PORT}/ (--logdir {TENSORBOARD_ROOT})\n"
            f"  logs in {LOG_DIR}/; press Ctrl-C to stop everything\n",
            flush=True,
        )
        while not stopping.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None and name not in OPTIONAL:
                    print(
                        f"devserver: {name} exited with code {proc.returncode}; stopping (see {LOG_DIR}/{name}.log)"
                    )
                    stopping.set()
                    break
            stopping.wait(1)
    finally:
        print("devserver: stopping ...", flush=True)
        stop_all(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
