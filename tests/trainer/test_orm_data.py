"""The ORM's data: failures built from oracle successes, checked by the real offline evaluator."""

import json

from trainer.env.evaluators import score_offline
from trainer.learn.orm_data import (
    constructed_failures,
    cut_short,
    ended_early,
    sample_balanced,
    split_by_group,
    swapped_intent,
    wrong_answer,
)

SHOP = "http://127.0.0.1:9710"


def _task(intent: str, kind: str, ev: dict, answer: str = "", template: int = 101) -> dict:
    return {
        "intent": intent,
        "intent_template_id": template,
        "kind": kind,
        "eval": ev,
        "oracle": [{"op": "Click", "target": {"testid": "x"}}, {"op": "Exit", "message": answer}],
    }


def _price(product: str, answer: str) -> dict:
    ev = {"eval_types": ["string_match"], "reference_answers": {"must_include": [answer]}}
    return _task(f"What is the price of {product}?", "info", ev, answer)


def _wishlist(product: str) -> dict:
    ev = {"eval_types": ["program_html"], "program_html": [{"url": "last", "locator": ""}]}
    return _task(f"Add {product} to my wish list.", "state", ev, template=120)


def _sorted(category: str) -> dict:
    ev = {
        "eval_types": ["url_match"],
        "reference_url": f"__SHOPPING__/category/{category}?sort=price_desc",
        "url_note": "EXACT",
    }
    return _task(f"Show {category} from the most expensive", "nav", ev, template=130)


def _row(task: dict, steps: list[tuple[str, str, str]], answer: str = "", pk: int = 1) -> dict:
    """steps: (action kind, response, url of the page it was chosen on)."""
    return {
        "task_id": pk,
        "intent": task["intent"],
        "task": task,
        "responses": [r for _, r, _ in steps],
        "actions": [{"kind": k} for k, _, _ in steps],
        "observations": [f"<html> page {i} </html>" for i in range(len(steps))],
        "urls": [f"{SHOP}{u}" for _, _, u in steps],
        "final_answer": answer,
        "final_url": f"{SHOP}{steps[-1][2]}",
        "human_label": None,
    }


TEA = _price("Tea", "$5.00")
LAMP = _price("Lamp", "$12.50")
INFO = _row(TEA, [
    ("search", 'do(action="Search", argument="Tea", element="1")', "/"),
    ("click", 'do(action="Click", element="7")', "/search?q=Tea"),
    ("hover", 'do(action="Hover", element="0")', "/product/3"),
    ("exit", 'exit(message="$5.00")', "/product/3"),
], answer="$5.00")  # fmt: skip
JAM, HONEY = _wishlist("Jam"), _wishlist("Honey")
STATE = _row(JAM, [
    ("search", 'do(action="Search", argument="Jam", element="1")', "/"),
    ("click", 'do(action="Click", element="4")', "/search?q=Jam"),
    ("click", 'do(action="Click", element="9")', "/product/30"),
    ("hover", 'do(action="Hover", element="0")', "/product/30"),
    ("exit", 'exit(message="")', "/product/30"),
], pk=2)  # fmt: skip
KITCHEN = _sorted("kitchen")
NAV = _row(KITCHEN, [
    ("click", 'do(action="Click", element="2")', "/"),
    ("select", 'do(action="Select Dropdown Option", argument="Price", element="5")', "/category/kitchen"),
    ("exit", 'exit(message="")', "/category/kitchen?sort=price_desc"),
], pk=3)  # fmt: skip


def test_the_offline_evaluator_scores_answers_and_url_paths_and_leaves_the_page_to_the_browser():
    assert score_offline(TEA, "It costs $5.00", "") == 1.0
    assert score_offline(TEA, "$12.50", "") == 0.0
    assert score_offline(KITCHEN, "", f"{SHOP}/category/kitchen?sort=price_desc") == 1.0
    assert score_offline(KITCHEN, "", "http://127.0.0.1:9999/category/kitchen?sort=price_desc/")
    assert score_offline(KITCHEN, "", f"{SHOP}/category/kitchen") == 0.0
    assert score_offline(JAM, "", f"{SHOP}/product/30") is None
    # the oracle's own trajectories score as the browser scored them
    for row in (INFO, NAV):
        assert score_offline(row["task"], row["final_answer"], row["final_url"]) == 1.0


