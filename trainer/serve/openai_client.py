"""The one client for OpenAI-compatible servers (vLLM, `trainer.serve.server`, hosted APIs).

`OpenAIEndpoint` owns the URL, the key, the HTTP session and the error handling; on top of it,
`OpenAIGenerator` samples policy actions from `/v1/completions` with token ids and log-probs, and
`OpenAIChat` answers text prompts from `/v1/chat/completions` (curriculum generator and judges).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from trainer.env.types import PolicyOutput
from trainer.serve.sampling import Choices, Decoding, GenerationError, Sample


class OpenAIEndpoint:
    """`base_url` with or without `/v1`; every failure is a `GenerationError` naming the URL."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 300.0):
        if not base_url:
            raise GenerationError("an OpenAI-compatible client needs a server URL")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        where = f"{self.base_url}{path}"
        try:
            resp = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise GenerationError(f"{method} {where} failed: unreachable ({exc})") from exc
        if resp.status_code != 200:
            raise GenerationError(f"{method} {where}: HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            reply = resp.json()
        except ValueError:
            raise GenerationError(f"{method} {where}: reply is not JSON") from None
        if not isinstance(reply, dict):
            raise GenerationError(f"{method} {where}: reply is not a JSON object")
        return reply

    def first_model(self) -> str:
        data = self.request("GET", "/v1/models").get("data") or []
        if not data or not isinstance(data, list) or "id" not in data[0]:
            raise GenerationError(f"{self.base_url} serves no models")
        return str(data[0]["id"])

    def close(self) -> None:
        self.client.close()


def parse_token_id(token: str) -> int | None:
    """vLLM's `return_tokens_as_token_ids` spells tokens as "token_id:123"."""
    if token.startswith("token_id:"):
        try:
            return int(token.split(":", 1)[1])
        except ValueError:
            return None
    return None


class OpenAIGenerator:
    """Policy sampling from `/v1/completions`, with the sampled token ids and their log-probs."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        decoding: Decoding | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.endpoint = OpenAIEndpoint(base_url, api_key=api_key, timeout_s=timeout_s)
        self.base_url = self.endpoint.base_url
        self.decoding = decoding or Decoding()
        self.model = model or self.endpoint.first_model()

    def generate(self, prompts: list[str], choices: Choices = None) -> list[PolicyOutput]:
        return [s.output() for s in self.sample(prompts, choices=choices)]

    def sample(
        self, prompts: Sequence[str], decoding: Decoding | None = None, choices: Choices = None
    ) -> list[Sample]:
        """One request for the batch; with choices, one request per prompt (a request's choice list
        holds for all its prompts), sent at once so that the server batches them."""
        d = decoding or self.decoding
        if choices is None or all(c is None for c in choices):
            return self._complete(prompts, d, None)
        if len(choices) != len(prompts):
            raise GenerationError(f"{len(choices)} choice lists for {len(prompts)} prompts")
        with ThreadPoolExecutor(max_workers=min(len(prompts), 32)) as pool:
            parts = pool.map(self._complete, [[p] for p in prompts], [d] * len(prompts), choices)
            return [s for part in parts for s in part]

    def _complete(
        self, prompts: Sequence[str], d: Decoding, choice: Sequence[str] | None
    ) -> list[Sample]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": list(prompts),
            "temperature": d.temperature,
            "top_p": d.top_p,
            "max_tokens": d.max_tokens,
            "stop": list(d.stop),
            "logprobs": 1,
            "return_tokens_as_token_ids": True,
        }
        if choice is not None:
            body["structured_outputs"] = {"choice": list(choice)}  # vLLM >= 0.12's field
        choices = self.endpoint.request("POST", "/v1/completions", body).get("choices")
        if not isinstance(choices, list) or len(choices) != len(prompts):
            raise GenerationError(f"expected {len(prompts)} choices, got {choices!r:.200}")
        out: list[Sample | None] = [None] * len(prompts)
        for c in choices:
            lp = c.get("logprobs") or {}
            ids = [parse_token_id(t) for t in lp.get("tokens") or []]
            token_ids = [i for i in ids if i is not None] if ids and None not in ids else []
            out[c.get("index", 0)] = Sample(
                c.get("text", ""),
                token_ids,
                list(lp.get("token_logprobs") or []),
                c.get("finish_reason") or "stop",
            )
        return [s if s is not None else Sample("", [], [], "error") for s in out]

    def close(self) -> None:
        self.endpoint.close()


class OpenAIChat:
    """Text in, text out: one chat completion per prompt (the curriculum's generator and judges)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 512,
        timeout: float = 120.0,
        api_key: str = "EMPTY",
    ):
        self.endpoint = OpenAIEndpoint(base_url, api_key=api_key, timeout_s=timeout)
        self.base_url = self.endpoint.base_url + "/v1"
        self.model = model
        self.params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}

    def settings(self) -> dict[str, Any]:
        return {"url": self.base_url, "model": self.model, **self.params}

    def __call__(self, prompts: list[str]) -> list[str]:
        if not self.model:
            self.model = self.endpoint.first_model()
        texts = []
        for prompt in prompts:
            body = {"model": self.model, "messages": [{"role": "user", "content": prompt}]}
            reply = self.endpoint.request("POST", "/v1/chat/completions", {**body, **self.params})
            try:
                texts.append(str(reply["choices"][0]["message"]["content"] or ""))
            except (KeyError, IndexError, TypeError) as exc:
                raise GenerationError(f"{self.base_url}: malformed chat reply") from exc
        return texts

    def close(self) -> None:
        self.endpoint.close()
