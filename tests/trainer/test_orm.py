import pytest
import torch

from tests.trainer.helpers import PAGES, tiny_config
from trainer.models import load_causal_lm, load_tokenizer
from trainer.orm import (
    OrmError,
    classification_metrics,
    example_label,
    orm_scores,
    p_yes,
    train_orm,
    yes_no_ids,
)
from trainer.prompts import build_orm_prompt
from trainer.tokenizer import encode_prompt, train_tokenizer


def test_p_yes_is_the_softmax_of_the_yes_and_no_logits_at_the_last_position(sft_dir):
    model, tok = load_causal_lm(sft_dir), load_tokenizer(sft_dir)
    prompts = [
        build_orm_prompt("Search for tea", ['do(action="Click", element="1")'], PAGES["shop"]),
        "short",
    ]
    yes, no = yes_no_ids(tok)
    expected = []
    with torch.no_grad():
        for p in prompts:
            last = model(input_ids=torch.tensor([encode_prompt(tok, p)])).logits[0, -1]
            expected.append(torch.softmax(torch.stack([last[yes], last[no]]), 0)[0].item())
    assert p_yes(model, tok, prompts) == pytest.approx(expected, abs=1e-5)  # batched, right-padded


def test_equal_yes_and_no_weights_give_one_half(sft_dir):
    model, tok = load_causal_lm(sft_dir), load_tokenizer(sft_dir)
    yes, no = yes_no_ids(tok)
    with torch.no_grad():
        model.lm_head.weight[no] = model.lm_head.weight[yes]
    assert p_yes(model, tok, ["anything at all"]) == pytest.approx([0.5])
    with torch.no_grad():
        model.lm_head.weight[yes] = 0.0
        model.lm_head.weight[no] = 0.0
        model.lm_head.weight[yes, 0] = 1.0
    (p,) = p_yes(model, tok, ["anything at all"])
    with torch.no_grad():
        h = model.model(
            input_ids=torch.tensor([encode_prompt(tok, "anything at all")])
        ).last_hidden_state[0, -1, 0]
    assert p == pytest.approx(torch.sigmoid(h).item(), abs=1e-5)  # softmax([h, 0])[0]


def test_a_tokenizer_without_single_answer_tokens_is_refused():
    tok = train_tokenizer(["plain text"], vocab_size=300)
    assert len(set(yes_no_ids(tok))) == 2  # our tokenizers always have both

    class Spelled:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    with pytest.raises(OrmError, match="'YES' is 3 tokens"):
        yes_no_ids(Spelled())


def test_human_labels_override_ground_truth():
    assert example_label({"label": True, "human_label": "NO"}) is False
    assert example_label({"label": 0}) is False
    assert example_label({"label": "yes"}) is True


def test_metrics_count_accuracy_precision_and_recall():
    m = classification_metrics([0.9, 0.8, 0.2, 0.6], [True, False, False, True])
    assert (
        m["orm/accuracy"] == 0.75
        and m["orm/precision"] == pytest.approx(2 / 3)
        and m["orm/recall"] == 1.0
        and m["orm/specificity"] == 0.5
    )


def test_balancing_repeats_the_rarer_label_until_both_are_equally_frequent():
    from trainer.orm import balance_labels

    items = ["y1", "y2", "y3", "y4", "y5", "n1", "n2"]
    labels = [True] * 5 + [False] * 2
    out = balance_labels(items, labels, seed=0)
    assert out[: len(items)] == items
    assert sum(x.startswith("n") for x in out) == sum(x.startswith("y") for x in out) == 5
    assert out[len(items) : len(items) + 2] == ["n1", "n2"]  # one whole copy before sampling
    assert balance_labels(["y1", "y2"], [True, True], seed=0) == ["y1", "y2"]
    assert balance_labels(items, labels, seed=0) == out


def test_training_the_orm_reports_held_out_metrics(tmp_path):
    examples = []
    for i in range(20):
        ok = i % 2 == 0
        answer = "tea" if ok else "nothing"
        examples.append(
            {
                "intent": "Find tea",
                "responses": [f'exit(message="{answer}")'],
                "last_html": PAGES["shop"],
                "label": ok,
            }
        )
    config = tiny_config(**{"orm.epochs": 2, "orm.lr": 3e-3, "orm.holdout_fraction": 0.2})
    result = train_orm(config, examples, tmp_path / "orm")
    assert result["done"] and result["orm/heldout"] == 4
    for key in ("orm/accuracy", "orm/precision", "orm/recall"):
        assert 0.0 <= result[key] <= 1.0
    scores = orm_scores(
        result["model_dir"], [build_orm_prompt("Find tea", ['exit(message="tea")'], PAGES["shop"])]
    )
    assert 0.0 < scores[0] < 1.0


def test_scoring_cuts_a_long_prompt_exactly_as_training_did(sft_dir):
    from trainer.data import tokenize_example
    from trainer.orm import orm_prompt_ids
    from trainer.tokenizer import eot_id

    tok = load_tokenizer(sft_dir)
    page = " ".join(f'<p id="{i}"> row {i} </p>' for i in range(2000))
    prompt = build_orm_prompt("Find tea", ['exit(message="tea")'], page)
    yes, _ = yes_no_ids(tok)
    trained = tokenize_example(tok, prompt, [yes, eot_id(tok)], 256).input_ids
    assert len(encode_prompt(tok, prompt)) > 10 * 256 and len(trained) == 256
    assert orm_prompt_ids(tok, prompt, 256) == trained[:-2]
