"""The oracle driver on hand-made observations: matching, scrolling, waiting, plan round trips."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import pytest

from sandbox.oracle import (
    SAVED,
    Click,
    Dynamic,
    Exit,
    OraclePlayer,
    Search,
    Seek,
    Select,
    T,
    Type,
    dynamic,
    find,
    from_dict,
    plan_from_json,
    plan_to_json,
    to_dict,
)


@dataclass
class Obs:
    elements: dict = field(default_factory=dict)
    html: str = ""
    url: str = "http://127.0.0.1/"


def el(tag: str, top: int, text: str = "", **attrs: str) -> dict:
    attrs = {k.replace("_", "-"): v for k, v in attrs.items()}
    return {"tag": tag, "bbox": [10, top, 100, 20], "text": text, "attrs": attrs}


def parse(response: str) -> ast.Call:
    """The call after the comment lines, parsed as WebRL's harness does."""
    code = [line for line in response.splitlines() if not line.startswith("#")]
    return ast.parse(code[-1], mode="eval").body


def kwargs(response: str) -> dict:
    return {k.arg: ast.literal_eval(k.value) for k in parse(response).keywords}


def test_targets_match_by_testid_and_prefer_exact_text():
    obs = Obs({"3": el("a", 10, "Tea Towel"), "4": el("a", 40, "Tea", data_testid="x")})
    assert find(obs, T(text="tea"))[0] == "4"
    assert find(obs, T(text="towel"))[0] == "3"
    assert find(obs, T(testid="x", text="Tea Towel")) is None
    assert find(obs, T(placeholder="Search")) is None


def test_it_clicks_a_visible_target_in_webrl_grammar():
    player = OraclePlayer([Click(T(testid="go")), Exit("done")])
    response = player.next_response(Obs({"7": el("a", 100, "Go on", data_testid="go")}, "<a>"))
    assert response.startswith("# Element: Go on\n")
    assert kwargs(response) == {"action": "Click", "element": "7"}


def test_it_scrolls_until_the_target_is_in_the_viewport():
    player = OraclePlayer([Click(T(testid="far"))])
    assert kwargs(player.next_response(Obs({"1": el("a", 5, "top")}))) == {"action": "Scroll Down"}
    below = Obs({"2": el("button", 900, "Far", data_testid="far")})
    assert kwargs(player.next_response(below)) == {"action": "Scroll Down"}
    inside = Obs({"2": el("button", 300, "Far", data_testid="far")}, "<b>")
    assert kwargs(player.next_response(inside))["element"] == "2"


def test_it_gives_up_with_an_exit_when_the_target_never_appears():
    player = OraclePlayer([Click(T(testid="missing"))])
    responses = [player.next_response(Obs({"1": el("a", 5, "x")})) for _ in range(20)]
    assert responses[-1].startswith("exit(") and "could not find" in responses[-1]


def test_typing_searching_and_selecting_quote_their_arguments():
    obs = Obs({"1": el("input", 10, placeholder="Q", data_testid="q"),
               "2": el("select", 40, data_testid="s")})  # fmt: skip
    tricky = 'say "hi" \\ now'
    player = OraclePlayer([Type(T(testid="q"), tricky), Search(T(testid="q"), "tea"),
                           Select(T(testid="s"), "Size: M")])  # fmt: skip
    assert kwargs(player.next_response(obs)) == {
        "action": "Type",
        "argument": tricky,
        "element": "1",
    }
    assert kwargs(player.next_response(Obs(obs.elements, "changed")))["action"] == "Search"
    chosen = kwargs(player.next_response(Obs(obs.elements, "changed again")))
    assert chosen == {"action": "Select Dropdown Option", "argument": "Size: M", "element": "2"}


def test_it_waits_while_the_page_has_not_changed_after_a_click():
    obs = Obs({"1": el("a", 10, "Save", data_testid="save")}, '<a data-bbox="1,2,3,4">Save</a>')
    player = OraclePlayer([Click(T(testid="save")), Exit("ok")])
    player.next_response(obs)
    same = Obs(obs.elements, '<a data-bbox="9,9,9,9">Save</a>')
    waits = [player.next_response(same) for _ in range(2)]
    assert all(kwargs(w)["action"] == "Hover" for w in waits)
    assert waits[0] != waits[1], "two identical waits in a row would look like a stuck agent"
    assert player.next_response(Obs(obs.elements, "<p>Saved</p>")) == 'exit(message="ok")'


def test_a_save_exit_waits_for_the_confirmation_flash():
    player = OraclePlayer([SAVED])
    assert kwargs(player.next_response(Obs({"1": el("a", 5, "x")})))["action"] == "Hover"
    flash = Obs({"1": el("div", 5, "Saved.", data_testid="flash")})
    assert player.next_response(flash) == 'exit(message="")'


def test_seek_follows_next_pages_until_the_target_shows():
    player = OraclePlayer([Seek(T(testid="row-9"), more=T(testid="page-next"))])
    page1 = Obs({"1": el("a", 600, "Next", data_testid="page-next")}, "p1")
    assert kwargs(player.next_response(page1)) == {"action": "Click", "element": "1"}
    page2 = Obs({"5": el("a", 200, "View", data_testid="row-9")}, "p2")
    assert kwargs(player.next_response(page2)) == {"action": "Click", "element": "5"}


@dynamic("test-first-link")
def _first_link(observation, prefix: str):
    for element in observation.elements.values():
        if element["text"].startswith(prefix):
            return Click(T(text=element["text"]))
    return None


def test_dynamic_steps_choose_on_the_live_page():
    player = OraclePlayer([Dynamic("test-first-link", {"prefix": "Or"})])
    obs = Obs({"1": el("a", 10, "Apple"), "2": el("a", 30, "Orange")})
    assert kwargs(player.next_response(obs))["element"] == "2"


def test_plans_round_trip_through_json():
    plan = [Search(T(testid="q"), "tea"), Seek(T(testid="r"), T(testid="n")), SAVED,
            Dynamic("test-first-link", {"prefix": "A"})]  # fmt: skip
    assert plan_from_json(plan_to_json(plan)) == plan
    assert to_dict(Exit("x")) == {"op": "Exit", "message": "x"}


@pytest.mark.parametrize(
    "garbage", [{"op": "Teleport"}, {"op": "Click", "target": {"bogus": 1}}, "x"]
)
def test_malformed_steps_are_rejected(garbage):
    with pytest.raises((ValueError, TypeError)):
        from_dict(garbage)


def test_an_exit_waiting_for_a_flash_sees_it_in_the_page_text():
    """A flash message is text, not a control: it has no id, but the exit must still see it."""
    from types import SimpleNamespace

    from sandbox.oracle import SAVED, OraclePlayer

    with_flash = SimpleNamespace(
        html='<body> <div data-testid="flash" data-text="Saved."> Saved. </div> </body>',
        elements={"0": {"tag": "a", "bbox": [0, 0, 10, 10], "text": "Home", "attrs": {}}},
    )
    assert OraclePlayer([SAVED]).next_response(with_flash).startswith("exit(")
