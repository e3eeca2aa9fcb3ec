"""Valid-action decoding (`rollout.decoding="valid_actions"`): HF generation through a token trie and
the OpenAI-compatible server's choice list, with a tiny model of random weights."""

import re

import httpx
import pytest
import torch

from tests.trainer.helpers import PAGES, tiny_config
from trainer.env.actions import Action, Kind, parse_action
from trainer.env.valid_actions import page_elements, valid_actions
from trainer.learn.models import build_tiny_llama, load_tokenizer, save_model
from trainer.learn.tokenizer import encode_prompt, eot_id
from trainer.prompts import build_agent_prompt
from trainer.serve.constrained import TokenTrie, choice_trie
from trainer.serve.hf import HFGenerator
from trainer.serve.openai_client import OpenAIGenerator
from trainer.serve.sampling import Decoding
from trainer.serve.server import serve_in_thread

STEPS = [
    ("shop", 'Search for "blue socks" under $25'),
    ("forum", "Open the lamps forum and tell me who posted first"),
    ("map", "Route to Boston from jonas.weber/home"),
]


def _source_span(arg: str, source: str) -> bool:
    """`arg` occurs in `source` starting and ending at a word boundary (space, quote, / # $ or
    punctuation)."""
    edge = r"[\s/#$\"'.,;:!?()]"
    return re.search(rf"(^|{edge}){re.escape(arg)}($|{edge})", source) is not None


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory, sft_dir):
    """A tiny Llama with random weights and the session's tokenizer."""
    config = tiny_config()
    tok = load_tokenizer(sft_dir)
    out = tmp_path_factory.mktemp("random")
    save_model(build_tiny_llama(config.model, tok, config.engine.max_seq_len, seed=3), tok, out)
    return str(out)


@pytest.fixture(scope="module")
def cases():
    out = []
    for site, intent in STEPS:
        html = PAGES[site]
        out.append(
            (build_agent_prompt(intent, [], html), intent, html, valid_actions(intent, html))
        )
    return out


def _generator(model_dir, **decoding):
    return HFGenerator.from_dir(model_dir, tiny_config(), Decoding(max_tokens=96, **decoding))


def test_every_sampled_action_is_valid_on_its_page(random_dir, cases):
    gen = _generator(random_dir, temperature=1.0, top_p=0.9)
    prompts = [c[0] for c in cases] * 4
    choices = [c[3] for c in cases] * 4
    samples = gen.sample(prompts, choices=choices)
    kinds = set()
    for (_, intent, html, allowed), s in zip(cases * 4, samples, strict=True):
        assert s.text in allowed and s.finish_reason == "stop"
        action = parse_action(s.text)
        assert isinstance(action, Action), s.text
        kinds.add(action.kind)
        elements = {el.id: el for el in page_elements(html)[0]}
        if action.element is not None:
            assert action.element in elements, s.text
        if action.kind in (Kind.TYPE, Kind.SEARCH):
            assert _source_span(action.argument, intent), s.text
        if action.kind == Kind.SELECT:
            assert action.argument in elements[action.element].options
        if action.kind == Kind.EXIT:
            page_text = " ".join(page_elements(html)[1])
            assert (action.argument in ("", *map(str, range(11)))
                    or _source_span(action.argument, intent)
                    or _source_span(action.argument, page_text)), s.text  # fmt: skip
    assert len(kinds) >= 2  # random weights wander over the set, not one fixed answer


def test_the_recorded_logprobs_are_the_unconstrained_models(random_dir, cases):
    gen = _generator(random_dir, temperature=1.0, top_p=0.9)
    samples = gen.sample([c[0] for c in cases], choices=[c[3] for c in cases])
    model, tok = gen.model, gen.tokenizer
    constrained_mass = []
    for (prompt, *_), s in zip(cases, samples, strict=True):
        ids = encode_prompt(tok, prompt)
        full = [*s.token_ids, eot_id(tok)]
        with torch.no_grad():
            lp = model(input_ids=torch.tensor([ids + full])).logits[0].log_softmax(-1)  # [T, V]
        rescored = [lp[len(ids) - 1 + i, t].item() for i, t in enumerate(s.token_ids)]
        assert rescored == pytest.approx(s.logprobs, abs=1e-4)
        constrained_mass.append(sum(s.logprobs))
    # Renormalised over the allowed tokens, a forced token would score 0; the model's own do not.
    assert min(constrained_mass) < -1.0


def test_greedy_takes_the_likeliest_allowed_token_at_every_step(random_dir, cases):
    gen = _generator(random_dir, temperature=0.0)
    prompt, _, _, allowed = cases[0]
    (s,) = gen.sample([prompt], choices=[allowed])
    trie = choice_trie(gen.tokenizer, allowed, gen.eot, 96)
    ids = encode_prompt(gen.tokenizer, prompt)
    full = [*s.token_ids, gen.eot]
    with torch.no_grad():
        logits = gen.model(input_ids=torch.tensor([ids + full])).logits[0]  # [T, V]
    for i, token in enumerate(full):
        options = trie.allowed(full[:i])
        row = logits[len(ids) - 1 + i]
        assert token == max(options, key=lambda t: row[t].item())


def test_a_row_without_choices_decodes_freely_beside_a_constrained_one(random_dir, cases):
    gen = _generator(random_dir, temperature=0.0)
    free_alone = gen.sample([cases[1][0]])[0]
    mixed = gen.sample([cases[0][0], cases[1][0]], choices=[cases[0][3], None])
    assert mixed[0].text in cases[0][3]
    assert mixed[1].token_ids == free_alone.token_ids


def test_choices_longer_than_the_token_budget_are_left_out(sft_dir):
    tok = load_tokenizer(sft_dir)
    trie = choice_trie(tok, ['exit(message="")', 'exit(message="' + "word " * 40 + '")'], 7, 20)
    assert trie.size == 1
    assert isinstance(TokenTrie().allowed([1]), type(None))


@pytest.fixture(scope="module")
def server(random_dir):
    with serve_in_thread(random_dir, config=tiny_config(), name="random") as running:
        yield running


def test_the_server_answers_with_one_of_the_requests_choices(server, cases):
    prompt, _, _, allowed = cases[0]
    for field in ({"structured_outputs": {"choice": allowed}}, {"guided_choice": allowed}):
        body = {"prompt": prompt, "max_tokens": 96, "temperature": 1.0, "logprobs": 1, **field}
        reply = httpx.post(f"{server.url}/v1/completions", json=body, timeout=120).json()
        assert reply["choices"][0]["text"] in allowed
    bad = {"prompt": prompt, "structured_outputs": {"choice": "exit"}}
    resp = httpx.post(f"{server.url}/v1/completions", json=bad, timeout=30)
    assert resp.status_code == 400 and "choice" in resp.json()["error"]["message"]


def test_the_openai_client_sends_each_prompts_choices_and_gets_the_hf_tokens(
    server, random_dir, cases
):
    prompts, choices = [c[0] for c in cases], [c[3] for c in cases]
    local = _generator(random_dir, temperature=0.0).sample(prompts, choices=choices)
    client = OpenAIGenerator(server.url, decoding=Decoding(temperature=0.0, max_tokens=96))
    remote = client.generate(prompts, choices)
    assert [r.text for r in remote] == [s.text for s in local]
    assert all(r.text in c for r, c in zip(remote, choices, strict=True))
    assert [r.token_ids for r in remote] == [s.token_ids for s in local]
    for r, s in zip(remote, local, strict=True):
        assert r.logprobs == pytest.approx(s.logprobs, abs=1e-4)
