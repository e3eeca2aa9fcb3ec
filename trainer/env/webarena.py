"""WebArena / WebArena-Lite task configs (webrl-spec.md §8.2): validation, site placeholders, and
the named Python helpers that `func:` URLs and locators may call (a registry; nothing is eval'd).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SITES = ("shopping", "shopping_admin", "reddit", "gitlab", "map", "wikipedia")
PLACEHOLDERS = {f"__{site.upper()}__": site for site in SITES}
EVAL_TYPES = ("string_match", "url_match", "program_html")
STRING_KEYS = ("exact_match", "must_include", "must_exclude", "one_of", "required_values")
URL_NOTES = ("EXACT", "GOLD in PRED")
_PLACEHOLDER_RE = re.compile(r"__([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)__")


def resolve_placeholders(obj: Any, site_urls: dict[str, str]) -> Any:
    """A copy of `obj` with `__SHOPPING__`-style placeholders replaced by `site_urls[site]`."""
    if isinstance(obj, str):

        def sub(m: re.Match) -> str:
            site = PLACEHOLDERS.get(m.group(0))
            if site is None:
                raise ValueError(f"unknown placeholder {m.group(0)}: known {sorted(PLACEHOLDERS)}")
            if site not in site_urls:
                raise ValueError(f"no URL for site {site!r} to replace {m.group(0)}")
            return site_urls[site].rstrip("/")

        return _PLACEHOLDER_RE.sub(sub, obj)
    if isinstance(obj, list):
        return [resolve_placeholders(v, site_urls) for v in obj]
    if isinstance(obj, dict):
        return {k: resolve_placeholders(v, site_urls) for k, v in obj.items()}
    return obj


# --- func: helpers ------------------------------------------------------------------------------

Helper = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class HelperCall:
    name: str
    args: tuple[Any, ...]
    """Literal values, or the marker PAGE for `__page__`."""


PAGE = object()


def parse_helper_call(text: str) -> HelperCall:
    """`name(arg, ...)` with literal or `__page__` arguments, checked against the registry."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"func: {text[:60]!r} is not a call ({exc.msg})") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.keywords:
        raise ValueError(f"func: {text[:60]!r} must be name(positional args)")
    name = node.func.id
    if name not in HELPERS:
        raise ValueError(f"unknown func: helper {name!r}; known: {sorted(HELPERS)}")
    args: list[Any] = []
    for arg in node.args:
        if isinstance(arg, ast.Name) and arg.id == "__page__":
            args.append(PAGE)
            continue
        try:
            args.append(ast.literal_eval(arg))
        except ValueError:
            raise ValueError(f"func: {name} argument is not a literal") from None
    arity = HELPER_ARITY[name]
    if len(args) != arity:
        raise ValueError(f"func: {name} takes {arity} argument(s), got {len(args)}")
    return HelperCall(name, tuple(args))


def site_url(task: dict, site: str) -> str:
    """A site's base URL: from the task's `site_urls`, else the start URL's origin."""
    urls = task.get("site_urls") or {}
    if site in urls:
        return urls[site].rstrip("/")
    start = (task.get("start_url") or "").split(" |AND| ")[0]
    if site in (task.get("sites") or []) and "://" in start:
        parts = urlsplit(start)
        return f"{parts.scheme}://{parts.netloc}"
    raise ValueError(f"no base URL for site {site!r}: add task['site_urls'][{site!r}]")


async def call_helper(text: str, *, page: Any, env: dict) -> Any:
    """Run a `func:` expression (with `__last_url__` already meaning env["last_url"])."""
    call = parse_helper_call(text.replace("__last_url__", env.get("last_url", "")))
    args = [page if a is PAGE else a for a in call.args]
    return await HELPERS[call.name](env, *args)


async def _shopping_get_latest_order_url(env: dict) -> str | None:
    base = site_url(env["task"], "shopping")
    page = await env["context"].new_page()
    try:
        await page.goto(f"{base}/sales/order/history/", wait_until="load", timeout=30000)
        href = await page.evaluate(
            """() => { for (const a of document.querySelectorAll('a')) {
                 if (/view order/i.test(a.textContent) || /order\\/view/.test(a.href)) return a.href; }
               return null; }"""
        )
    finally:
        await page.close()
    return href


