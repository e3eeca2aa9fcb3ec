"""The action parser of spec §7.4: every executable action, comments, safety, malformed output."""

import time

import pytest

from trainer.env.actions import Action, Kind, ParseError, parse_action


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('do(action="Click", element="7")', Action(Kind.CLICK, "7")),
        ('do(action="Hover", element="2")', Action(Kind.HOVER, "2")),
        (
            'do(action="Type", argument="blue socks", element="5")',
            Action(Kind.TYPE, "5", "blue socks"),
        ),
        ('do(action="Search", argument="milk", element="1")', Action(Kind.SEARCH, "1", "milk")),
        (
            'do(action="Select Dropdown Option", argument="Large", element="4")',
            Action(Kind.SELECT, "4", "Large"),
        ),
        ('do(action="Scroll Down")', Action(Kind.SCROLL_DOWN)),
        ('do(action="Scroll Up")', Action(Kind.SCROLL_UP)),
        ('do(action="Press Enter")', Action(Kind.PRESS_ENTER)),
        ('do(action="Go Backward")', Action(Kind.GO_BACKWARD)),
        ('do(action="Go Forward")', Action(Kind.GO_FORWARD)),
        ('exit(message="The answer is 42")', Action(Kind.EXIT, argument="The answer is 42")),
    ],
)
def test_it_parses_every_executable_action(text, want):
    assert parse_action(text) == want


def test_it_drops_comment_lines_before_the_call():
    text = (
        '# Element: the "Add to cart" button\n# Note: price is $3\ndo(action="Click", element="12")'
    )
    assert parse_action(text) == Action(Kind.CLICK, "12")


def test_it_uses_the_last_call_when_the_comment_mentions_one():
    text = '# I could do(action="Click", element="1") but\ndo(action="Click", element="9")'
    assert parse_action(text) == Action(Kind.CLICK, "9")


def test_exit_wins_over_do_when_both_appear():
    assert parse_action('do(action="Click", element="1")\nexit(message="done")') == Action(
        Kind.EXIT, argument="done"
    )


def test_action_names_are_case_insensitive():
    assert parse_action('do(action="click", element="3")') == Action(Kind.CLICK, "3")
    assert parse_action('DO(action="SCROLL   down")') == Action(Kind.SCROLL_DOWN)


def test_single_quotes_and_integer_ids_are_accepted():
    assert parse_action("do(action='Click', element=3)") == Action(Kind.CLICK, "3")


def test_element_keeps_the_string_not_evaluated():
    got = parse_action('do(action="Type", argument="__import__(\'os\')", element="1")')
    assert got == Action(Kind.TYPE, "1", "__import__('os')")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n# Element: nothing\n", "empty"),
        ("I think I should click the button.", "not a Python-style call"),
        ('do(action="Right Click", element="1")', "unknown action"),
        ('do(action="Wait")', "unknown action"),
        ('do(action="Click", element="1)', "not a Python-style call"),
        ('do(action="Click")', "needs element"),
        ('do(action="Type", element="1")', "needs argument"),
        ('do("Click", "1")', "keyword arguments only"),
        ("exit()", "needs message"),
        ("go_backward()", "not executable"),
        ('do(action=__import__("os").system("echo hi"), element="1")', "not a literal"),
        ('do(action="Click", element=["1"])', "must be a string"),
        ('do(**{"action": "Click"})', "**kwargs"),
        ('print(action="Click")', "unknown function"),
    ],
)
def test_malformed_output_gives_a_typed_parse_error(text, reason):
    got = parse_action(text)
    assert isinstance(got, ParseError)
    assert reason in got.reason


def test_unknown_function_names_are_rejected():
    got = parse_action('do(action="Click", element="1").__class__')
    assert isinstance(got, ParseError)


def test_100_kb_of_garbage_is_a_fast_parse_error():
    garbage = ("do(" + "(" * 50 + "x" * 1000 + "\x00\n'\"") * 100
    assert len(garbage) > 100_000
    t0 = time.perf_counter()
    got = parse_action(garbage)
    assert isinstance(got, ParseError)
    assert time.perf_counter() - t0 < 0.5


def test_deeply_nested_input_does_not_crash():
    got = parse_action('do(action="Click", element=' + "[" * 5000 + "]" * 5000 + ")")
    assert isinstance(got, ParseError)


def test_action_to_dict_is_json_friendly():
    assert Action(Kind.TYPE, "3", "hi").to_dict() == {
        "kind": "type",
        "element": "3",
        "argument": "hi",
    }


def test_a_garbled_number_is_a_parse_error_and_prints_no_syntax_warning():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = parse_action('do(action="Click", element=1if 1 else 2)')
        got2 = parse_action('do(action="Click", element=1x)')
    assert isinstance(got, ParseError) and isinstance(got2, ParseError)
    assert not [w for w in caught if issubclass(w.category, SyntaxWarning)], caught
