"""The curriculum's generators: the in-breadth prompt, backtick extraction, the offline generator
over real world templates, and the LLM generator against a real HTTP server with a tiny model."""

from __future__ import annotations

import random

import pytest

from sandbox.instance import seed_world
from sandbox.tasks import all_templates, build_config, load_tasks
from tests.curriculum.tinylm import as_chat, serving, train_memorizer
from trainer.curriculum.generators import (
    BreadthGenerator,
    CurriculumError,
    OfflineGenerator,
    Seed,
    build_breadth_prompt,
    extract_backticked,
    hf_complete,
    rephrase,
    site_root,
)
from trainer.serve.hf import HFGenerator
from trainer.serve.openai_client import OpenAIChat
from trainer.serve.sampling import Decoding, GenerationError

REDDIT_FAILS = [
    "Open the most upvoted post in the books forum",
    "How many comments does the newest post in gaming have?",
]
REDDIT_REPLY = "- `Find the newest post in the books forum`\n- `Upvote the top post in gaming`\n"


def reddit_seed(intent: str, key: str, start_url: str = "__REDDIT__/f/books") -> Seed:
    return Seed(key, {"intent": intent, "sites": ["reddit"], "start_url": start_url})


def test_the_breadth_prompt_lists_every_seed_in_backticks_and_names_the_site():
    prompt = build_breadth_prompt("gitlab", ["Star the project a11y", "Close issue 4"])
    assert "- `Star the project a11y`\n- `Close issue 4`" in prompt
    assert "(gitlab)" in prompt
    assert prompt.endswith("#New Tasks#\n")


def test_it_extracts_backticked_spans_and_ignores_short_and_repeated_ones():
    reply = (
        "Sure!\n- `Find the cheapest lamp`\n- `ok`\n`Find the cheapest  lamp` and `List my orders`"
    )
    assert extract_backticked(reply) == ["Find the cheapest lamp", "List my orders"]
    assert extract_backticked("no tasks here") == []
    assert extract_backticked("") == []


def test_site_root_keeps_only_the_site_part_of_a_start_url():
    assert site_root("__SHOPPING_ADMIN__/admin/orders?x=1") == "__SHOPPING_ADMIN__"
    assert site_root("http://127.0.0.1:9411/f/books") == "http://127.0.0.1:9411"


def test_rephrase_rewords_questions_and_leaves_unknown_shapes_alone():
    assert rephrase("What is the price of the Oak Lamp?") == "Tell me the price of the Oak Lamp."
    assert rephrase("How many posts are in books?") == "Count how many posts are in books."
    assert rephrase("Upvote the post") is None


def reddit_count_seed() -> tuple[Seed, dict]:
    """A real train task of the world whose intent the paraphrase rules can reword."""
    for config in load_tasks("train"):
        if config["sites"] == ["reddit"] and rephrase(config["intent"]):
            return Seed(f"sandbox:train:{config['task_id']}", config), config
    raise AssertionError("the world has no rewordable reddit train task")


def test_the_offline_generator_evolves_a_failed_task_through_world_templates():
    state = seed_world()
    gen = OfflineGenerator(all_templates(), state, build_config=build_config, per_seed=2)
    seed, seed_config = reddit_count_seed()
    template_id = seed_config["intent_template_id"]
    out = gen.generate([seed], random.Random(0))
    hows = [c.how for c in out]
    assert 1 <= hows.count("instantiate") <= 2
    assert hows.count("rephrase") == 1
    assert 1 <= hows.count("sibling") <= 2
    reddit_ids = {t.id for t in all_templates() if t.sites == ("reddit",)}
    for c in out:
        assert c.parent_keys == [seed.key]
        assert c.has_evaluator and c.template_id in reddit_ids
        assert c.config["eval"]["eval_types"] and c.config["oracle"]
        assert c.config["start_url"].startswith("__REDDIT__")
        assert c.config["task_id"] is None and "split" not in c.config
    fresh = [c for c in out if c.how == "instantiate"]
    for c in fresh:
        assert c.template_id == template_id
        assert c.config["instantiation_dict"] != seed_config["instantiation_dict"]
    assert all(c.template_id != template_id for c in out if c.how == "sibling")
    reworded = next(c for c in out if c.how == "rephrase")
    assert reworded.intent == rephrase(seed_config["intent"])
    assert reworded.config["eval"] == seed_config["eval"]


