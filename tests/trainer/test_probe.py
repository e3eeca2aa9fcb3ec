"""The copy and induction probes (trainer/bench/probes.py): splitting by task, scoring replies, the whole
comparison, and copying a repeated span."""

import random

import pytest

from tests.trainer.helpers import make_steps, tiny_config
from trainer.bench.probes import (
    _induction_case,
    agreement,
    copy_probe,
    induction_probe,
    page_of,
    split_by_task,
)
from trainer.cli import main
from trainer.config import ConfigError
from trainer.learn.data import DataError, write_steps
from trainer.learn.pretrain import pretrain_tiny
from trainer.prompts import build_agent_prompt


def test_held_out_steps_come_only_from_tasks_after_the_training_tasks():
    records = [{"task_id": t, "action": f"a{t}-{i}"} for t in range(6) for i in range(3)]
    train, held = split_by_task(records, train_tasks=4, held_steps=5, seed=0)
    assert {r["task_id"] for r in train} == {0, 1, 2, 3} and len(train) == 12
    assert {r["task_id"] for r in held} <= {4, 5} and len(held) == 5
    with pytest.raises(DataError, match="more than --train-tasks"):
        split_by_task(records, train_tasks=6, held_steps=5, seed=0)


def test_agreement_counts_whole_actions_elements_and_typed_arguments():
    golds = [
        'do(action="Search", argument="Juniper Pet Brush", element="5")<|eot_id|>',
        'do(action="Click", element="22")',
        'exit(message="$72.49")',
    ]
    outputs = [
        'do(action="Search", argument="Juniper Dog Bowl", element="5")',  # right box, wrong name
        'do(action="Click", element="22")',
        "do(action=",  # garbage
    ]
    got = agreement(outputs, golds)
    assert (got["steps"], got["parsed"], got["exact"], got["kind"]) == (3, 2, 1, 2)
    assert (got["element_n"], got["element"], got["typed_n"], got["typed"]) == (2, 2, 1, 0)
    right = agreement([golds[0].removesuffix("<|eot_id|>")], golds[:1])
    assert (right["exact"], right["typed"], right["typed_share"]) == (1, 1, 1.0)


def test_the_probe_trains_both_variants_and_scores_each_on_the_same_held_out_steps(tmp_path):
    config = tiny_config(**{"model.pretrain_steps": 3, "eval.max_tokens": 16})
    result = copy_probe(config, make_steps(12), tmp_path, train_tasks=4, held_steps=5)
    assert result["held_steps"] == 5 and result["pretrain_steps"] == 3
    for name in ("from_scratch", "copy_pretrained"):
        assert result[name]["steps"] == 5
        assert 0 <= result[name]["exact"] <= result[name]["parsed"] <= 5
    assert (tmp_path / "copy_pretrained" / "pretrain" / "final").is_dir()
    assert not (tmp_path / "from_scratch" / "pretrain").exists()


def test_the_probe_scores_one_model_under_free_and_valid_action_decoding(tmp_path):
    config = tiny_config(**{"model.pretrain_steps": 0, "eval.max_tokens": 64})
    result = copy_probe(config, make_steps(12), tmp_path, train_tasks=4, held_steps=5,
                        variants=["from_scratch"], decodings=["free", "valid_actions"])  # fmt: skip
    assert "copy_pretrained" not in result
    got = result["from_scratch"]["decodings"]
    assert got["free"]["steps"] == got["valid_actions"]["steps"] == 5
    assert got["valid_actions"]["parsed"] == 5  # every constrained reply is an action
    assert result["from_scratch"]["parsed"] == got["free"]["parsed"]


def test_the_page_of_a_record_is_its_current_html_in_either_prompt_variant():
    for variant in ("webrl", "instruction_last"):
        prompt = build_agent_prompt("Find x", ['do(action="Scroll Down")'], "<p> H </p>",
                                    variant=variant)  # fmt: skip
        assert page_of({"observation": prompt, "task": "Find x"}) == "<p> H </p>"


def test_the_probe_refuses_a_config_without_copy_pretraining(tmp_path):
    with pytest.raises(ConfigError, match="pretrain_steps"):
        copy_probe(tiny_config(**{"model.pretrain_steps": 0}), make_steps(6), tmp_path)


def test_the_probe_on_the_command_line_says_what_is_wrong_with_its_data(tmp_path, capsys):
    data = tmp_path / "steps.jsonl"
    write_steps(data, make_steps(2))
    code = main(["copy-probe", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--set", "model.pretrain_steps=2"])  # fmt: skip
    assert code == 2 and "more than --train-tasks" in capsys.readouterr().err


def test_an_induction_case_repeats_a_cut_or_drawn_span_after_exactly_distance_tokens():
    streams = [list(range(100, 140)), list(range(500, 520))]
    vocab = sorted(set(streams[0]) | set(streams[1]))
    rng = random.Random(0)
    for _ in range(20):
        piece, filler = _induction_case(streams, vocab, rng, "text", 6, 50)
        assert len(filler) == 50 and set(filler) <= set(vocab)
        # a text span is six consecutive tokens of one stream
        assert any(piece == s[i : i + 6] for s in streams for i in range(len(s) - 5))
        drawn, _ = _induction_case(streams, vocab, rng, "shuffled", 6, 0)
        assert len(drawn) == 6 and set(drawn) <= set(vocab)


def test_the_induction_probe_scores_both_modes_at_every_distance_out_of_the_predicted_tokens(
    tmp_path,
):
    pre = pretrain_tiny(tiny_config(**{"model.pretrain_steps": 1}), make_steps(4), tmp_path)
    texts = [r["observation"] for r in make_steps(4)]
    got = induction_probe(pre["model_dir"], texts, distances=(0, 30), trials=3, span=4)
    assert [(r["mode"], r["distance"]) for r in got["results"]] == [
        ("text", 0), ("text", 30), ("shuffled", 0), ("shuffled", 30),
    ]  # fmt: skip
    for row in got["results"]:
        assert row["n"] == 9 and 0 <= row["copied"] <= 9 and 0 <= row["without_copy"] <= 9
    with pytest.raises(ConfigError, match="positions"):
        induction_probe(pre["model_dir"], texts, distances=(5000,), trials=1)
    with pytest.raises(DataError, match="no text longer"):
        induction_probe(pre["model_dir"], ["a"], distances=(4,), trials=1)


def test_the_induction_probe_on_the_command_line_refuses_distances_that_are_not_numbers(
    tmp_path, capsys
):
    data = tmp_path / "steps.jsonl"
    write_steps(data, make_steps(2))
    code = main(["induction-probe", "--model", str(tmp_path), "--data", str(data),
                 "--distances", "16,far"])  # fmt: skip
    assert code == 2 and "--distances" in capsys.readouterr().err
