"""A tiny Llama trained in seconds to continue a few prompts, and a real OpenAI-compatible HTTP
server for it (uvicorn on 127.0.0.1), so the LLM generator and judge are tested end to end."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import torch
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from transformers import LlamaConfig, LlamaForCausalLM

from trainer.learn.tokenizer import EOT, encode_prompt, eot_id, pad_id, train_tokenizer


def train_memorizer(pairs: Sequence[tuple[str, str]], steps: int = 80, seed: int = 0):
    """A 2-layer Llama that learns to answer each prompt with its completion (greedy decoding).

    One torch thread: on a loaded 2-core machine more threads make this ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(pairs, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(pairs: Sequence[tuple[str, str]], steps: int, seed: int):
    texts = [p + c + EOT for p, c in pairs]
    tokenizer = train_tokenizer(texts * 4, vocab_size=600)
    torch.manual_seed(seed)
    seqs = [encode_prompt(tokenizer, t) for t in texts]  # BOS first, as HFGenerator does
    length = max(len(s) for s in seqs)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=length + 256,
        eos_token_id=eot_id(tokenizer),
        pad_token_id=pad_id(tokenizer),
    )
    model = LlamaForCausalLM(config)
    ids = torch.full((len(seqs), length), pad_id(tokenizer))
    labels = torch.full((len(seqs), length), -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, : len(s)] = torch.tensor(s)
    mask = (labels != -100).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, tokenizer


def complete(model, tokenizer, prompt: str, max_tokens: int, temperature: float) -> str:
    ids = torch.tensor([encode_prompt(tokenizer, prompt)])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=None,
            top_k=None,
            eos_token_id=eot_id(tokenizer),
            pad_token_id=pad_id(tokenizer),
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def openai_app(model, tokenizer, name: str = "tiny") -> Starlette:
    lock = threading.Lock()

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model"}]})

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return JSONResponse({"error": {"message": "messages required"}}, status_code=400)
        prompt = "".join(str(m.get("content", "")) for m in messages)
        with lock:
            text = complete(
                model,
                tokenizer,
                prompt,
                int(body.get("max_tokens") or 128),
                float(body.get("temperature", 1.0)),
            )
        return JSONResponse(
            {
                "object": "chat.completion",
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Run `app` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise TimeoutError("tiny OpenAI server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
