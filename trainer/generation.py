"""Policy sampling behind one interface: in-process HF `generate`, an OpenAI-compatible client, `vllm serve`.

Every backend returns the sampled token ids and their log-probs (raw model distribution, before
temperature/top-p), so training scores exactly the ids that were sampled. Each prompt may come with
a list of choices, the responses it must pick among (`rollout.decoding="valid_actions"`): HF decodes
through a token trie (`trainer.constrained`), an OpenAI-compatible server gets vLLM's
`structured_outputs: {"choice": [...]}`; the log-probs stay those of the unconstrained model.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import torch
from transformers import LogitsProcessorList

from trainer.config import RunConfig
from trainer.constrained import TrieLogitsProcessor, choice_trie
from trainer.data import collate_prompts, tokenize_prompt
from trainer.engine import resolve_device, resolve_dtype
from trainer.env import PolicyOutput
from trainer.models import load_causal_lm, load_tokenizer
from trainer.prompts import EOT
from trainer.tokenizer import eot_id, pad_id


class GenerationError(RuntimeError):
    """A backend could not produce responses (server down, bad reply, missing vllm)."""


@dataclass
class Sample:
    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (EOT or a stop string) or "length"

    def output(self) -> PolicyOutput:
        return PolicyOutput(text=self.text, token_ids=self.token_ids, logprobs=self.logprobs)


Choices = Sequence[Sequence[str] | None] | None
"""Per prompt, the responses it must be one of (None = free); None for the whole batch = all free."""


class Generator(Protocol):
    def generate(self, prompts: list[str], choices: Choices = None) -> list[PolicyOutput]: ...


@dataclass
class Decoding:
    temperature: float = 1.0
    top_p: float = 0.9
    max_tokens: int = 2048
    stop: tuple[str, ...] = (EOT,)

    @classmethod
    def rollout(cls, config: RunConfig) -> Decoding:
        r = config.rollout
        return cls(r.temperature, r.top_p, r.max_new_tokens)

    @classmethod
    def evaluation(cls, config: RunConfig) -> Decoding:
        return cls(config.eval.temperature, 1.0, config.eval.max_tokens)


class HFGenerator:
    """Batched `model.generate` with left padding, on CPU or GPU."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        decoding: Decoding | None = None,
        *,
        batch_size: int = 8,
        max_seq_len: int = 16384,
        seed: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.decoding = decoding or Decoding()
        self.batch_size = batch_size
        self.max_seq_len = max_seq_len
        self.generator_seed = seed
        self.eot = eot_id(tokenizer)
        self.pad = pad_id(tokenizer)
        self.choice_ids: dict[str, list[int]] = {}  # token ids of valid actions seen before

    @classmethod
    def from_dir(
        cls, path: str | Path, config: RunConfig, decoding: Decoding | None = None
    ) -> HFGenerator:
        device = resolve_device(config.engine.device)
        model = load_causal_lm(
            path, dtype=resolve_dtype(config.engine.dtype, device), device=str(device)
        )
        return cls(
            model,
            load_tokenizer(path),
            decoding or Decoding.rollout(config),
            batch_size=config.rollout.batch_size,
            max_seq_len=config.engine.max_seq_len,
            seed=config.seed,
        )

    def generate(self, prompts: list[str], choices: Choices = None) -> list[PolicyOutput]:
        return [s.output() for s in self.sample(prompts, choices=choices)]

    def sample(
        self, prompts: Sequence[str], decoding: Decoding | None = None, choices: Choices = None
    ) -> list[Sample]:
        d = decoding or self.decoding
        if choices is not None and len(choices) != len(prompts):
            raise GenerationError(f"{len(choices)} choice lists for {len(prompts)} prompts")
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
            self.generator_seed = None  # seed once; later calls continue the stream
        out: list[Sample] = []
        for i in range(0, len(prompts), self.batch_size):
            part = choices[i : i + self.batch_size] if choices is not None else None
            out.extend(self._sample_batch(prompts[i : i + self.batch_size], d, part))
        return out

    @torch.no_grad()
    def _sample_batch(
        self, prompts: Sequence[str], d: Decoding, choices: Choices = None
    ) -> list[Sample]:
        budget = max(1, self.max_seq_len - d.max_tokens)
        ids = [tokenize_prompt(self.tokenizer, p, budget) for p in prompts]
        width = max(len(x) for x in ids)
        device = next(self.model.parameters()).device
        batch = collate_prompts(
            [[self.pad] * (width - len(x)) + x for x in ids], self.pad
        )  # left padding
        attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])  # [B, T]
        kwargs: dict[str, Any] = {"do_sample": d.temperature > 0}
        if d.temperature > 0:
            kwargs.update(temperature=d.temperature, top_p=d.top_p, top_k=0)
        if choices is not None and any(c is not None for c in choices):
            tries = [
                None
                if c is None
                else choice_trie(self.tokenizer, c, self.eot, d.max_tokens, self.choice_ids)
                for c in choices
            ]
            kwargs["logits_processor"] = LogitsProcessorList([TrieLogitsProcessor(tries, width)])
        gen = self.model.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=attention.to(device),
            max_new_tokens=d.max_tokens,
            eos_token_id=self.eot,
            pad_token_id=self.pad,
            output_logits=True,
            return_dict_in_generate=True,
            **kwargs,
        )
        new = gen.sequences[:, width:]  # [B, N]
        logits = torch.stack(gen.logits, dim=1).float()  # [B, N, V] raw scores
        lp = logits.log_softmax(-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)  # [B, N]
        return [self._finish(new[b].tolist(), lp[b].tolist(), d.stop) for b in range(len(prompts))]

    def _finish(self, ids: list[int], logprobs: list[float], stop: Sequence[str]) -> Sample:
        reason = "length"
        if self.eot in ids:
            cut = ids.index(self.eot)
            ids, logprobs, reason = ids[:cut], logprobs[:cut], "stop"
        text = self.tokenizer.decode(ids)
        hits = [text.index(s) for s in stop if s and s in text]
        if hits:
            text, reason = text[: min(hits)], "stop"
            k = len(ids)
            while k > 0 and not text.startswith(self.tokenizer.decode(ids[:k])):
                k -= 1  # keep the longest id prefix that decodes inside the cut text
            ids, logprobs = ids[:k], logprobs[:k]
        return Sample(text, ids, logprobs, reason)


