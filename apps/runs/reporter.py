"""The Django-backed reporter: metrics become MetricPoint rows, tracker points and live sends;
frames are throttled.

Sends go through `apps.runs.live` only, and never raise: a dead channel layer must not stop training.
Every metric point passes through `on_metrics`, which hands it to `apps.runs.trackers.report`.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable

from django.utils.html import format_html

from apps.runs import live, trackers
from apps.runs.dbretry import retrying
from apps.runs.models import Checkpoint, MetricPoint

log = logging.getLogger(__name__)
_COUNTERS = ("step", "total_steps")  # where a training stage is, not a metric to chart


def frame_html(slot: int, jpeg: bytes, caption: str = "") -> str:
    data = base64.b64encode(jpeg).decode("ascii")
    return format_html(
        '<figure id="slot-{}" class="slot" hx-swap-oob="true">'
        '<img alt="rollout slot {}" src="data:image/jpeg;base64,{}"><figcaption>{}</figcaption>'
        "</figure>",
        slot,
        slot,
        data,
        caption,
    )


def metrics_html(stage: str, data: dict) -> str:
    rows = "".join(
        str(format_html("<tr><th>{}</th><td>{}</td></tr>", k, _fmt(v))) for k, v in data.items()
    )
    return format_html(
        '<table id="stage-metrics-{}" class="metrics" hx-swap-oob="true">{}</table>',
        stage,
        _safe(rows),
    )


def event_html(text: str) -> str:
    return format_html('<li class="event">{}</li>', text)


def _safe(text: str):
    from django.utils.safestring import mark_safe

    return mark_safe(text)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class DjangoReporter:
    """Reporter for one stage of one phase: `on_metrics`, `on_frame`, `on_event`, `on_checkpoint`."""

    def __init__(
        self,
        run_id: int,
        phase_id: int | None,
        stage: str = "",
        *,
        frame_interval_s: float = 1.0,
        on_progress: Callable[[dict], None] | None = None,
    ):
        self.run_id = run_id
        self.phase_id = phase_id
        self.stage = stage
        self.frame_interval_s = frame_interval_s
        self.on_progress = on_progress
        self._last_frame: dict[int, float] = {}
        self._lock = threading.Lock()

    def on_metrics(
        self, metrics: dict, step: int, total: int | None = None, series: str = trackers.PHASE
    ) -> None:
        """Store every numeric metric as a MetricPoint, hand them to the run's experiment trackers
        and send them as one live fragment. `series` says what `step` counts: the phase index
        (`phase`) or a training stage's optimizer steps (`train`)."""
        numbers = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        retrying(MetricPoint.objects.bulk_create)(
            [
                MetricPoint(run_id=self.run_id, phase_id=self.phase_id, name=k, step=step, value=v)
                for k, v in numbers.items()
            ]
        )
        trackers.report(self.run_id, self.phase_id, numbers, step, series)
        self._send("metrics", {"html": metrics_html(self.stage, numbers), "data": numbers})
        if self.on_progress is not None:
            self.on_progress({"step": step, **numbers, **({"total": total} if total else {})})

    def on_train_step(self, prefix: str) -> Callable[[dict], None]:
        """An `on_step` callback for the trainer's `fit`: keys are namespaced `prefix/...`."""

        def on_step(metrics: dict) -> None:
            step = int(metrics.get("step", 0))
            total = metrics.get("total_steps")
            named = {f"{prefix}/{k}": v for k, v in metrics.items() if k not in _COUNTERS}
            self.on_metrics(named, step, int(total) if total else None, series=trackers.TRAIN)

        return on_step

    def frame_due(self, slot: int) -> bool:
        """True at most once per `frame_interval_s` per slot (checked before encoding a frame)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_frame.get(slot, -1e9) < self.frame_interval_s:
                return False
            self._last_frame[slot] = now
        return True

    async def aon_frame(self, slot: int, jpeg: bytes | None, caption: str = "") -> None:
        """The latest screenshot of a rollout slot, from the workers' event loop (throttled)."""
        if not jpeg or not self.frame_due(slot):
            return
        try:
            await live.asend_to_run(
                self.run_id, "frame", {"slot": slot, "html": frame_html(slot, jpeg, caption)}
            )
        except Exception as exc:  # the live view is best effort
            log.debug("frame send failed: %s", exc)

    def on_event(self, text: str, data: dict | None = None) -> None:
        self._send("event", {"html": event_html(text), "data": data or {}})

    def on_checkpoint(self, kind: str, path: str, step: int, metrics: dict, config: dict):
        """One Checkpoint row per (run, phase, kind): a re-run stage updates it in place."""
        ckpt, _ = retrying(Checkpoint.objects.update_or_create)(
            run_id=self.run_id,
            phase_id=self.phase_id,
            kind=kind,
            defaults={"path": path, "step": step, "metrics": metrics, "config": config},
        )
        self.on_event(f"{kind} checkpoint saved", {"kind": kind, "path": path})
        return ckpt

    def _send(self, event: str, payload: dict) -> None:
        try:
            live.send_to_run(self.run_id, event, payload)
        except Exception as exc:
            log.debug("live send failed: %s", exc)
