"""Golden strings for WebRL's agent prompt (spec §7.3) and ORM prompt (§4.1), written from the spec."""

import pytest

from trainer.env.actions import MAX_CALL_CHARS, Kind, parse_action
from trainer.prompts import (
    EOT,
    MAX_PROMPT_CHARS,
    build_agent_prompt,
    build_critic_prompt,
    build_orm_prompt,
    final_answer,
    instruction_terms,
    orm_checks,
    split_prompt,
)

USER = "<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
ASSISTANT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"


def test_the_first_step_prompt_is_round_0_with_the_page():
    got = build_agent_prompt("Find the price of milk", [], '<html> <a id="0"> Milk </a> </html>')
    want = (
        "Task Instruction: Find the price of milk\n\n"
        "Round 0\n\n" + USER + '<html> <a id="0"> Milk </a> </html>\n\n' + ASSISTANT
    )
    assert got == want


def test_history_repeats_the_task_then_uses_the_html_placeholder():
    responses = [
        '# Element: the search box\ndo(action="Click", element="3")',
        'do(action="Scroll Down")',
    ]
    got = build_agent_prompt("Buy socks", responses, "<html> H2 </html>")
    want = (
        "Task Instruction: Buy socks\n\n"
        "Round 0\n\n" + USER + "Buy socks\n\n" + ASSISTANT + responses[0] + "\n\n"
        "Round 1\n\n" + USER + "** Simplified html **\n\n" + ASSISTANT + responses[1] + "\n\n"
        "Round 2\n\n" + USER + "<html> H2 </html>\n\n" + ASSISTANT
    )
    assert got == want


def test_the_length_guard_cuts_the_current_html_to_15872_minus_the_history():
    assert MAX_PROMPT_CHARS == 15872
    responses = ['do(action="Press Enter")']
    history = "Round 0\n\n" + USER + "Task\n\n" + ASSISTANT + responses[0] + "\n\n"
    html = "x" * 20000
    got = build_agent_prompt("Task", responses, html)
    kept = 15872 - len(history)
    assert (
        got
        == "Task Instruction: Task\n\n"
        + history
        + "Round 1\n\n"
        + USER
        + "x" * kept
        + "\n\n"
        + ASSISTANT
    )


def test_the_guard_leaves_html_that_fits_untouched():
    html = "y" * 1000
    assert html + "\n\n" in build_agent_prompt("T", [], html)


def test_the_critic_prompt_is_the_round_0_agent_prompt():
    assert build_critic_prompt("T", "<html> </html>") == build_agent_prompt(
        "T", [], "<html> </html>"
    )


def test_the_orm_prompt_follows_the_llama3_chat_grammar():
    got = build_orm_prompt(
        "  Find milk ",
        ['# Element: box\ndo(action="Click", element="1")', 'exit(message="3.99")\n'],
        " <html> last </html> ",
        system="SYS",
    )
    want = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS"
        + EOT
        + "<|start_header_id|>user<|end_header_id|>\n\n"
        "The User Intent:\nFind milk\n\nAction History:\n"
        '# Element: box; do(action="Click", element="1")\n'
        'exit(message="3.99");\n'
        "\nThe Current Screenshot:\n<html> last </html>"
        + EOT
        + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert got == want


# rollout.prompt = "instruction_last": the instruction again, right before the reply.


def test_the_instruction_last_agent_prompt_ends_with_the_instruction_before_the_reply():
    responses = ['do(action="Scroll Down")']
    got = build_agent_prompt(
        "Buy socks", responses, "<html> H1 </html>", variant="instruction_last"
    )
    plain = build_agent_prompt("Buy socks", responses, "<html> H1 </html>")
    assert got.endswith("<html> H1 </html>\n\nTask Instruction: Buy socks\n\n" + ASSISTANT)
    assert got == plain.replace(
        "<html> H1 </html>\n\n" + ASSISTANT,
        "<html> H1 </html>\n\nTask Instruction: Buy socks\n\n" + ASSISTANT,
    )


def test_the_instruction_last_guard_cuts_the_html_and_keeps_the_instruction():
    got = build_agent_prompt("Task", [], "x" * 20000, variant="instruction_last")
    head = "Task Instruction: Task\n\n"
    cut_html = got[len(head) :].removeprefix("Round 0\n\n" + USER)
    assert got.endswith("x\n\nTask Instruction: Task\n\n" + ASSISTANT)
    assert len(cut_html.split("\n\n")[0]) + len("\n\nTask Instruction: Task") == 15872


def test_the_instruction_last_critic_prompt_ends_with_the_instruction_before_the_reply():
    got = build_critic_prompt("Open issue 7", "<html> </html>", variant="instruction_last")
    assert got.endswith("<html> </html>\n\nTask Instruction: Open issue 7\n\n" + ASSISTANT)
    assert got == build_agent_prompt(
        "Open issue 7", [], "<html> </html>", variant="instruction_last"
    )


