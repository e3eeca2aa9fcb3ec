"""The one module that sends live updates to a run's channel group (`run-<id>`)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def group_name(run_id: int) -> str:
    return f"run-{run_id}"


def send_to_run(run_id: int, event: str, payload: dict) -> None:
    """Send `{"type": "run.<event>", ...payload}` from sync code (views, Celery tasks)."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group_name(run_id), {"type": f"run.{event}", **payload})


async def asend_to_run(run_id: int, event: str, payload: dict) -> None:
    """The same from async code (the rollout workers' event loop)."""
    layer = get_channel_layer()
    if layer is None:
        return
    await layer.group_send(group_name(run_id), {"type": f"run.{event}", **payload})