async def _reddit_get_post_url(env: dict, url: str) -> str:
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if len(segments) < 4 or segments[1] != "f":
        return url
    return f"{parts.scheme}://{parts.netloc}/f/{segments[2]}/{segments[3]}/"


async def _gitlab_get_project_member_role(env: dict, page: Any, account: str) -> str:
    await page.goto(page.url.rstrip("/") + "/-/project_members", wait_until="load", timeout=30000)
    return await page.evaluate(
        """(account) => {
          const rows = document.querySelectorAll('tr, li, [data-testid*="member"]');
          for (const row of rows) {
            if (!row.textContent.includes('@' + account)) continue;
            const role = row.querySelector('[data-testid*="role"], select, .dropdown-toggle, button');
            if (role) {
              const t = role.tagName === 'SELECT' ? role.options[role.selectedIndex].text : role.textContent;
              return t.trim();
            }
          }
          return '';
        }""",
        account,
    )


HELPERS: dict[str, Helper] = {
    "shopping_get_latest_order_url": _shopping_get_latest_order_url,
    "reddit_get_post_url": _reddit_get_post_url,
    "gitlab_get_project_memeber_role": _gitlab_get_project_member_role,  # WebArena's spelling
    "gitlab_get_project_member_role": _gitlab_get_project_member_role,
}
HELPER_ARITY = {
    "shopping_get_latest_order_url": 0,
    "reddit_get_post_url": 1,
    "gitlab_get_project_memeber_role": 2,
    "gitlab_get_project_member_role": 2,
}


# --- validation -------------------------------------------------------------------------------


