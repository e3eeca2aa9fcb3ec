"""Golden strings for WebRL's agent prompt (spec §7.3) and ORM prompt (§4.1), written from the spec."""

from trainer.prompts import (
    EOT,
    MAX_PROMPT_CHARS,
    build_agent_prompt,
    build_critic_prompt,
    build_orm_prompt,
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
