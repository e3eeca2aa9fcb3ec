"""The ORM's examples (spec §4.2): oracle successes, failures built from them without a browser,
the policy's own rollouts, human labels; sampled to equal YES and NO, split by task.

Every constructed failure is checked by the task's evaluator where it runs without a page
(`evaluate(task, answer, final_url)`: string_match, url_match) and is kept only when that says
"failure"; where the evaluator needs the page (program_html), only constructions that never made
the state change count as failures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

Evaluate = Callable[[dict, str, str], "float | None"]
"""(task config, final answer, final URL) -> ground-truth score, None when it needs the page."""

NEAR_MISS_KINDS = ("swapped_intent", "cut_short", "wrong_answer", "ended_early")
WAITS = frozenset({"hover", "scroll down", "scroll up"})
"""Actions that change nothing (the oracle hovers while it waits for a page and scrolls to find)."""


def example(row: dict, label: bool, source: str, **changes: Any) -> dict:
    """An ORM example of `row` (intent, responses, last observation), optionally changed."""
    ex = {
        "intent": row["intent"],
        "responses": list(row["responses"]),
        "last_html": row["observations"][-1],
        "label": bool(label),
        "source": source,
        "group": str(row.get("task_id", row["intent"])),
    }
    if row.get("human_label") is not None and not changes:
        ex["human_label"] = bool(row["human_label"])
    ex.update(changes)
    return ex


def _kinds(row: dict) -> list[str | None]:
    return [(a or {}).get("kind") for a in row["actions"]]


def _effective(row: dict) -> list[int]:
    """Indices of the steps that did something (parsed, not a wait or a scroll)."""
    return [i for i, k in enumerate(_kinds(row)) if k and k not in WAITS]


def _answer(task: dict) -> str:
    """The oracle plan's final answer, "" when it ends without one."""
    plan = task.get("oracle") or []
    last = plan[-1] if plan else {}
    return str(last.get("message") or "") if last.get("op") == "Exit" else ""


def _is_failure(score: float | None, never_changed_state: bool, task: dict) -> bool:
    if score is not None:
        return score < 1.0
    return never_changed_state and task.get("kind") == "state"


def cut_short(row: dict, evaluate: Evaluate) -> dict | None:
    """The trajectory cut before its last effective action: no answer, an earlier page."""
    eff, kinds = _effective(row), _kinds(row)
    if not eff or eff[-1] == 0:
        return None
    k = eff[-1]
    score = evaluate(row["task"], "", row["urls"][k])
    dropped_change = any(kinds[i] != "exit" for i in eff if i >= k)
    if not _is_failure(score, dropped_change, row["task"]):
        return None
    return example(
        row,
        False,
        "cut_short",
        responses=row["responses"][:k],
        last_html=row["observations"][k - 1],
    )


def ended_early(row: dict, evaluate: Evaluate) -> dict | None:
    """The agent exits where it should have made its last change (submitted, navigated)."""
    kinds = _kinds(row)
    changes = [i for i in _effective(row) if kinds[i] != "exit"]
    if not changes:
        return None
    j = changes[-1]
    final = row["responses"][-1] if kinds[-1] == "exit" else 'exit(message="")'
    score = evaluate(row["task"], row.get("final_answer") or "", row["urls"][j])
    if not _is_failure(score, True, row["task"]):
        return None
    return example(
        row, False, "ended_early",
        responses=[*row["responses"][:j], final], last_html=row["observations"][j],
    )  # fmt: skip


def wrong_answer(row: dict, other: dict, evaluate: Evaluate) -> dict | None:
    """The answer of another instance of the same template, where the evaluator rejects it."""
    answer = _answer(other)
    if _kinds(row)[-1] != "exit" or not answer or not (row.get("final_answer") or "").strip():
        return None
    score = evaluate(row["task"], answer, row.get("final_url") or "")
    if score is None or score >= 1.0:
        return None
    exit_call = f"exit(message={json.dumps(answer, ensure_ascii=False)})"
    return example(row, False, "wrong_answer", responses=[*row["responses"][:-1], exit_call])


def swapped_intent(row: dict, other: dict, evaluate: Evaluate) -> dict | None:
    """The trajectory judged against another instance's instruction from the same template."""
    if other["intent"] == row["intent"]:
        return None
    score = evaluate(other, row.get("final_answer") or "", row.get("final_url") or "")
    if not _is_failure(score, True, other):
        return None
    return example(row, False, "swapped_intent", intent=other["intent"])


def constructed_failures(
    rows: Sequence[dict], tasks: Sequence[dict], evaluate: Evaluate, seed: int
) -> list[dict]:
    """Up to one failure of each kind per successful oracle row. `tasks` are the configs of the
    same split, where another instance of each row's template is found."""
    rng = random.Random(seed)
    by_template: dict[Any, list[dict]] = {}
    for task in tasks:
        by_template.setdefault(task.get("intent_template_id"), []).append(task)
    out = []
    for row in rows:
        others = [
            t for t in by_template.get(row["task"].get("intent_template_id"), [])
            if t["intent"] != row["intent"]
        ]  # fmt: skip
        other = rng.choice(others) if others else None
        made = [cut_short(row, evaluate), ended_early(row, evaluate)]
        if other is not None:
            made += [wrong_answer(row, other, evaluate), swapped_intent(row, other, evaluate)]
        out.extend(ex for ex in made if ex is not None)
    return out


def sample_balanced(
    examples: Sequence[dict], labels: Sequence[bool], seed: int, per_class: int = 0
) -> list[dict]:
    """As many YES as NO examples, `per_class` each at most (0 = no cap): the larger class is
    subsampled, never repeated, taking its sources (oracle, policy, each near-miss kind) in turn
    so that a plentiful source does not crowd out a scarce one. Unchanged when a class is empty."""
    rng = random.Random(seed)
    classes = [
        [ex for ex, y in zip(examples, labels, strict=True) if y],
        [ex for ex, y in zip(examples, labels, strict=True) if not y],
    ]
    if not all(classes):
        return list(examples)
    n = min(len(c) for c in classes)
    if per_class:
        n = min(n, per_class)
    out = []
    for items in classes:
        by_source: dict[str, list[dict]] = {}
        for ex in items:
            by_source.setdefault(str(ex.get("source", "")), []).append(ex)
        queues = [rng.sample(v, len(v)) for _, v in sorted(by_source.items())]
        taken: list[dict] = []
        while len(taken) < n:
            for queue in queues:
                if queue and len(taken) < n:
                    taken.append(queue.pop())
        out.extend(taken)
    rng.shuffle(out)
    return out


def split_by_group(
    examples: Sequence[dict], fraction: float, seed: int
) -> tuple[list[dict], list[dict]]:
    """(train, held out): about `fraction` of the groups (tasks) held out whole, so no example of
    a held-out task, constructed or not, is trained on. An example without a `group` is its own."""
    keys = [str(ex["group"]) if "group" in ex else f"#{i}" for i, ex in enumerate(examples)]
    groups = sorted(set(keys))
    random.Random(seed).shuffle(groups)
    n_hold = int(round(fraction * len(groups))) if len(groups) > 1 else 0
    held = set(groups[:n_hold])
    train = [ex for ex, k in zip(examples, keys, strict=True) if k not in held]
    return train, [ex for ex, k in zip(examples, keys, strict=True) if k in held]
