import json

import pytest

from tests.trainer.helpers import make_steps
from trainer.learn.data import (
    DataError,
    action_ids_for,
    add_mc_returns,
    collate,
    fit_prompt,
    mc_returns,
    read_steps,
    tokenize_example,
    write_steps,
)
from trainer.learn.tokenizer import (
    encode_prompt,
    encode_text,
    eot_id,
    train_tokenizer,
    wrap_tokenizer,
)
from trainer.prompts import (
    AGENT_TAIL,
    BEGIN_OF_TEXT,
    EOT,
    HISTORY_CUT,
    ORM_SYSTEM,
    ORM_TAIL,
    PAGE_CUT,
    build_agent_prompt,
    build_critic_prompt,
    build_orm_prompt,
)


@pytest.fixture(scope="module")
def tok():
    texts = [r["observation"] + r["action"] for r in make_steps(8)]
    return train_tokenizer(texts, vocab_size=400)


def test_mc_return_discounts_the_rewards_to_go():
    assert mc_returns([1.0, 1.0, 1.0], 0.9) == pytest.approx([2.71, 1.9, 1.0])
    assert mc_returns([0.0, 0.0], 0.9) == [0.0, 0.0]


def test_mc_returns_restart_at_every_finished_trajectory():
    recs = [
        {"observation": "a", "action": "x", "reward": 1.0, "done": False},
        {"observation": "b", "action": "y", "reward": 1.0, "done": True},
        {"observation": "c", "action": "z", "reward": 0.0, "done": True},
    ]
    assert [r["mc_return"] for r in add_mc_returns(recs, 0.9)] == pytest.approx([1.9, 1.0, 0.0])


