"""The SVG charts: ticks, axes with units, escaping, thinning and grouping of metric names."""

from __future__ import annotations

from apps.dashboard.charts import line_chart, nice_ticks, run_charts, thin


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0, 100) == [0, 25, 50, 75, 100]
    assert nice_ticks(0, 1) == [0, 0.25, 0.5, 0.75, 1]
    ticks = nice_ticks(0.13, 0.87)
    assert ticks[0] <= 0.13 and ticks[-1] >= 0.87
    assert nice_ticks(5, 5)[0] <= 5 <= nice_ticks(5, 5)[-1]


def test_a_chart_has_axes_units_and_one_line_per_series():
    svg = line_chart(
        {"overall": [(0, 10.0), (1, 20.0)], "reddit": [(0, 5.0)]},
        title="Success",
        y_label="success (%)",
    )
    assert svg.count("<polyline") == 2 and 'class="axis"' in svg
    assert "success (%)" in svg and ">step<" in svg and "reddit (5)" in svg


def test_an_empty_chart_says_so():
    assert "no data yet" in line_chart({}, title="Losses", y_label="loss")


def test_metric_names_and_titles_are_escaped():
    svg = line_chart({"<script>x</script>": [(0, 1.0)]}, title="<b>t</b>", y_label="y")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg


def test_long_series_are_thinned_keeping_the_last_point():
    points = [(float(i), float(i)) for i in range(10_000)]
    kept = thin(points, 100)
    assert len(kept) == 100 and kept[-1] == points[-1] and kept[0] == points[0]


def test_run_charts_group_metrics_and_show_rates_in_percent():
    charts = run_charts(
        [
            ("eval/success_rate", 0, 0.5),
            ("eval/success_rate/map", 0, 0.25),
            ("loss/critic", 3, 0.7),
            ("rollout/steps_per_s", 1, 12.0),
            ("orm/accuracy", 2, 0.8),
            ("orm_heldout/balanced_accuracy/near_miss", 0, 0.75),
            ("orm_heldout/accuracy/near_miss", 0, 0.6),
            ("other/ignored", 0, 1.0),
            ("loss/actor", 4, float("nan")),
        ]  # fmt: skip
    )
    success, orm, heldout, losses, throughput = charts
    assert "overall (50)" in success and "map (25)" in success
    assert "overall (80)" in orm
    assert "near_miss (75)" in heldout and "60" not in heldout
    assert "critic (0.7)" in losses and "actor" not in losses
    assert "steps / s" in throughput and "ignored" not in "".join(charts)
