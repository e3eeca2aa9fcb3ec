import json

import pytest

from tests.trainer.helpers import make_steps
from trainer.learn.data import (
    DataError,
    action_ids_for,
    add_mc_returns,
    collate,
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
from trainer.prompts import EOT, build_orm_prompt


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


def test_long_prompts_keep_the_task_line_and_lose_the_left_of_the_rest_so_the_action_survives(tok):
    rec = make_steps(1)[0]
    action = action_ids_for(tok, rec)
    head = encode_text(tok, rec["observation"][: rec["observation"].index("\n\n") + 2])
    full = tokenize_example(tok, rec["observation"], action, 10_000)
    budget = 4 * len(head) + 4
    assert len(full.input_ids) > len(action) + budget
    cut = tokenize_example(tok, rec["observation"], action, len(action) + budget)
    assert len(cut.input_ids) == len(action) + budget
    assert cut.input_ids[0] == tok.bos_token_id
    assert cut.input_ids[1 : 1 + len(head)] == head
    assert tok.decode(head).startswith("Task Instruction: ")
    assert cut.input_ids[-len(action) :] == action
    rest = budget - 1 - len(head)
    assert cut.input_ids[1 + len(head) :] == full.input_ids[-(rest + len(action)) :]
    assert sum(cut.action_mask) == len(action)


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
