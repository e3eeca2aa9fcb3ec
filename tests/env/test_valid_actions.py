"""The valid-action set of `rollout.decoding="valid_actions"`: what it holds, and that all of it parses."""

import re

import pytest

from trainer.env.actions import Action, Kind, parse_action
from trainer.env.types import EpisodeLimits, PolicyOutput
from trainer.env.valid_actions import page_elements, phrase_spans, spans, valid_actions

PAGE = (
    '<html> <a id="0"> Home </a> <input id="1" type="text" placeholder="Search entire store here...">'
    ' </input> <button id="2" title="Go"> </button> <select id="3"> <option value="p">'
    ' Price: low to high </option> <option selected="true"> Name </option> </select>'
    " <div> <p> Order #1206 was placed by Mara Quinn </p> </div>"
    ' <input id="4" type="checkbox"> </input> <textarea id="5"> </textarea>'
    ' <a id="6"> <span> Maple Row Travel </span> <span> Dutch Oven </span> </a> </html>'
)
INTENT = 'Search for "Maple Row Travel Dutch Oven" in jonas.weber/build-cache under $25'


def test_every_valid_action_parses_and_names_an_element_of_the_page():
    ids = {el.id for el in page_elements(PAGE)[0]}
    actions = valid_actions(INTENT, PAGE)
    assert len(actions) == len(set(actions)) > 100
    for text in actions:
        action = parse_action(text)
        assert isinstance(action, Action), text
        if action.element is not None:
            assert action.element in ids, text


def test_clicks_and_hovers_cover_every_element_and_nothing_else():
    actions = valid_actions(INTENT, PAGE)
    clicked = {parse_action(a).element for a in actions if parse_action(a).kind == Kind.CLICK}
    hovered = {parse_action(a).element for a in actions if parse_action(a).kind == Kind.HOVER}
    assert clicked == hovered == {"0", "1", "2", "3", "4", "5", "6"}


def test_typed_arguments_are_word_spans_of_the_instruction_stripped_and_split():
    typed = {
        (a.element, a.argument)
        for a in map(parse_action, valid_actions(INTENT, PAGE))
        if a.kind in (Kind.TYPE, Kind.SEARCH)
    }
    assert {el for el, _ in typed} == {
        "1",
        "5",
    }  # the text input and the textarea, not the checkbox
    args = {arg for _, arg in typed}
    for want in ("Maple Row Travel Dutch Oven", '"Maple Row Travel Dutch Oven"', "Maple Row",
                 "jonas.weber/build-cache", "jonas.weber", "build-cache", "25", "$25", INTENT):  # fmt: skip
        assert want in args, want
    for arg in args:  # a span never starts or ends inside a word
        assert re.search(rf'(^|[\s/#$"]){re.escape(arg)}($|[\s/#$"])', INTENT), arg
    assert "Row Trav" not in args and "Mara Quinn" not in args  # page text only with page_arguments


def test_page_arguments_add_spans_of_the_page():
    actions = valid_actions(INTENT, PAGE, page_arguments=True)
    assert 'do(action="Type", argument="Mara Quinn", element="1")' in actions


def test_a_select_offers_its_own_option_texts():
    selected = {
        a.argument
        for a in map(parse_action, valid_actions(INTENT, PAGE))
        if a.kind == Kind.SELECT and a.element == "3"
    }
    assert selected == {"Price: low to high", "Name"}
    assert not [a for a in map(parse_action, valid_actions(INTENT, PAGE))
                if a.kind == Kind.SELECT and a.element != "3"]  # fmt: skip


def test_exit_messages_are_empty_small_numbers_or_spans_of_the_page_and_instruction():
    messages = {
        a.argument for a in map(parse_action, valid_actions(INTENT, PAGE)) if a.kind == Kind.EXIT
    }
    for want in (
        "",
        "0",
        "7",
        "1206",
        "Mara Quinn",
        "Maple Row Travel",
        "Dutch Oven",
        "build-cache",
    ):
        assert want in messages, want
    assert "Order #1206 was placed by Mara Quinn" in messages  # 7 words: as long as an address
    assert "Maple Row Travel, Dutch Oven" in messages  # consecutive short texts, listed
    long = "<html> <p> one two three four five six seven eight nine </p> </html>"
    cut = {parse_action(a).argument for a in valid_actions("x", long) if a.startswith("exit(")}
    assert "one two three four five six seven eight" in cut
    assert "one two three four five six seven eight nine" not in cut  # over 8 page words