def test_an_info_trajectory_cut_before_its_answer_fails_but_one_exiting_early_still_answers():
    ex = cut_short(INFO, score_offline)
    assert ex["label"] is False and ex["source"] == "cut_short"
    assert ex["responses"] == INFO["responses"][:3] and ex["last_html"] == INFO["observations"][2]
    assert ended_early(INFO, score_offline) is None  # the answer alone decides an info task


def test_a_state_trajectory_that_exits_before_its_last_change_fails_but_not_one_missing_its_exit():
    assert cut_short(STATE, score_offline) is None  # the wish list was already changed
    ex = ended_early(STATE, score_offline)
    assert ex["label"] is False and ex["last_html"] == STATE["observations"][2]
    assert ex["responses"] == [*STATE["responses"][:2], 'exit(message="")']


def test_a_nav_trajectory_that_exits_before_its_last_navigation_fails_by_url_match():
    assert cut_short(NAV, score_offline) is None  # it already stands on the right page
    ex = ended_early(NAV, score_offline)
    assert ex["responses"] == [NAV["responses"][0], 'exit(message="")']


def test_another_instances_answer_or_instruction_fails_where_the_evaluator_says_so():
    ex = wrong_answer(INFO, LAMP, score_offline)
    assert ex["responses"][-1] == f"exit(message={json.dumps('$12.50')})" and not ex["label"]
    assert wrong_answer(INFO, _price("Mug", "$5.00"), score_offline) is None  # same answer: right
    swapped = swapped_intent(INFO, LAMP, score_offline)
    assert swapped["intent"] == LAMP["intent"] and swapped["responses"] == INFO["responses"]
    assert swapped_intent(STATE, HONEY, score_offline)["intent"] == HONEY["intent"]
    assert swapped_intent(INFO, _price("Mug", "$5.00"), score_offline) is None


def test_constructed_failures_are_all_failures_of_the_kinds_each_trajectory_allows():
    made = constructed_failures(
        [INFO, STATE, NAV], [TEA, LAMP, JAM, HONEY, KITCHEN], score_offline, 0
    )
    kinds = sorted((ex["group"], ex["source"]) for ex in made)
    assert kinds == [
        ("1", "cut_short"), ("1", "swapped_intent"), ("1", "wrong_answer"),
        ("2", "ended_early"), ("2", "swapped_intent"),
        ("3", "ended_early"),
    ]  # fmt: skip
    assert not any(ex["label"] for ex in made)


def test_balancing_samples_the_larger_class_down_and_takes_its_sources_in_turn():
    yes = [{"id": f"y{i}", "source": "oracle"} for i in range(10)]
    policy = [{"id": f"p{i}", "source": "policy"} for i in range(3)]
    cut = [{"id": f"c{i}", "source": "cut_short"} for i in range(30)]
    items = yes + policy + cut
    labels = [True] * 10 + [False] * 33
    out = sample_balanced(items, labels, seed=0)
    ids = [ex["id"] for ex in out]
    assert len(ids) == len(set(ids)) == 20  # nothing repeated
    assert sum(i.startswith("y") for i in ids) == 10
    assert sum(i.startswith("p") for i in ids) == 3  # the scarce source is taken whole
    assert sum(i.startswith("c") for i in ids) == 7
    assert len(sample_balanced(items, labels, seed=0, per_class=4)) == 8
    assert sample_balanced(items, labels, seed=0) == out
    assert sample_balanced(yes, [True] * 10, seed=0) == yes


def test_held_out_tasks_are_held_out_with_every_example_built_from_them():
    examples = [{"group": str(g), "n": i} for g in range(20) for i in range(3)]
    train, held = split_by_group(examples, 0.25, seed=0)
    assert len(held) == 15 and len(train) == 45
    assert not {ex["group"] for ex in train} & {ex["group"] for ex in held}
    train, held = split_by_group([{"n": i} for i in range(20)], 0.25, seed=0)
    assert len(held) == 5 and len(train) == 15  # without groups, each example is its own


def test_a_human_label_rides_on_the_trajectorys_own_example_and_wins_but_not_on_built_ones():
    from trainer.learn.orm import example_label
    from trainer.learn.orm_data import example

    labelled = {**INFO, "human_label": False}
    own = example(labelled, True, "policy")
    assert own["human_label"] is False and example_label(own) is False
    built = cut_short(labelled, score_offline)
    assert "human_label" not in built and example_label(built) is False