def _placeholders_in(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return {m.group(0) for m in _PLACEHOLDER_RE.finditer(obj)}
    if isinstance(obj, list):
        return set().union(*(_placeholders_in(v) for v in obj)) if obj else set()
    if isinstance(obj, dict):
        return set().union(*(_placeholders_in(v) for v in obj.values())) if obj else set()
    return set()


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _check_answers(answers: Any, where: str, keys: tuple[str, ...]) -> list[str]:
    if not isinstance(answers, dict) or not answers:
        return [f"{where} must be a non-empty object"]
    errors = []
    for key, value in answers.items():
        if key == "exact_match":
            if not isinstance(value, str):
                errors.append(f"{where}.exact_match must be a string")
        elif key == "fuzzy_match":
            if value != "N/A" and not _str_list(value):
                errors.append(f"{where}.fuzzy_match must be a list of strings or 'N/A'")
        elif key in keys:
            # A bare string counts as a one-item list (WebArena-Lite task 81 has one).
            if not _str_list(value) and not (isinstance(value, str) and value):
                errors.append(f"{where}.{key} must be a non-empty list of strings")
        else:
            errors.append(f"{where} has unknown key {key!r}")
    return errors


def _check_url(url: Any, where: str, *, allow_last: bool) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return [f"{where} must be a non-empty string"]
    if allow_last and url == "last":
        return []
    if url.startswith("func:"):
        try:
            parse_helper_call(url[len("func:") :])
        except ValueError as exc:
            return [f"{where}: {exc}"]
        return []
    for part in url.split(" |OR| ") if not allow_last else [url]:
        if not (part.startswith(("http://", "https://")) or _PLACEHOLDER_RE.match(part)):
            return [f"{where} {part[:60]!r} is not a URL, a site placeholder URL or 'last'"]
    return []


def _check_program_html(targets: Any) -> list[str]:
    if not isinstance(targets, list) or not targets:
        return ["eval.program_html must be a non-empty list for eval type program_html"]
    errors: list[str] = []
    for i, t in enumerate(targets):
        where = f"eval.program_html[{i}]"
        if not isinstance(t, dict):
            errors.append(f"{where} must be an object")
            continue
        errors += _check_url(t.get("url"), f"{where}.url", allow_last=True)
        locator = t.get("locator")
        if not isinstance(locator, str):
            errors.append(f"{where}.locator must be a string")
        elif locator.startswith("func:"):
            try:
                parse_helper_call(locator[len("func:") :])
            except ValueError as exc:
                errors.append(f"{where}.locator: {exc}")
        elif locator.strip() and not locator.startswith(("document.", "[...document.", "lambda:")):
            errors.append(f"{where}.locator {locator[:40]!r} is not JS, lambda: or func:")
        prep = t.get("prep_actions", [])
        if not isinstance(prep, list) or not all(isinstance(p, str) for p in prep):
            errors.append(f"{where}.prep_actions must be a list of strings")
        required = t.get("required_contents")
        errors += _check_answers(required, f"{where}.required_contents", STRING_KEYS)
    return errors


def validate_task(record: Any) -> list[str]:
    """Everything wrong with one WebArena-format record (empty list = importable)."""
    if not isinstance(record, dict):
        return ["record must be an object"]
    errors: list[str] = []
    for key, kind in (("task_id", int), ("intent", str), ("start_url", str), ("eval", dict)):
        value = record.get(key)
        if value is None:
            errors.append(f"missing required key {key!r}")
        elif not isinstance(value, kind) or isinstance(value, bool):
            errors.append(f"{key} must be {kind.__name__}, got {type(value).__name__}")
    sites = record.get("sites")
    if not _str_list(sites):
        errors.append("sites must be a non-empty list of strings")
    elif unknown := [s for s in sites if s not in SITES]:
        errors.append(f"unknown sites {unknown}; known: {list(SITES)}")
    if isinstance(record.get("intent"), str) and not record["intent"].strip():
        errors.append("intent is empty")
    if isinstance(record.get("start_url"), str):
        for url in record["start_url"].split(" |AND| "):
            errors += _check_url(url.strip(), "start_url", allow_last=False)
    for key, kind in (("require_login", bool), ("require_reset", bool), ("old_task_id", int)):
        if key in record and record[key] is not None and not isinstance(record[key], kind):
            errors.append(f"{key} must be {kind.__name__}")
    if "storage_state" in record and not isinstance(record["storage_state"], str | None):
        errors.append("storage_state must be a path string or null")
    unknown_ph = sorted(p for p in _placeholders_in(record) if p not in PLACEHOLDERS)
    if unknown_ph:
        errors.append(f"unknown placeholders {unknown_ph}; known: {sorted(PLACEHOLDERS)}")
    ev = record.get("eval")
    if isinstance(ev, dict):
        errors += _check_eval(ev)
    return errors


def _check_eval(ev: dict) -> list[str]:
    types = ev.get("eval_types")
    if not _str_list(types):
        return ["eval.eval_types must be a non-empty list of strings"]
    errors = [
        f"unknown eval type {t!r}; known: {list(EVAL_TYPES)}" for t in types if t not in EVAL_TYPES
    ]
    if "string_match" in types:
        errors += _check_answers(ev.get("reference_answers"), "eval.reference_answers", STRING_KEYS)
    if "url_match" in types:
        errors += _check_url(ev.get("reference_url"), "eval.reference_url", allow_last=False)
        if ev.get("url_note", "EXACT") not in URL_NOTES:
            errors.append(f"eval.url_note must be one of {list(URL_NOTES)}")
    if "program_html" in types:
        errors += _check_program_html(ev.get("program_html"))
    if "string_note" in ev and not isinstance(ev["string_note"], str):
        errors.append("eval.string_note must be a string")
    return errors


def needs_judge(record: dict) -> bool:
    """Whether any reference of this task is fuzzy_match (graded only with an LLM judge)."""
    ev = record.get("eval") or {}
    answers = ev.get("reference_answers") or {}
    if "string_match" in (ev.get("eval_types") or []) and "fuzzy_match" in answers:
        return True
    return any(
        "fuzzy_match" in (t.get("required_contents") or {}) for t in ev.get("program_html") or []
    )


def validate_indexed(data: Any) -> tuple[list[tuple[int, dict]], list[dict]]:
    """Split a loaded JSON file into ([(index, good record)], [{"index", "reason"}])."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return [], [{"index": None, "reason": "the file must hold a JSON list of task objects"}]
    good, bad = [], []
    seen: set[int] = set()
    for i, record in enumerate(data):
        errors = validate_task(record)
        if not errors and record["task_id"] in seen:
            errors = [f"duplicate task_id {record['task_id']}"]
        if errors:
            bad.append({"index": i, "reason": "; ".join(errors)})
        else:
            seen.add(record["task_id"])
            good.append((i, record))
    return good, bad


def validate_records(data: Any) -> tuple[list[dict], list[dict]]:
    """Split a loaded JSON file into (good records, [{"index", "reason"}])."""
    good, bad = validate_indexed(data)
    return [r for _, r in good], bad
