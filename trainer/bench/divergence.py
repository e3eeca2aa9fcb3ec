"""Where a policy's episode first leaves the oracle's path on the same task, and how.

The world is deterministic: from the same start, the same actions lead to the same pages. So the
first step at which a policy's action differs from the oracle's is where its episode went wrong,
and what differs says why: another kind of action (it exited, or clicked where the oracle typed),
another element of the same kind, another typed argument, another answer. Pure text in, counts
out: `apps.runs.divergence` reads the episodes from the database, `manage.py policy_divergence`
prints the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from trainer.env.actions import Action, Kind, parse_action

CLASSES = ("solved", "unparsed", "kind", "element", "argument", "answer", "stopped", "beyond")
"""How an episode ended up against the oracle's:

- `solved`: the evaluator scored it a success (whatever path it took);
- `unparsed`: the first differing step did not parse;
- `kind`: another kind of action (say, an exit where the oracle clicked);
- `element`: the same kind on another element;
- `argument`: the same kind and element, another typed text or option;
- `answer`: both exited, with another message;
- `stopped`: the episode ended (a step or repeat limit, an error) while still on the oracle's path;
- `beyond`: every oracle step was matched and the episode went on, or ended unscored."""


@dataclass(frozen=True)
class Divergence:
    cls: str
    step: int | None
    """Index of the first differing step in the policy's episode (None for `solved`)."""
    policy: str = ""
    oracle: str = ""
    detail: str = ""
    """For `kind`: "policy kind -> oracle kind"."""

    def to_dict(self) -> dict:
        return asdict(self)


def final_call(response: str) -> str:
    """The response's last line: the call itself, without the `# Element:` comment."""
    lines = [line for line in response.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


def first_divergence(policy: Sequence[str], oracle: Sequence[str], solved: bool) -> Divergence:
    """Compare the policy's responses with the oracle's (its waiting steps left out) in order."""
    if solved:
        return Divergence("solved", None)
    for i, wanted in enumerate(oracle):
        if i >= len(policy):
            return Divergence("stopped", i, "", final_call(wanted))
        got, gold = parse_action(policy[i]), parse_action(wanted)
        said, meant = final_call(policy[i]), final_call(wanted)
        if not isinstance(gold, Action):  # an oracle step that does not parse: nothing to compare
            return Divergence("beyond", i, said, meant, "the oracle's step does not parse")
        if not isinstance(got, Action):
            return Divergence("unparsed", i, said, meant)
        if got.kind != gold.kind:
            return Divergence("kind", i, said, meant, f"{got.kind.value} -> {gold.kind.value}")
        if got.element != gold.element:
            return Divergence("element", i, said, meant)
        if _norm(got.argument) != _norm(gold.argument):
            cls = "answer" if gold.kind == Kind.EXIT else "argument"
            return Divergence(cls, i, said, meant)
    return Divergence(
        "beyond", len(oracle), final_call(policy[len(oracle)]) if len(policy) > len(oracle) else ""
    )


def summarise(rows: Sequence[dict], examples: int = 3) -> dict:
    """Counts over `rows` ({"divergence": Divergence, "site": str, "template": str, "intent": str}):
    by class, by class and step, by kind pair, by site and by template; a few examples per class."""
    by_class = Counter(r["divergence"].cls for r in rows)
    by_step = Counter(
        f"{r['divergence'].cls}@{r['divergence'].step}"
        for r in rows
        if r["divergence"].step is not None
    )
    kinds = Counter(r["divergence"].detail for r in rows if r["divergence"].cls == "kind")
    sites: dict[str, Counter] = {}
    templates: dict[str, Counter] = {}
    for r in rows:
        sites.setdefault(r["site"], Counter())[r["divergence"].cls] += 1
        templates.setdefault(r["template"], Counter())[r["divergence"].cls] += 1
    shown: dict[str, list[dict]] = {}
    for r in rows:
        d = r["divergence"]
        if d.cls != "solved" and len(shown.setdefault(d.cls, [])) < examples:
            shown[d.cls].append({"intent": r["intent"], **d.to_dict()})
    return {
        "episodes": len(rows),
        "by_class": {c: by_class.get(c, 0) for c in CLASSES},
        "by_class_and_step": dict(sorted(by_step.items())),
        "kind_changes": dict(kinds.most_common()),
        "by_site": {s: dict(c) for s, c in sorted(sites.items())},
        "by_template": {t: dict(c) for t, c in sorted(templates.items())},
        "examples": shown,
    }
