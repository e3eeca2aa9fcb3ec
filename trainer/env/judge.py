"""An LLM judge for WebArena's fuzzy_match references, over any OpenAI-compatible chat endpoint.

Without one, fuzzy tasks score None ("needs judge") and are left out of success rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

# Our wording of WebArena's two grading questions (§8.3); the decision words are the same.
_FUZZY = (
    "Help a teacher grade a student's answer.\nQuestion: {intent}\nReference answer: "
    "{reference}\nStudent answer: {pred}\nThe reference may be phrased differently; judge "
    "meaning, not wording. Reply with exactly one of: correct, partially correct, incorrect."
)
_UA = (
    "A task was judged impossible to complete.\nTask: {intent}\nActual reason it is "
    "impossible: {reference}\nReason the agent reported: {pred}\nDo the two reasons agree, even "
    "implicitly? Reply with exactly one word: same or different."
)


class JudgeError(Exception):
    """The judge endpoint failed or answered outside the expected words."""


@dataclass
class OpenAIJudge:
    """`base_url` like "http://127.0.0.1:8000/v1"; temperature 0 as in WebArena."""

    base_url: str
    model: str
    api_key: str = ""
    timeout_s: float = 60.0

    def _ask(self, prompt: str) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            resp = httpx.post(
                self.base_url.rstrip("/") + "/chat/completions",
                json={
                    "model": self.model,
                    "temperature": 0,
                    "messages": [
                        {"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": prompt},
                    ],
                },
                headers=headers,
                timeout=self.timeout_s,
            )
            resp.raise_for_status()
            return str(resp.json()["choices"][0]["message"]["content"]).strip().lower()
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise JudgeError(f"judge at {self.base_url} failed: {exc}") from exc

    def fuzzy_match(self, *, pred: str, reference: str, intent: str) -> float:
        """1.0 only for "correct" (partially correct and incorrect score 0)."""
        answer = self._ask(_FUZZY.format(intent=intent, reference=reference, pred=pred))
        if "partially correct" in answer or "incorrect" in answer:
            return 0.0
        if "correct" in answer:
            return 1.0
        raise JudgeError(f"judge answered {answer[:60]!r}, not correct/incorrect")

    def ua_match(self, *, pred: str, reference: str, intent: str) -> float:
        answer = self._ask(_UA.format(intent=intent, reference=reference, pred=pred))
        if "different" in answer:
            return 0.0
        if "same" in answer:
            return 1.0
        raise JudgeError(f"judge answered {answer[:60]!r}, not same/different")
