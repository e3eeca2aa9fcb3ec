"""WebArena-Lite's evaluators (webrl-spec.md §8.3): string_match, url_match, program_html, and
MiniWoB++'s own reward. The score is the product over the task's eval types; None means the task
cannot be scored here (it needs a judge, or the evaluator failed), never a guessed 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any
from urllib.parse import urlsplit

from trainer.env import miniwob, webarena
from trainer.env.judge import JudgeError

EVALUATOR_VERSION = "webarena-lite-eval/1"
OR = " |OR| "


class NeedsJudge(Exception):
    """A fuzzy_match reference cannot be graded without a configured LLM judge."""


class EvaluatorError(Exception):
    """The task's evaluator config cannot be run (unknown type, unknown helper, bad shape)."""


# A regex stand-in for nltk's word_tokenize (Treebank rules, no punkt data) on what the matchers
# need: words, numbers with decimals or thousands commas, clitics, punctuation split off.
_TOKEN_RULES = [
    (re.compile(r'^"'), " `` "),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r'([ (\[{<])("|\'{2})'), r"\1 `` "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.\.\."), r" ... "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"(?<=[^.\s])(?<![^\w]\w)\.(?=\s)"), r" . "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> "),
    (re.compile(r"--"), r" -- "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"(\S)(\'\')"), r"\1 \2 "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]


def word_tokenize(text: str) -> list[str]:
    """Split like nltk's word_tokenize for words, numbers, clitics and punctuation."""
    text = str(text)
    for pattern, repl in _TOKEN_RULES[:15]:
        text = pattern.sub(repl, text)
    text = " " + text + " "
    for pattern, repl in _TOKEN_RULES[15:]:
        text = pattern.sub(repl, text)
    return text.split()


def clean_answer(answer: str) -> str:
    answer = str(answer).strip()
    if len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in "'\"":
        answer = answer[1:-1]
    return answer.lower()


def exact_match(ref: str, pred: str) -> float:
    return float(clean_answer(pred) == clean_answer(ref))


def _answer_tokens(pred: str) -> set[str]:
    tokens = set()
    for tok in word_tokenize(pred):
        tokens.add(tok)
        if "/" in tok:
            tokens.update(t for t in tok.split("/") if t)
    return tokens


def must_include(ref: str, pred: str) -> float:
    """A one-token reference must be one of the answer's tokens; longer ones a substring."""
    ref_c, pred_c = clean_answer(ref), clean_answer(pred)
    if len(word_tokenize(ref_c)) == 1:
        return float(ref_c in _answer_tokens(pred_c))
    return float(ref_c in pred_c)


def must_exclude(ref: str, pred: str) -> float:
    return 1.0 - must_include(ref, pred)


def _to_int(text: str) -> int | None:
    try:
        return int(str(text).strip().replace(",", ""))
    except ValueError:
        return None


def compare_inequality(value: float, inequality: str, tol: float = 1e-8) -> bool:
    """`value` against "< 700", ">= 300", "== 5" and the like."""
    for op in ("<=", ">=", "==", "<", ">"):
        if op in inequality:
            number = float(inequality.split(op, 1)[1].strip())
            return {
                "<=": value <= number + tol,
                ">=": value >= number - tol,
                "==": abs(value - number) <= tol,
                "<": value < number + tol,
                ">": value > number - tol,
            }[op]
    raise EvaluatorError(f"invalid inequality {inequality!r}: expected e.g. '>= 300'")


def _required_values(values: list[str], pred: str) -> float:
    number = _to_int(pred)
    if number is None:
        return 0.0
    return float(all(any(compare_inequality(number, v) for v in s.split(OR)) for s in values))


def _fuzzy(value: Any, pred: str, *, intent: str, string_note: str, judge: Any) -> float:
    if value == "N/A":
        if exact_match("N/A", pred) == 1.0:
            return 1.0
        if judge is None:
            raise NeedsJudge("fuzzy_match N/A: the stated reason needs a judge")
        return float(judge.ua_match(pred=pred, reference=string_note, intent=intent))
    if judge is None:
        raise NeedsJudge("fuzzy_match needs an LLM judge")
    if not isinstance(value, list):
        raise EvaluatorError("fuzzy_match must be a list of strings or 'N/A'")
    return float(judge.fuzzy_match(pred=pred, reference=", ".join(value), intent=intent))


