"""An LLM judge as the ORM, behind any OpenAI-compatible chat endpoint: spec §4.1's system and user
text in, "YES" or "NO" out; P(YES) from the answer token's log-probabilities where given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from trainer.prompts import ORM_SYSTEM, build_orm_user


class OrmJudgeError(RuntimeError):
    """The judge endpoint failed (the message names the URL and the reason)."""


@dataclass
class OpenAIOrm:
    """`base_url` like "http://127.0.0.1:8000/v1"; greedy, one short answer per trajectory."""

    base_url: str
    model: str
    api_key: str = ""
    timeout_s: float = 120.0
    system: str = ORM_SYSTEM
    unparsed: int = 0
    """Answers that were neither YES nor NO (scored 0: a judge that does not say YES said no)."""

    def messages(self, intent: str, responses: Sequence[str], last_html: str) -> list[dict]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": build_orm_user(intent, responses, last_html)},
        ]

    def ask(self, messages: list[dict]) -> dict:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": 2,
            "logprobs": True,
            "top_logprobs": 5,
        }
        try:
            resp = httpx.post(
                self.base_url.rstrip("/") + "/chat/completions",
                json=body,
                headers=headers,
                timeout=self.timeout_s,
            )
            resp.raise_for_status()
            return resp.json()["choices"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise OrmJudgeError(f"ORM judge at {self.base_url} failed: {exc}") from exc

    def p_yes_of(self, choice: dict) -> float:
        """P(YES) normalised over YES and NO, from the first answer token's top log-probabilities
        when they hold both. Else the greedy answer decides the side of 0.5 and the answer token's
        own probability p how far: YES gives (1 + p) / 2, NO (1 - p) / 2 (1 and 0 when p = 1, and
        without log-probabilities)."""
        answer = str((choice.get("message") or {}).get("content") or "").strip().upper()
        said_yes, said_no = answer.startswith("YES"), answer.startswith("NO")
        if not (said_yes or said_no):
            self.unparsed += 1
            return 0.0
        first = ((choice.get("logprobs") or {}).get("content") or [None])[0] or {}
        top = {
            str(t.get("token", "")).strip().upper(): float(t["logprob"])
            for t in first.get("top_logprobs") or []
            if "logprob" in t
        }
        if "YES" in top and "NO" in top:
            return 1.0 / (1.0 + math.exp(top["NO"] - top["YES"]))
        if "logprob" in first and str(first.get("token", "")).strip().upper() in ("YES", "NO"):
            p = math.exp(float(first["logprob"]))
            return (1.0 + p) / 2 if said_yes else (1.0 - p) / 2
        return 1.0 if said_yes else 0.0

    def p_yes(self, examples: Sequence[dict]) -> list[float]:
        """P(YES) per ORM example (`intent`, `responses`, `last_html`)."""
        return [
            self.p_yes_of(self.ask(self.messages(ex["intent"], ex["responses"], ex["last_html"])))
            for ex in examples
        ]


def judge_from_config(orm_section) -> OpenAIOrm:
    """The judge of `config.orm` (backend "openai"); the key comes from the named variable."""
    key = os.environ.get(orm_section.judge_api_key_env, "") if orm_section.judge_api_key_env else ""
    return OpenAIOrm(orm_section.judge_url, orm_section.judge_model, api_key=key)