def test_step_files_round_trip_and_bad_lines_name_their_line(tmp_path):
    recs = make_steps(2)
    write_steps(tmp_path / "s.jsonl", recs)
    assert read_steps(tmp_path / "s.jsonl") == recs
    (tmp_path / "bad.jsonl").write_text(json.dumps(recs[0]) + "\n{oops\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        read_steps(tmp_path / "bad.jsonl")
    (tmp_path / "missing.jsonl").write_text(json.dumps({"observation": "o"}) + "\n")
    with pytest.raises(DataError, match=r"missing.jsonl:1: field 'action' must be a string"):
        read_steps(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="cannot read"):
        read_steps(tmp_path / "nope.jsonl")


def test_the_tokenizer_round_trips_text_and_keeps_specials_and_answers_single(tok, tmp_path):
    text = 'Task Instruction: Café ☕ tea\n\nRound 0\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n<a id="0"> NOTE </a>'
    assert tok.decode(encode_text(tok, text)) == text
    for special in (
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "YES",
        "NO",
    ):
        assert len(encode_text(tok, special)) == 1, special
    assert encode_text(tok, "NOTE") != encode_text(tok, "NO") + encode_text(tok, "TE")
    tok.save_pretrained(tmp_path)
    from trainer.learn.models import load_tokenizer

    again = load_tokenizer(tmp_path)
    assert encode_text(again, text) == encode_text(tok, text)
    assert again.decode(encode_text(again, text)) == text


def test_bos_is_added_once_even_when_the_prompt_spells_it(tok):
    orm = build_orm_prompt("buy tea", ["do(x)"], "<html/>")
    ids = encode_prompt(tok, orm)
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert encode_prompt(tok, "hi")[0] == tok.bos_token_id


def test_the_action_is_masked_in_and_ends_with_eot(tok):
    rec = make_steps(1)[0]
    ex = tokenize_example(tok, rec["observation"], action_ids_for(tok, rec), 1024)
    action_positions = [i for i, m in enumerate(ex.action_mask) if m]
    assert tok.decode([ex.input_ids[i] for i in action_positions]) == rec["action"] + EOT
    assert ex.input_ids[0] == tok.bos_token_id and ex.action_mask[0] == 0


def test_sampled_token_ids_are_scored_as_given_not_retokenized(tok):
    sampled = encode_text(tok, "do") + encode_text(
        tok, "("
    )  # a split the tokenizer itself would not choose
    rec = {"observation": "p", "action": "do(", "action_token_ids": sampled}
    assert action_ids_for(tok, rec) == [*sampled, eot_id(tok)]


def _page(words: int) -> str:
    """A page whose start, middle and end are marked by words found nowhere else."""
    rows = [f'<p id="{i}"> row {i} of the table </p>' for i in range(words)]
    half = len(rows) // 2
    return " ".join(["<html> <h1> PAGESTART </h1>", *rows[:half], "<b> MIDDLEWORD </b>",
                     *rows[half:], "<h2> PAGEEND </h2> </html>"])  # fmt: skip


RESPONSES = [
    '# Element: the orders link\ndo(action="Click", element="4")',
    'do(action="Scroll Down")',
    'exit(message="cancelled")',
]


def _check_cut(tok, prompt: str, budget: int) -> str:
    full = encode_prompt(tok, prompt)
    ids = fit_prompt(tok, prompt, budget)
    assert len(full) > 10 * budget and len(ids) == budget
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    text = tok.decode(ids)
    assert text.count(PAGE_CUT) == 1 and "MIDDLEWORD" not in text
    return text


def test_a_long_orm_prompt_keeps_system_intent_and_history_and_cuts_the_page_in_the_middle(tok):
    intent = "Cancel the order of the blue teapot"
    prompt = build_orm_prompt(intent, RESPONSES, _page(900))
    text = _check_cut(tok, prompt, 512)
    before_page = prompt[: prompt.index("PAGESTART") + len("PAGESTART")]
    assert before_page == (
        f"{BEGIN_OF_TEXT}<|start_header_id|>system<|end_header_id|>\n\n{ORM_SYSTEM}{EOT}"
        f"<|start_header_id|>user<|end_header_id|>\n\nThe User Intent:\n{intent}\n\n"
        'Action History:\n# Element: the orders link; do(action="Click", element="4")\n'
        'do(action="Scroll Down")\nexit(message="cancelled")\n\n'
        "The Current Screenshot:\n<html> <h1> PAGESTART"
    )
    assert text.startswith(before_page)
    assert text.endswith(f"PAGEEND </h2> </html>{ORM_TAIL}")


def test_a_long_orm_prompt_with_checks_keeps_them_and_the_repeated_intent_whole(tok):
    intent = "Cancel the order of the Blue Teapot"
    prompt = build_orm_prompt(intent, RESPONSES, _page(900), variant="instruction_last",
                              checks=True)  # fmt: skip
    text = _check_cut(tok, prompt, 512)
    after_page = prompt[prompt.index("PAGEEND") :]
    assert (
        f"\n\nThe User Intent:\n{intent}\n\nChecks:\n"
        "Instruction names missing from the actions and the page: Blue; Teapot\n" in after_page
    )
    assert text.endswith(after_page) and after_page.endswith(f"Names missing: 2{ORM_TAIL}")


def test_long_agent_and_critic_prompts_keep_the_instruction_and_history_and_cut_the_page(tok):
    intent = "Cancel the order of the blue teapot"
    for prompt in (
        build_agent_prompt(intent, RESPONSES[:2], _page(400)),  # §7.3's character guard: 15,872
        build_critic_prompt(intent, _page(400)),
    ):
        text = _check_cut(tok, prompt, 512)
        before_page = BEGIN_OF_TEXT + prompt[: prompt.index("PAGESTART") + len("PAGESTART")]
        assert text.startswith(before_page)
        assert text.startswith(f"{BEGIN_OF_TEXT}Task Instruction: {intent}\n\nRound 0\n\n")
        assert text.endswith(f"PAGEEND </h2> </html>{AGENT_TAIL}")
    assert RESPONSES[0] in _check_cut(
        tok, build_agent_prompt(intent, RESPONSES[:2], _page(400)), 512
    )


def test_a_long_history_loses_its_oldest_actions_and_leaves_the_page_half_the_room(tok):
    intent = "Open the last issue"
    responses = [f'do(action="Click", element="{1000 + i}")' for i in range(120)]
    prompt = build_orm_prompt(intent, responses, _page(300))
    ids = fit_prompt(tok, prompt, 512)
    text = tok.decode(ids)
    assert len(ids) == 512 and text.startswith(prompt[: prompt.index("Action History:\n") + 16])
    assert HISTORY_CUT in text and responses[-1] in text and responses[0] not in text
    page_ids = encode_text(tok, text[text.index("The Current Screenshot:\n") + 24 :])
    fixed = len(encode_prompt(tok, prompt[: prompt.index("Action History:\n") + 16]))
    assert len(page_ids) >= (512 - fixed - 30) // 2  # at least half of the room after the head
    assert "PAGESTART" in text and "PAGEEND" in text


def test_a_prompt_that_fits_is_left_alone_and_the_action_always_survives(tok):
    rec = make_steps(1)[0]
    action = action_ids_for(tok, rec)
    full = tokenize_example(tok, rec["observation"], action, 10_000)
    assert full.input_ids[: -len(action)] == encode_prompt(tok, rec["observation"])
    long_prompt = build_agent_prompt("Search for tea", [], _page(900))
    cut = tokenize_example(tok, long_prompt, action, 300)
    assert len(cut.input_ids) == 300 and cut.input_ids[-len(action) :] == action
    assert cut.input_ids[: -len(action)] == fit_prompt(tok, long_prompt, 300 - len(action))


def test_a_prompt_whose_first_paragraph_is_too_long_is_cut_from_the_left(tok):
    rec = make_steps(1)[0]
    action = action_ids_for(tok, rec)
    full = tokenize_example(tok, rec["observation"], action, 10_000)
    cut = tokenize_example(tok, rec["observation"], action, len(action) + 12)
    assert cut.input_ids[0] == tok.bos_token_id
    assert cut.input_ids[1:] == full.input_ids[-(len(action) + 11) :]
    with pytest.raises(DataError, match="does not fit"):
        tokenize_example(tok, "p", action, len(action))


def test_collate_pads_on_the_right_with_masks(tok):
    a = tokenize_example(tok, "short", [5, 6], 64)
    b = tokenize_example(tok, "a much longer prompt here", [7], 64)
    batch = collate([a, b], pad=0)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["action_mask"].shape
    assert batch["attention_mask"][0].sum() == len(a.input_ids)
    assert batch["action_mask"][0].tolist()[len(a.input_ids) - 2 : len(a.input_ids)] == [1, 1]


def test_wrap_tokenizer_needs_no_network(tok):
    assert wrap_tokenizer(tok.backend_tokenizer).pad_token is not None


def test_length_grouped_batches_keep_every_example_once_and_pad_less():
    import random as _random

    from trainer.learn.data import Example, batches, length_grouped_batches

    rng = _random.Random(0)
    examples = [Example(list(range(rng.randint(5, 500))), []) for _ in range(256)]

    def padded(groups):
        return sum(max(len(e.input_ids) for e in g) * len(g) for g in groups)

    grouped = length_grouped_batches(examples, 4, 64, seed=0)
    assert sorted(id(e) for g in grouped for e in g) == sorted(id(e) for e in examples)
    assert all(len(g) == 4 for g in grouped)
    assert padded(grouped) < 0.8 * padded(batches(examples, 4))
    # within a window the batches come from one sorted run: no two overlap in length
    first = sorted(grouped[:16], key=lambda g: len(g[0].input_ids))
    for a, b in zip(first, first[1:], strict=False):
        assert len(a[-1].input_ids) <= len(b[0].input_ids)
    assert length_grouped_batches(examples, 4, 1, seed=0) == batches(examples, 4)