def score_string_match(
    reference_answers: dict,
    answer: str,
    *,
    intent: str = "",
    string_note: str = "",
    judge: Any = None,
) -> float:
    """§8.3 string_match: the product over all reference keys. Raises NeedsJudge for fuzzy ones."""
    if not isinstance(reference_answers, dict):
        raise EvaluatorError("reference_answers must be an object")
    pred = clean_answer(answer)
    score = 1.0
    for key, value in reference_answers.items():
        if key == "exact_match":
            score *= exact_match(str(value), pred)
        elif key == "must_include":
            for item in _as_list(key, value):
                score *= float(any(must_include(v, pred) for v in item.split(OR)))
        elif key == "must_exclude":
            for item in _as_list(key, value):
                score *= must_exclude(item, pred)
        elif key == "one_of":
            score *= float(any(clean_answer(v) in pred for v in _as_list(key, value)))
        elif key == "required_values":
            score *= _required_values(_as_list(key, value), pred)
        elif key == "fuzzy_match":
            score *= _fuzzy(value, pred, intent=intent, string_note=string_note, judge=judge)
        else:
            raise EvaluatorError(f"unknown reference_answers key {key!r}")
    return score


def _as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):  # WebArena-Lite task 81 gives must_include as a bare string
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EvaluatorError(f"{key} must be a list of strings")
    return value


def clean_url(url: str) -> str:
    url = str(url).replace("localhost", "127.0.0.1")
    return url[:-1] if url.endswith("/") else url


def score_url_match(reference_url: str, final_url: str, url_note: str = "EXACT") -> float:
    """§8.3 url_match: EXACT membership or "GOLD in PRED" containment over ` |OR| ` alternatives."""
    pred = clean_url(final_url)
    refs = [clean_url(u) for u in str(reference_url).split(OR)]
    if url_note == "EXACT":
        return float(pred in refs)
    if url_note == "GOLD in PRED":
        return float(any(ref in pred for ref in refs))
    raise EvaluatorError(f"unknown url_note {url_note!r}: expected 'EXACT' or 'GOLD in PRED'")


def score_contents(required: dict, selected: str, *, intent: str = "", judge: Any = None) -> float:
    """program_html's required_contents against the selected text (the first known key wins)."""
    if "exact_match" in required:
        return exact_match(str(required["exact_match"]), selected)
    if "must_include" in required:
        items = _as_list("must_include", required["must_include"])
        return float(all(any(must_include(v, selected) for v in i.split(OR)) for i in items))
    if "must_exclude" in required:
        items = _as_list("must_exclude", required["must_exclude"])
        return float(all(must_exclude(i, selected) for i in items))
    if "required_values" in required:
        return _required_values(_as_list("required_values", required["required_values"]), selected)
    if "fuzzy_match" in required:
        return _fuzzy(required["fuzzy_match"], selected, intent=intent, string_note="", judge=judge)
    raise EvaluatorError(f"unknown required_contents {sorted(required)}")


async def _select(page: Any, locator: str, prep_actions: list[str], env: dict) -> str | None:
    locator = locator.strip()
    if not locator:
        return await page.content()
    if locator.startswith(("document.", "[...document.")):
        for prep in prep_actions:
            with contextlib.suppress(Exception):
                await page.evaluate(f"() => {prep}")
        try:
            return str(await page.evaluate(f"() => {locator}") or "")
        except Exception:
            return ""
    if locator.startswith("lambda:"):
        try:
            value = await page.evaluate(locator[len("lambda:") :])
        except Exception:
            return None
        return str(value) if value else None
    if locator.startswith("func:"):
        value = await _helper(locator[len("func:") :], page=page, env=env)
        return None if value is None else str(value)
    raise EvaluatorError(f"unknown locator {locator[:40]!r}")


async def _helper(text: str, *, page: Any, env: dict) -> Any:
    try:
        return await webarena.call_helper(text, page=page, env=env)
    except ValueError as exc:
        raise EvaluatorError(str(exc)) from None


