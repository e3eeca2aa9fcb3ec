"""The first step where a policy's episode leaves the oracle's path, and its class."""

from __future__ import annotations

import pytest

from trainer.bench.divergence import CLASSES, Divergence, first_divergence, summarise

SEARCH = '# Element: Search\ndo(action="Search", argument="Maple Row Dutch Oven", element="5")'
OPEN = '# Element: Maple Row Dutch Oven\ndo(action="Click", element="31")'
ANSWER = 'exit(message="$23.99")'
ORACLE = [SEARCH, OPEN, ANSWER]


@pytest.mark.parametrize(
    ("policy", "solved", "cls", "step", "detail"),
    [
        (ORACLE, True, "solved", None, ""),
        (["garbage", OPEN, ANSWER], False, "unparsed", 0, ""),
        (['exit(message="")'], False, "kind", 0, "exit -> search"),
        ([SEARCH, 'do(action="Click", element="32")'], False, "element", 1, ""),
        ([SEARCH.replace("Maple Row Dutch Oven", "Maple Row"), OPEN], False, "argument", 0, ""),
        ([SEARCH, OPEN, 'exit(message="$9.99")'], False, "answer", 2, ""),
        ([SEARCH, OPEN], False, "stopped", 2, ""),
        ([*ORACLE, 'do(action="Scroll Down")'], False, "beyond", 3, ""),
    ],
)
def test_each_way_of_leaving_the_oracles_path_is_told_apart(policy, solved, cls, step, detail):
    got = first_divergence(policy, ORACLE, solved)
    assert (got.cls, got.step, got.detail) == (cls, step, detail)
    assert got.cls in CLASSES


def test_the_element_comment_and_case_and_spacing_of_arguments_do_not_count():
    policy = ['do(action="Search", argument="maple row  dutch oven", element="5")',
              "# Element: something else\n" + OPEN.splitlines()[1], ANSWER]  # fmt: skip
    assert first_divergence(policy, ORACLE, False).cls == "beyond"
    differs = first_divergence([SEARCH, 'do(action="Click", element="30")'], ORACLE, False)
    assert (differs.policy, differs.oracle) == ('do(action="Click", element="30")',
                                                'do(action="Click", element="31")')  # fmt: skip


def test_the_summary_counts_by_class_step_site_and_template():
    def row(d, site="shopping", template="What is the price of {{product}}?"):
        return {"divergence": d, "site": site, "template": template, "intent": "x"}

    rows = [
        row(Divergence("solved", None)),
        row(Divergence("kind", 0, detail="exit -> search")),
        row(Divergence("kind", 2, detail="exit -> click"), site="reddit", template="T2"),
        row(Divergence("answer", 2)),
    ]
    s = summarise(rows, examples=1)
    assert s["episodes"] == 4
    assert s["by_class"] == {"solved": 1, "unparsed": 0, "kind": 2, "element": 0, "argument": 0,
                             "answer": 1, "stopped": 0, "beyond": 0}  # fmt: skip
    assert s["by_class_and_step"] == {"answer@2": 1, "kind@0": 1, "kind@2": 1}
    assert s["kind_changes"] == {"exit -> search": 1, "exit -> click": 1}
    assert s["by_site"] == {
        "reddit": {"kind": 1},
        "shopping": {"solved": 1, "kind": 1, "answer": 1},
    }
    assert s["by_template"]["T2"] == {"kind": 1}
    assert [len(v) for v in s["examples"].values()] == [1, 1]  # one example per class asked