def parse_token_id(token: str) -> int | None:
    """vLLM's `return_tokens_as_token_ids` spells tokens as "token_id:123"."""
    if token.startswith("token_id:"):
        try:
            return int(token.split(":", 1)[1])
        except ValueError:
            return None
    return None


class OpenAIGenerator:
    """Client for an OpenAI-compatible `/v1/completions` server (vLLM or `trainer.openai_server`)."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        decoding: Decoding | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.decoding = decoding or Decoding()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)
        self.model = model or self._first_model()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GenerationError(f"{method} {self.base_url}{path} failed: {exc}") from exc
        if resp.status_code != 200:
            raise GenerationError(
                f"{method} {self.base_url}{path}: HTTP {resp.status_code}: {resp.text[:300]}"
            )
        try:
            return resp.json()
        except ValueError:
            raise GenerationError(f"{method} {self.base_url}{path}: reply is not JSON") from None

    def _first_model(self) -> str:
        data = self._request("GET", "/v1/models").get("data") or []
        if not data:
            raise GenerationError(f"{self.base_url} serves no models")
        return data[0]["id"]

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
        choices = self._request("POST", "/v1/completions", json=body).get("choices")
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
        self.client.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class VllmServer:
    """Starts `vllm serve MODEL_DIR` on 127.0.0.1 and stops it; a context manager."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 900.0,
        executable: str = "vllm",
    ) -> None:
        self.model_dir = str(model_dir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.executable = executable
        self.process: subprocess.Popen | None = None
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> VllmServer:
        exe = shutil.which(self.executable)
        if exe is None:
            raise GenerationError(
                f"{self.executable!r} is not installed; install the 'gpu' extra or use rollout.backend 'hf'"
            )
        if not Path(self.model_dir).is_dir():
            raise GenerationError(f"model directory {self.model_dir!r} does not exist")
        cmd = [
            exe,
            "serve",
            self.model_dir,
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-500:]
                raise GenerationError(
                    f"vllm serve exited with code {self.process.returncode}: {err}"
                )
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise GenerationError(f"vllm serve did not answer within {self.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_generator(
    config: RunConfig, model_dir: str | Path, decoding: Decoding | None = None
) -> Generator:
    """The backend that `rollout.backend` names ("vllm" expects the caller to hold a running VllmServer)."""
    if config.rollout.backend == "hf":
        return HFGenerator.from_dir(model_dir, config, decoding)
    if not config.rollout.server_url:
        raise GenerationError(
            f"rollout.backend {config.rollout.backend!r} needs rollout.server_url"
        )
    return OpenAIGenerator(config.rollout.server_url, decoding=decoding or Decoding.rollout(config))
