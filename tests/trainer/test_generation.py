import os
import stat
import sys

import httpx
import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.tokenizer import encode_prompt
from trainer.serve.hf import HFGenerator
from trainer.serve.openai_client import OpenAIGenerator, parse_token_id
from trainer.serve.sampling import Decoding, GenerationError
from trainer.serve.server import serve_in_thread
from trainer.serve.vllm import VllmServer


@pytest.fixture(scope="module")
def prompts():
    return [s["observation"] for s in make_steps(3)][:3]


@pytest.fixture(scope="module")
def server(sft_dir):
    with serve_in_thread(sft_dir, config=tiny_config(), name="tiny") as running:
        yield running


def test_hf_token_ids_decode_to_the_text_and_logprobs_score_those_ids(sft_dir, prompts):
    gen = HFGenerator.from_dir(
        sft_dir, tiny_config(), Decoding(temperature=1.0, top_p=0.9, max_tokens=10)
    )
    samples = gen.sample(prompts)
    model, tok = load_causal_lm(sft_dir), load_tokenizer(sft_dir)
    for prompt, s in zip(prompts, samples, strict=True):
        assert tok.decode(s.token_ids) == s.text and len(s.logprobs) == len(s.token_ids)
        ids = encode_prompt(tok, prompt)
        with torch.no_grad():
            lp = model(input_ids=torch.tensor([ids + s.token_ids])).logits[0].log_softmax(-1)
        rescored = [lp[len(ids) - 1 + i, t].item() for i, t in enumerate(s.token_ids)]
        assert rescored == pytest.approx(s.logprobs, abs=1e-4)


def test_greedy_decoding_is_repeatable_and_stop_strings_cut_the_text(sft_dir, prompts):
    gen = HFGenerator.from_dir(sft_dir, tiny_config(), Decoding(temperature=0.0, max_tokens=12))
    first = gen.sample(prompts[:1])[0]
    assert gen.sample(prompts[:1])[0].token_ids == first.token_ids
    assert len(first.text) >= 4 and len(first.token_ids) <= 12
    stop = first.text[2:4]
    cut = gen.sample(prompts[:1], Decoding(temperature=0.0, max_tokens=12, stop=(stop,)))[0]
    assert cut.finish_reason == "stop" and cut.text == first.text[: first.text.index(stop)]
    assert (
        gen.tokenizer.decode(cut.token_ids) == cut.text[: len(gen.tokenizer.decode(cut.token_ids))]
    )


def test_the_openai_client_gets_the_same_greedy_tokens_from_the_local_server(
    server, sft_dir, prompts
):
    local = HFGenerator.from_dir(
        sft_dir, tiny_config(), Decoding(temperature=0.0, max_tokens=8)
    ).sample(prompts)
    client = OpenAIGenerator(server.url, decoding=Decoding(temperature=0.0, max_tokens=8))
    assert client.model == "tiny"
    remote = client.generate(prompts)
    assert [r.token_ids for r in remote] == [s.token_ids for s in local]
    assert [r.text for r in remote] == [s.text for s in local]
    for r, s in zip(remote, local, strict=True):
        assert r.logprobs == pytest.approx(s.logprobs, abs=1e-4)


def test_the_server_answers_chat_completions_with_logprobs(server):
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 4,
        "logprobs": True,
    }
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60).json()
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(
        choice["message"]["content"], str
    )
    assert len(choice["logprobs"]["content"]) == reply["usage"]["completion_tokens"] <= 4


def test_the_server_rejects_bad_requests_with_a_message(server):
    for body in ({"prompt": 3}, {"prompt": "x", "temperature": "hot"}, {"messages": []}):
        path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
        resp = httpx.post(server.url + path, json=body, timeout=30)
        assert resp.status_code == 400 and resp.json()["error"]["message"]


def test_the_client_reports_a_dead_server_clearly():
    with pytest.raises(GenerationError, match="failed"):
        OpenAIGenerator("http://127.0.0.1:9", model="m", timeout_s=2).generate(["x"])


def test_vllm_token_ids_are_parsed():
    assert parse_token_id("token_id:42") == 42 and parse_token_id("hello") is None


def test_the_vllm_launcher_says_when_vllm_is_missing(sft_dir):
    with pytest.raises(GenerationError, match="not installed"):
        VllmServer(sft_dir, executable="vllm-not-here").start()


def test_the_vllm_launcher_starts_waits_for_and_stops_a_server(sft_dir, tmp_path):
    # A stand-in `vllm` executable that serves the same CLI shape with the project's own server.
    shim = tmp_path / "vllm"
    shim.write_text(f'#!/bin/sh\nshift\nexec {sys.executable} -m trainer.serve.server "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    os.environ["PATH"] = f"{tmp_path}:{os.environ['PATH']}"
    try:
        with VllmServer(sft_dir, startup_timeout_s=300) as srv:
            out = OpenAIGenerator(
                srv.url, decoding=Decoding(temperature=0.0, max_tokens=3)
            ).generate(["hi"])
            assert len(out) == 1 and out[0].token_ids is not None
        assert srv.process.poll() is not None
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]
