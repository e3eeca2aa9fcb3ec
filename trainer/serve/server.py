"""A small OpenAI-compatible server (`/v1/models`, `/v1/completions`, `/v1/chat/completions` with logprobs)
serving a local HF model through `HFGenerator`; for tests and CPU machines where vLLM is absent.
Like vLLM, it takes `structured_outputs: {"choice": [...]}` (or the older `guided_choice`): the
reply is then exactly one of the choices, decoded through a token trie.

Run: python -m trainer.serve.server MODEL_DIR --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from trainer.config import RunConfig, preset
from trainer.prompts import BEGIN_OF_TEXT, EOT
from trainer.serve.hf import HFGenerator
from trainer.serve.sampling import Decoding, Sample


class BadRequest(ValueError):
    pass


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error"}}, status_code=status
    )


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise BadRequest(f"{key!r} must be a number in [{lo}, {hi}]")
    return float(value)


def _decoding(body: dict[str, Any]) -> Decoding:
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise BadRequest("'stop' must be a string or a list of strings")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    return Decoding(
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1.0,
        max_tokens=int(_number(body, "max_tokens", 16, 1, 1 << 20)),
        stop=(EOT, *stop),
    )


def _choice(body: dict[str, Any]) -> list[str] | None:
    """vLLM's choice list: `structured_outputs.choice`, else the older `guided_choice`."""
    structured = body.get("structured_outputs")
    if structured is not None and not isinstance(structured, dict):
        raise BadRequest("'structured_outputs' must be an object")
    choice = (structured or {}).get("choice", body.get("guided_choice"))
    if choice is None:
        return None
    if not isinstance(choice, list) or not choice or not all(isinstance(c, str) for c in choice):
        raise BadRequest("'structured_outputs.choice' must be a non-empty list of strings")
    return choice


def chat_prompt(messages: Any) -> str:
    """Llama-3 chat layout (§4.1) ending with the assistant header."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    parts = [BEGIN_OF_TEXT]
    for m in messages:
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("content"), str)
            or m.get("role")
            not in (
                "system",
                "user",
                "assistant",
            )
        ):
            raise BadRequest(
                "each message needs a role (system, user, assistant) and string content"
            )
        parts.append(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}{EOT}")
    parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


@dataclass
class ServerState:
    generator: HFGenerator
    model_name: str
    lock: asyncio.Lock


def _tokens(gen: HFGenerator, sample: Sample, as_ids: bool) -> list[str]:
    if as_ids:
        return [f"token_id:{i}" for i in sample.token_ids]
    return [gen.tokenizer.decode([i]) for i in sample.token_ids]


def create_app(generator: HFGenerator, model_name: str) -> Starlette:
    state = ServerState(generator, model_name, asyncio.Lock())

    async def run(
        prompts: list[str], decoding: Decoding, choice: list[str] | None = None
    ) -> list[Sample]:
        choices = None if choice is None else [choice] * len(prompts)
        async with state.lock:  # one generate at a time on the shared model
            try:
                return await asyncio.to_thread(state.generator.sample, prompts, decoding, choices)
            except ValueError as exc:  # no choice fits in max_tokens
                raise BadRequest(str(exc)) from None

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    async def models(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": state.model_name, "object": "model", "owned_by": "webrl"}],
            }
        )

    async def completions(request: Request) -> JSONResponse:
        try:
            body = await body_of(request)
            prompts = body.get("prompt")
            prompts = [prompts] if isinstance(prompts, str) else prompts
            if (
                not isinstance(prompts, list)
                or not prompts
                or not all(isinstance(p, str) for p in prompts)
            ):
                raise BadRequest("'prompt' must be a string or a non-empty list of strings")
            decoding = _decoding(body)
            samples = await run(prompts, decoding, _choice(body))
        except BadRequest as exc:
            return _error(str(exc))
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        choices = []
        for i, s in enumerate(samples):
            logprobs = None
            if body.get("logprobs") is not None:
                logprobs = {
                    "tokens": _tokens(state.generator, s, as_ids),
                    "token_logprobs": s.logprobs,
                    "top_logprobs": None,
                    "text_offset": None,
                }
            choices.append(
                {"index": i, "text": s.text, "logprobs": logprobs, "finish_reason": s.finish_reason}
            )
        return JSONResponse(_envelope("text_completion", choices, samples))

    async def chat(request: Request) -> JSONResponse:
        try:
            body = await body_of(request)
            prompt = chat_prompt(body.get("messages"))
            decoding = _decoding(body)
            (s,) = await run([prompt], decoding, _choice(body))
        except BadRequest as exc:
            return _error(str(exc))
        logprobs = None
        if body.get("logprobs"):
            toks = _tokens(state.generator, s, bool(body.get("return_tokens_as_token_ids")))
            logprobs = {
                "content": [
                    {"token": t, "logprob": lp} for t, lp in zip(toks, s.logprobs, strict=True)
                ]
            }
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": s.text},
            "logprobs": logprobs,
            "finish_reason": s.finish_reason,
        }
        return JSONResponse(_envelope("chat.completion", [choice], [s]))

    def _envelope(kind: str, choices: list[dict], samples: list[Sample]) -> dict[str, Any]:
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:12]}",
            "object": kind,
            "created": int(time.time()),
            "model": state.model_name,
            "choices": choices,
            "usage": {"completion_tokens": sum(len(s.token_ids) for s in samples)},
        }

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


class RunningServer:
    """A uvicorn server in a daemon thread on 127.0.0.1; `url` once started, `stop()` to end it."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout_s: float = 30.0) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the OpenAI-compatible server did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self if self.thread.is_alive() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(
    model_dir: str | Path,
    *,
    config: RunConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str | None = None,
) -> RunningServer:
    """Load `model_dir` and serve it on an ephemeral port (port=0) in a background thread."""
    config = config or preset("demo-cpu")
    generator = HFGenerator.from_dir(model_dir, config)
    return RunningServer(create_app(generator, name or str(model_dir)), host, port).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainer.serve.server", description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args, _unknown = parser.parse_known_args(argv)  # vLLM-only flags are accepted and ignored
    config = preset("demo-cpu").with_overrides([f"seed={args.seed}"])
    generator = HFGenerator.from_dir(args.model_dir, config)
    app = create_app(generator, args.served_model_name or args.model_dir)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