def test_element_actions_also_come_with_the_oracles_comment_line():
    actions = set(valid_actions(INTENT, PAGE))
    for text in (
        '# Element: Home\ndo(action="Click", element="0")',
        '# Element: Search entire store here...\ndo(action="Search", argument="Dutch Oven", element="1")',
        '# Element: Go\ndo(action="Click", element="2")',  # the title, as the oracle describes it
        '# Element: Maple Row Travel Dutch Oven\ndo(action="Click", element="6")',
        'do(action="Click", element="6")',
        'do(action="Scroll Down")',
        'do(action="Go Backward")',
    ):
        assert text in actions, text


def test_text_that_would_move_the_parsers_cut_is_left_out():
    got = spans('Type exit("x") then do(it) now')
    assert got and not any("exit(" in s or "do(" in s for s in got)
    for text in valid_actions('Write "exit(now)" here', PAGE):
        assert isinstance(parse_action(text), Action), text


def test_phrase_arguments_cut_no_quoted_phrase_and_no_name_in_two():
    got = phrase_spans(INTENT)
    assert {"Maple Row Travel Dutch Oven", "jonas.weber/build-cache", "build-cache", "25",
            "in jonas.weber/build-cache under $25", "Search for"} <= got  # fmt: skip
    assert not {"Maple Row", "Maple", "Travel Dutch Oven", 'Search for "Maple'} & got
    assert got < spans(INTENT)
    names = "When is The Rolling Pin open on Saturday, and what does Pinecrest Organic Coffee Grinder cost?"
    got = phrase_spans(names)
    assert {"The Rolling Pin", "Pinecrest Organic Coffee Grinder", "Saturday", "When"} <= got
    assert not {"The", "Pinecrest Organic", "Rolling Pin", "When is The"} & got
    titled = 'Create a post titled "Valley Pharmacy Elmstead on Thursday: H" in f/news'
    got = phrase_spans(titled)
    assert {"Valley Pharmacy Elmstead on Thursday: H", "Valley Pharmacy Elmstead", "news"} <= got
    assert not {"Valley", "Valley Pharmacy", "on Thursday"} & got
    assert "Share" in phrase_spans("Share Maple Row Pro Trail Mix on the books forum")
    unclosed = 'An "unclosed quote here'
    assert phrase_spans(unclosed) == spans(unclosed)  # not a quote: every span, as spans()
    typed = {parse_action(a).argument for a in valid_actions(INTENT, PAGE, arguments="phrases")
             if parse_action(a).kind in (Kind.TYPE, Kind.SEARCH)}  # fmt: skip
    assert typed == phrase_spans(INTENT)
    with pytest.raises(ValueError, match="phrases"):
        valid_actions(INTENT, PAGE, arguments="words")


def test_without_empty_exit_every_exit_has_a_message():
    exits = [a for a in valid_actions(INTENT, PAGE) if a.startswith("exit(")]
    assert 'exit(message="")' in exits
    answered = [a for a in valid_actions(INTENT, PAGE, empty_exit=False) if a.startswith("exit(")]
    assert set(answered) == set(exits) - {'exit(message="")'}


@pytest.mark.browser
def test_with_answer_questions_a_question_is_never_exited_empty(env, pages):
    def choices(intent: str) -> list[str]:
        seen = []

        async def policy(ctx):
            seen.append(ctx)
            return PolicyOutput('exit(message="")')

        task = {"task_id": 1, "intent": intent, "start_url": pages.url + "/form.html"}
        limits = EpisodeLimits(decoding="valid_actions", screenshots=False, answer_questions=True)
        env.run(env.pool.run_episode(task, policy, limits=limits, evaluate=False))
        return seen[0].valid_actions

    assert 'exit(message="")' not in choices("Which size is picked? ")
    assert any(a.startswith("exit(message=") for a in choices("Which size is picked?"))
    assert 'exit(message="")' in choices("Pick the large size.")