def test_the_instruction_last_orm_prompt_ends_the_user_turn_with_the_intent():
    responses = ['exit(message="3.99")']
    got = build_orm_prompt(
        " Find milk ", responses, "<html> last </html>", variant="instruction_last"
    )
    plain = build_orm_prompt(" Find milk ", responses, "<html> last </html>")
    tail = EOT + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    assert got.endswith("<html> last </html>\n\nThe User Intent:\nFind milk" + tail)
    assert got == plain.replace("<html> last </html>" + tail,
                                "<html> last </html>\n\nThe User Intent:\nFind milk" + tail)  # fmt: skip


def test_an_unknown_prompt_variant_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="instruction_last"):
        build_agent_prompt("T", [], "<html> </html>", variant="instruction_first")


@pytest.mark.parametrize(
    ("intent", "terms"),
    [
        ('Create a post titled "Glenrock Hospital on Friday: H", where H is its opening hours.',
         ["Glenrock", "Hospital", "Friday"]),
        ('Post Kestrel Skillet with its price as the title (like "Name - $9.99").',
         ["Kestrel", "Skillet"]),
        ("What is the top-1 best-selling product in June 2023? Answer as YYYY-MM-DD.",
         ["June", "2023"]),
        ("Write a 2-star review of Quarry Food Bowl.", ["Quarry", "Food", "Bowl"]),
        ("Update my phone number to 555-502-5274 for Saint-Malo.", ["555-502-5274", "Saint-Malo"]),
        ("Set the quantity of tea in order #1206 to 6.", ["1206"]),
    ],
)  # fmt: skip
def test_format_examples_placeholders_and_hyphenated_words_are_not_instruction_names(intent, terms):
    assert instruction_terms(intent) == terms


def test_orm_checks_name_the_instruction_terms_the_trajectory_never_shows():
    intent = (
        'What is the grand total of order #1187? Answer as "YYYY-MM-DD" for Quarry Classic Tea.'
    )
    assert instruction_terms(intent) == ["YYYY-MM-DD", "1187", "Quarry", "Classic", "Tea"]
    responses = ['do(action="Search", argument="1099", element="3")',
                 'do(action="Click", element="5")', 'do(action="Click", element="5")',
                 'exit(message="$1,012.50")']  # fmt: skip
    page = "<div> Order #1099 Quarry Classic Tea YYYY-MM-DD Grand Total $1012.50 </div>"
    assert orm_checks(intent, responses, page) == (
        "Instruction names missing from the actions and the page: 1187\n"
        "Repeated actions: 1\nAnswer found on the page: yes\nNames missing: 1"
    )
    right = orm_checks(intent.replace("1187", "1099"), responses, page)
    assert right.startswith("Instruction names missing from the actions and the page: none\n")
    assert right.endswith("\nNames missing: 0")
    wrong = [*responses[:-1], 'exit(message="$88.00")']
    assert "Answer found on the page: no\n" in orm_checks(intent, wrong, page)
    assert "Answer found on the page: none\n" in orm_checks(intent, responses[:2], page)
    assert orm_checks(intent, [], "").endswith(
        "Repeated actions: 0\nAnswer found on the page: none\nNames missing: 5"
    )


def test_an_orm_prompt_with_checks_ends_with_them_after_the_page_and_the_repeated_intent():
    responses = ['exit(message="3.99")']
    tail = EOT + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    checks = orm_checks("Find Oat Milk", responses, "<html> last </html>")
    for variant, after in (
        ("webrl", ""),
        ("instruction_last", "\n\nThe User Intent:\nFind Oat Milk"),
    ):
        got = build_orm_prompt("Find Oat Milk", responses, "<html> last </html>", variant=variant,
                               checks=True)  # fmt: skip
        assert got.endswith(f"<html> last </html>{after}\n\nChecks:\n{checks}{tail}")
        parts = split_prompt(got)
        assert parts.page == "<html> last </html>"
        assert parts.tail == f"{after}\n\nChecks:\n{checks}{tail}"
    plain = build_orm_prompt("Find Oat Milk", responses, "<html> last </html>")
    assert "Checks:" not in plain and split_prompt(plain).tail == tail


EXIT_TEXTS = [
    'exit(message="$4.99")',
    "exit(message='Jane Doe')",
    'EXIT(Message="mixed case")',
    "exit(message=1206)",
    "exit(message=True)",
    "exit(message=None)",
    'exit(message="")',
    "exit()",
    'exit("positional")',
    'exit(message="a", message="b")',
    'exit(message="a", note=f"{x}")',
    'exit(**{"message": "a"})',
    'I am done. exit(message="the answer")',
    'do(action="Click", element="3") then exit(message="late")',
    'exit(message="first") exit(message="second")',
    'exit(message="unclosed',
    'exit(message="1x" )',
    'exit(message="\\d")',
    'exit(message="a")(1)',
    'do(action="Search", argument="exit(message=1)", element="2")',
    'do(action="Click", element="3")',
    "",
    "exit(message=" + repr("x" * MAX_CALL_CHARS) + ")",
]


@pytest.mark.parametrize("text", EXIT_TEXTS)
def test_the_orm_checks_read_a_final_answer_as_the_environment_parses_it(text):
    action = parse_action(text)
    want = action.argument if getattr(action, "kind", None) == Kind.EXIT else None
    assert final_answer([text]) == want
