"""Server-rendered SVG line charts with axes, ticks, units and a legend; no JavaScript, no library.

Also the metric names the run page plots (`CHARTS`), grouped by prefix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# (chart id, title, metric-name prefix, y-axis label with unit, fixed y range or None)
CHARTS: tuple[tuple[str, str, str, str, tuple[float, float] | None], ...] = (
    ("success", "Test success rate", "eval/success_rate", "success (%)", (0.0, 100.0)),
    ("orm", "ORM accuracy vs ground truth", "orm/accuracy", "accuracy (%)", (0.0, 100.0)),
    (
        "orm_heldout",
        "ORM balanced accuracy, held-out test tasks",
        "orm_heldout/balanced_accuracy",
        "balanced accuracy (%)",
        (0.0, 100.0),
    ),
    ("losses", "Losses", "loss/", "loss", None),
    ("throughput", "Rollout throughput", "rollout/steps_per_s", "steps / s", None),
)
PERCENT_PREFIXES = ("eval/success_rate", "orm/accuracy", "orm_heldout/balanced_accuracy")
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")
WIDTH, HEIGHT = 520, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 26, 42
MAX_POINTS = 400  # per series; longer series are thinned evenly (the last point always kept)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5, 5 × 10^k steps)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:.3g}"


def thin(
    points: Sequence[tuple[float, float]], limit: int = MAX_POINTS
) -> list[tuple[float, float]]:
    if len(points) <= limit:
        return list(points)
    stride = len(points) / (limit - 1)
    kept = [points[int(i * stride)] for i in range(limit - 1)]
    kept.append(points[-1])
    return kept


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    y_label: str,
    x_label: str = "step",
    y_range: tuple[float, float] | None = None,
    chart_id: str = "chart",
    height: int = HEIGHT,
) -> SafeString:
    """An SVG with one polyline per series; labels are escaped, so metric names cannot inject markup.
    A taller `height` leaves room for a long legend."""
    series = {name: thin(sorted(pts)) for name, pts in series.items() if pts}
    head = (
        f'<svg class="chart" id="chart-{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>'
    )
    if not series:
        return mark_safe(
            head
            + f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" class="chart-empty">'
            "no data yet</text></svg>"
        )
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(*(y_range or (min(ys), max(ys))))
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    parts = [head]
    for t in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
        )
    for t in x_ticks:
        parts.append(
            f'<text x="{px(t):.1f}" y="{TOP + plot_h + 15}" text-anchor="middle" class="tick">'
            f"{_fmt(t)}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" class="axis"/>'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" class="axis"/>'
        f'<text x="{LEFT + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="axis-label">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'class="axis-label">{escape(y_label)}</text>'
    )
    legend_x = LEFT + 8
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.8">'
            f"<title>{escape(name)}</title></polyline>"
        )
        if len(pts) == 1:
            x, y = pts[0]
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        parts.append(
            f'<text x="{legend_x}" y="{TOP + 12 + 13 * i}" class="legend" fill="{color}">'
            f"{escape(name)} ({_fmt(pts[-1][1])})</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def run_charts(points: Iterable[tuple[str, int, float]]) -> list[SafeString]:
    """The run page's charts from (metric name, step, value) rows; rates shown in percent."""
    grouped: dict[str, dict[str, list[tuple[float, float]]]] = {c[0]: {} for c in CHARTS}
    for name, step, value in points:
        if value is None or not math.isfinite(value):
            continue
        for chart_id, _title, prefix, _unit, _range in CHARTS:
            if name == prefix or name.startswith(prefix if prefix.endswith("/") else prefix + "/"):
                label = name[len(prefix) :].strip("/") or "overall"
                shown = value * 100.0 if prefix in PERCENT_PREFIXES else value
                grouped[chart_id].setdefault(label, []).append((float(step), shown))
                break
    return [
        line_chart(grouped[chart_id], title=title, y_label=unit, y_range=y_range, chart_id=chart_id)
        for chart_id, title, _prefix, unit, y_range in CHARTS
    ]
