"""The run page's websocket: joins `run-<id>` and forwards rendered fragments; no DB writes."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.runs.live import group_name


@database_sync_to_async
def _run_visible(user, run_id: int) -> bool:
    from apps.dashboard.permissions import can_read
    from apps.runs.models import Run

    return can_read(user) and Run.objects.filter(pk=run_id).exists()


class RunConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        user = self.scope.get("user")
        if user is None or not await _run_visible(user, self.run_id):
            await self.close(code=4403)
            return
        self.group = group_name(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_frame(self, event):
        await self.send_json(
            {"event": "frame", "html": event.get("html", ""), "slot": event.get("slot")}
        )

    async def run_metrics(self, event):
        await self.send_json(
            {"event": "metrics", "html": event.get("html", ""), "data": event.get("data")}
        )

    async def run_event(self, event):
        await self.send_json(
            {"event": "status", "html": event.get("html", ""), "data": event.get("data")}
        )
