"""A small HTTP client for the world's control API (`sandbox.server`)."""

from __future__ import annotations

import httpx


class WorldError(RuntimeError):
    """The world server is unreachable or answered with an error."""


class WorldClient:
    """Talks to `GET /instances`, `GET /instances/{i}`, `POST /instances/{i}/reset`."""

    def __init__(self, base_url: str = "http://127.0.0.1:9400", timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._cache: dict[int, dict] = {}

    def _get(self, path: str) -> dict:
        try:
            response = self._http.get(path)
        except httpx.HTTPError as exc:
            raise WorldError(f"world at {self.base_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise WorldError(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    def healthy(self) -> bool:
        try:
            return bool(self._get("/healthz").get("ok"))
        except WorldError:
            return False

    def instances(self) -> int:
        return int(self._get("/instances")["count"])

    def seed(self) -> int:
        """The seed the world was built from (`world serve --seed N`)."""
        return int(self._get("/healthz").get("seed", 0))

    def describe(self, instance: int) -> dict:
        if instance not in self._cache:
            self._cache[instance] = self._get(f"/instances/{instance}")
        return self._cache[instance]

    def reset(self, instance: int) -> None:
        self.reset_ms(instance)

    def reset_ms(self, instance: int) -> float:
        """Reset and return how long the server took to replace the state, in milliseconds."""
        try:
            response = self._http.post(f"/instances/{instance}/reset")
        except httpx.HTTPError as exc:
            raise WorldError(f"world at {self.base_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise WorldError(f"reset {instance}: HTTP {response.status_code}")
        return float(response.json()["ms"])

    def site_urls(self, instance: int) -> dict[str, str]:
        return dict(self.describe(instance)["urls"])

    def storage_state(self, instance: int) -> dict:
        return self.describe(instance)["storage_state"]

    def allowed_origins(self, instance: int) -> list[str]:
        return list(self.describe(instance)["allowed_origins"])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WorldClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