async def score_program_html(
    task: dict, context: Any, final_url: str, *, judge: Any = None
) -> tuple[float, list[dict]]:
    """§8.3 program_html: each target's URL ("last", a URL or a func:), locator and contents."""
    ev = task["eval"]
    env = {"task": task, "context": context, "last_url": final_url}
    page = _final_page(context, final_url)
    fresh = None
    score, details = 1.0, []
    for target in ev.get("program_html") or []:
        url = target["url"]
        if url.startswith("func:"):
            url = await _helper(url[len("func:") :], page=page, env=env)
            if not url:
                details.append({"url": target["url"], "selected": None, "score": 0.0})
                return 0.0, details
        if url != "last":
            if fresh is None:
                fresh = await context.new_page()
            page = fresh
            await page.goto(url, wait_until="load", timeout=30000)
            with contextlib.suppress(Exception):
                await page.wait_for_load_state("networkidle", timeout=3000)
        selected = await _select(page, target["locator"], target.get("prep_actions") or [], env)
        if selected is None:
            details.append({"url": url, "selected": None, "score": 0.0})
            return 0.0, details
        part = score_contents(
            target["required_contents"], selected, intent=task.get("intent", ""), judge=judge
        )
        details.append({"url": url, "selected": selected[:300], "score": part})
        score *= part
    return score, details


def _final_page(context: Any, final_url: str) -> Any:
    pages = list(context.pages)
    for page in reversed(pages):
        if page.url == final_url:
            return page
    if not pages:
        raise EvaluatorError("the episode has no open page")
    return pages[-1]


async def evaluate_task(
    task: dict, context: Any, answer: str, final_url: str, judge: Any = None
) -> tuple[float | None, dict]:
    """Score a finished episode. Returns (score, detail); score None = needs a judge or failed."""
    ev = task.get("eval") or {}
    types = ev.get("eval_types") or []
    detail: dict = {"eval_types": list(types)}
    if not types:
        return None, {**detail, "evaluator_error": "the task has no eval_types"}
    score = 1.0
    try:
        for kind in types:
            if kind == "string_match":
                part = await asyncio.to_thread(
                    score_string_match,
                    ev.get("reference_answers") or {},
                    answer or "",
                    intent=task.get("intent", ""),
                    string_note=ev.get("string_note", ""),
                    judge=judge,
                )
            elif kind == "url_match":
                part = score_url_match(
                    ev.get("reference_url") or "", final_url, ev.get("url_note", "EXACT")
                )
            elif kind == "program_html":
                part, detail["program_html_targets"] = await score_program_html(
                    task, context, final_url, judge=judge
                )
            elif kind == miniwob.EVAL_TYPE:
                part, detail["miniwob"] = await miniwob.read_reward(_final_page(context, final_url))
            else:
                raise EvaluatorError(f"unknown eval type {kind!r}")
            detail[kind] = part
            score *= part
    except NeedsJudge as exc:
        return None, {**detail, "needs_judge": True, "reason": str(exc)}
    except EvaluatorError as exc:
        return None, {**detail, "evaluator_error": str(exc)}
    except JudgeError as exc:
        return None, {**detail, "needs_judge": True, "judge_error": str(exc)}
    return score, detail


def _url_path(url: str) -> str:
    """A URL without its origin (or `__SITE__` placeholder): what url_match compares offline."""
    url = re.sub(r"^__[A-Z_]+__", "", str(url).strip())
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def score_offline(task: dict, answer: str, final_url: str) -> float | None:
    """An episode's score from its answer and final URL alone, without a browser: string_match,
    and url_match on the URL's path and query (the origin depends on the world instance). None
    when the task needs the page (program_html), a judge or an evaluator it does not have."""
    ev = task.get("eval") or {}
    types = ev.get("eval_types") or []
    if not types:
        return None
    score = 1.0
    try:
        for kind in types:
            if kind == "string_match":
                score *= score_string_match(
                    ev.get("reference_answers") or {}, answer or "",
                    intent=task.get("intent", ""), string_note=ev.get("string_note", ""),
                )  # fmt: skip
            elif kind == "url_match":
                refs = OR.join(_url_path(u) for u in str(ev.get("reference_url") or "").split(OR))
                score *= score_url_match(refs, _url_path(final_url), ev.get("url_note", "EXACT"))
            else:
                return None
    except (NeedsJudge, EvaluatorError):
        return None
    return score