def test_the_offline_generator_skips_seeds_without_a_known_template():
    gen = OfflineGenerator(all_templates(), seed_world(), build_config=build_config)
    assert gen.generate([reddit_seed("Write a poem", "x")], random.Random(0)) == []


@pytest.fixture(scope="module")
def tiny_model():
    pairs = [(build_breadth_prompt("reddit", REDDIT_FAILS), REDDIT_REPLY)]
    return train_memorizer(pairs + as_chat(pairs))


@pytest.fixture(scope="module")
def tiny_server(tiny_model):
    with serving(*tiny_model) as url:
        yield url


def test_the_llm_generator_takes_tasks_from_a_real_openai_compatible_server(tiny_server):
    client = OpenAIChat(tiny_server, temperature=0.0, max_tokens=64)
    gen = BreadthGenerator(client, name="openai", seeds_per_call=10, calls_per_site=1)
    seeds = [reddit_seed(t, f"k{i}") for i, t in enumerate(REDDIT_FAILS)]
    out = gen.generate(seeds, random.Random(0))
    # The seed order is sampled; the tiny model learned one order, so accept what it wrote.
    intents = [c.intent for c in out]
    assert set(intents) <= {
        "Find the newest post in the books forum",
        "Upvote the top post in gaming",
    }
    assert client.model == "tiny"
    if intents:
        c = out[0]
        assert c.how == "llm" and not c.has_evaluator and c.template_id is None
        assert c.config["sites"] == ["reddit"] and c.config["start_url"] == "__REDDIT__"
        assert sorted(c.parent_keys) == ["k0", "k1"]
        assert c.config["eval"]["reference_answers"] == {"exact_match": "N/A"}
    assert gen.settings()["model"] == "tiny"


def test_the_llm_generator_reproduces_the_learned_reply_for_the_learned_prompt(tiny_server):
    client = OpenAIChat(tiny_server, temperature=0.0, max_tokens=64)
    (reply,) = client([build_breadth_prompt("reddit", REDDIT_FAILS)])
    assert extract_backticked(reply) == [
        "Find the newest post in the books forum",
        "Upvote the top post in gaming",
    ]


def test_a_dead_endpoint_raises_a_clear_curriculum_error():
    client = OpenAIChat("http://127.0.0.1:9", timeout=2.0, model="m")
    with pytest.raises(GenerationError, match="unreachable"):
        client(["hello"])
    gen = BreadthGenerator(client, name="openai")
    with pytest.raises(CurriculumError, match="openai: .*unreachable"):
        gen.generate([reddit_seed("Open the books forum", "a")], random.Random(0))


def test_a_generator_with_the_wrong_number_of_replies_is_an_error():
    gen = BreadthGenerator(lambda prompts: [], name="broken")
    with pytest.raises(CurriculumError, match="replies"):
        gen.generate([reddit_seed("Open the books forum", "a")], random.Random(0))


def test_the_hf_generator_takes_tasks_from_a_local_model_through_the_generation_interface(
    tiny_model,
):
    model, tokenizer = tiny_model
    hf = HFGenerator(model, tokenizer, Decoding(temperature=0.0, max_tokens=64), max_seq_len=2048)
    gen = BreadthGenerator(hf_complete(hf), name="hf", seeds_per_call=10, calls_per_site=2)
    seeds = [reddit_seed(t, f"k{i}") for i, t in enumerate(REDDIT_FAILS)]
    out = gen.generate(seeds, random.Random(0))
    intents = {c.intent for c in out}
    assert intents <= {"Find the newest post in the books forum", "Upvote the top post in gaming"}
    # Two calls with two seeds: at least one shows them in the learned order.
    assert intents == {"Find the newest post in the books forum", "Upvote the top post in gaming"}
    assert all(c.how == "llm" and sorted(c.parent_keys) == ["k0", "k1"] for c in out)
    assert gen.settings() == {"seeds_per_call": 10, "calls_per_site": 2}
