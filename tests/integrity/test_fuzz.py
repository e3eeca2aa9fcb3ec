"""Fuzzed model outputs through the parser (many) and through real episodes on a live page (a
sample; `manage.py fuzz_actions` runs 10,000): nothing but a ParseError or a step error comes out."""

from __future__ import annotations

import asyncio

import pytest

from trainer.bench.fuzz import fuzz_outputs, parse_all


def test_twenty_thousand_fuzzed_outputs_parse_or_are_refused_without_an_exception():
    counts = parse_all(fuzz_outputs(seed=7), 20_000)
    assert counts["tried"] == 20_000
    assert counts["actions"] > 2_000 and counts["parse_errors"] > 2_000  # both kinds exercised


def test_the_fuzz_stream_holds_the_hostile_cases():
    outputs = fuzz_outputs(seed=3)
    sample = [next(outputs) for _ in range(5_000)]
    assert any("\x00" in s for s in sample)
    assert any(len(s) > 20_000 for s in sample)
    assert any(s.startswith("do(do(do(") for s in sample)


@pytest.mark.browser
def test_fuzzed_outputs_run_through_live_episodes_without_an_unhandled_error():
    from sandbox.fuzz import fuzz_live

    counts = asyncio.run(fuzz_live(300, seed=11, steps_per_episode=30))
    assert counts["tried"] >= 300 and counts["executed"] > 30, counts
    assert counts["unhandled"] == 0, counts["unhandled_errors"]


def test_the_fuzz_command_names_a_missing_browser():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no Chromium at /nonexistent/chromium"):
        call_command("fuzz_actions", "--inputs", "1", "--chromium", "/nonexistent/chromium")