@pytest.mark.browser
def test_with_block_noop_repeats_an_action_that_changed_nothing_is_not_offered_again(env, pages):
    def run(block: bool) -> list:
        seen = []

        async def policy(ctx):
            seen.append(ctx)
            if ctx.step == 0:
                return PolicyOutput('do(action="Hover", element="0")')
            if ctx.step == 1:
                return PolicyOutput(next(a for a in ctx.valid_actions if '"Large size"' in a))
            return PolicyOutput('exit(message="")')

        task = {
            "task_id": 1,
            "intent": "Pick the large size",
            "start_url": pages.url + "/form.html",
        }
        limits = EpisodeLimits(decoding="valid_actions", screenshots=False,
                               block_noop_repeats=block)  # fmt: skip
        result = env.run(env.pool.run_episode(task, policy, limits=limits, evaluate=False))
        assert result.status == "ok" and len(seen) == 3
        return seen

    hover = 'do(action="Hover", element="0")'
    for block in (True, False):
        seen = run(block)
        calls = [{a.splitlines()[-1] for a in ctx.valid_actions} for ctx in seen]
        assert hover in calls[0]
        assert (hover in calls[1]) is not block  # the hover left the page as it was
        picked = seen[2].responses[-1].splitlines()[-1]
        assert picked in calls[2]  # the selection changed the page: offered again


@pytest.mark.browser
def test_an_episode_hands_the_policy_its_pages_valid_actions_and_the_instruction_last(env, pages):
    seen = []

    async def policy(ctx):
        seen.append(ctx)
        if ctx.step == 0:
            return PolicyOutput(next(a for a in ctx.valid_actions if '"Large size"' in a))
        return PolicyOutput('exit(message="")')

    task = {"task_id": 1, "intent": "Pick the large size", "start_url": pages.url + "/form.html"}
    limits = EpisodeLimits(decoding="valid_actions", prompt="instruction_last", screenshots=False)
    result = env.run(env.pool.run_episode(task, policy, limits=limits, evaluate=False))
    assert result.status == "ok" and result.steps[0].error is None, result.steps[0].error
    for ctx in seen:
        named = {parse_action(a).element for a in ctx.valid_actions} - {None}
        assert named and named <= set(ctx.observation.elements)
    after = seen[1].observation
    size = next(e for e in after.elements.values() if e["attrs"].get("data-testid") == "size")
    assert size["attrs"]["data-text"] == "Large size"
    assert result.steps[0].prompt.endswith(
        "\n\nTask Instruction: Pick the large size\n\n<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n"
    )


@pytest.mark.browser
def test_free_decoding_hands_the_policy_no_valid_actions(env, pages):
    seen = []

    async def policy(ctx):
        seen.append(ctx)
        return PolicyOutput('exit(message="")')

    task = {"task_id": 1, "intent": "Stop", "start_url": pages.url + "/form.html"}
    limits = EpisodeLimits(screenshots=False)
    env.run(env.pool.run_episode(task, policy, limits=limits, evaluate=False))
    assert seen[0].valid_actions is None


def test_the_oracles_own_arguments_and_answers_are_in_the_set():
    """Steps of the built-in world's oracle that the set once left out: a quoted title searched
    with its own question mark, a shipping option picked by the instruction's words, a 7-word
    address, and a list of labels read off one element each."""
    page = (
        '<html> <input id="1" type="search" placeholder="Search posts"> </input>'
        ' <select id="2" data-testid="shipping-method"> <option> Flat Rate ($5.00) </option>'
        " <option> Express Two-Day ($15.00) </option> </select>"
        " <p> 53 Station Road, Calder Bridge LV3 8AL </p>"
        ' Labels <a id="3"> good first issue </a> <button id="4" title="Remove"> × </button>'
        ' <a id="5"> testing </a> <button id="6" title="Remove"> × </button> </html>'
    )
    intent = (
        'What is the karma of the user who posted "Thoughts on a trilogy?"? Use Flat Rate shipping.'
    )
    actions = set(valid_actions(intent, page, arguments="phrases", empty_exit=False))
    assert 'do(action="Search", argument="Thoughts on a trilogy?", element="1")' in actions
    assert 'do(action="Select Dropdown Option", argument="Flat Rate", element="2")' in actions
    assert (
        'do(action="Select Dropdown Option", argument="Flat Rate ($5.00)", element="2")' in actions
    )
    assert 'exit(message="53 Station Road, Calder Bridge LV3 8AL")' in actions
    assert 'exit(message="good first issue, testing")' in actions
    # the instruction's words that are in no option are not offered to the select
    assert 'do(action="Select Dropdown Option", argument="karma", element="2")' not in actions
