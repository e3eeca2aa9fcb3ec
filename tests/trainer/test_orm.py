from pathlib import Path

import pytest
import torch

from tests.trainer.helpers import PAGES, WORDS, tiny_config
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.orm import (
    OrmError,
    classification_metrics,
    example_label,
    example_prompt,
    orm_scores,
    p_yes,
    train_orm,
    yes_no_ids,
)
from trainer.learn.tokenizer import encode_prompt, train_tokenizer
from trainer.prompts import build_orm_prompt


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


def test_metrics_count_accuracy_balanced_accuracy_precision_recall_and_classes():
    m = classification_metrics([0.9, 0.8, 0.2, 0.6, 0.1], [True, False, False, True, False])
    assert m == {
        "orm/accuracy": 0.8,
        "orm/balanced_accuracy": pytest.approx((1.0 + 2 / 3) / 2),
        "orm/precision": pytest.approx(2 / 3),
        "orm/recall": 1.0,
        "orm/specificity": pytest.approx(2 / 3),
        "orm/n_success": 2.0,
        "orm/n_failure": 3.0,
        "orm/heldout": 5.0,
    }


def test_a_model_that_says_yes_or_no_to_everything_is_caught_by_balanced_accuracy():
    labels = [True] * 18 + [False] * 2  # as phase 0's data: mostly oracle successes
    yes_heavy = classification_metrics([0.97] * 20, labels)
    assert yes_heavy["orm/accuracy"] == 0.9 and yes_heavy["orm/balanced_accuracy"] == 0.5
    no_heavy = classification_metrics([0.03] * 20, [not y for y in labels])
    assert no_heavy["orm/accuracy"] == 0.9 and no_heavy["orm/balanced_accuracy"] == 0.5
    # one class alone: its own rate (a set of failures scores the share called NO)
    assert classification_metrics([0.1, 0.7], [False, False])["orm/balanced_accuracy"] == 0.5


def test_calibration_picks_the_cut_with_the_best_balanced_accuracy():
    from trainer.learn.orm_calibration import balanced_accuracy, calibrate_threshold

    # A YES-heavy ORM: every failure above 0.5, yet the scores separate the classes at 0.775.
    successes, failures = [0.95, 0.9, 0.85, 0.8], [0.75, 0.7, 0.65, 0.6]
    probs, labels = successes + failures, [True] * 4 + [False] * 4
    assert balanced_accuracy(probs, labels, 0.5) == 0.5
    t = calibrate_threshold(probs, labels)
    assert t == pytest.approx(0.775) and balanced_accuracy(probs, labels, t) == 1.0
    # Unbalanced: two cuts give 9/10 correct; balanced accuracy prefers the one that finds both
    # successes (0.9375) over the one that misses one (0.75).
    probs = [0.6, 0.4, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1]
    labels = [True, True] + [False] * 8
    assert calibrate_threshold(probs, labels) == pytest.approx(0.35)
    # nothing to choose from: the default
    assert calibrate_threshold([0.2, 0.9], [True, True], default=0.5) == 0.5
    assert calibrate_threshold([0.4, 0.4], [True, False], default=0.6) == 0.6


def _toy(n: int, offset: int) -> list[dict]:
    """Successes end on a confirmation, failures on an error: a tiny model can tell them apart."""
    out = []
    for i in range(n):
        ok = i % 2 == 0
        word = WORDS[(i // 2 + offset) % len(WORDS)]
        flash = (
            '<div class="flash"> Your order has been placed. Thank you for your purchase! </div>'
            if ok
            else '<div class="error"> Payment declined: the card number is not valid. </div>'
        )
        out.append(
            {
                "intent": f"Buy the {word} number {i + 100 * offset}",
                "responses": [f'do(action="Click", element="{i % 3}")', 'exit(message="done")'],
                "last_html": PAGES["shop"].replace("</html>", f"{flash} </html>"),
                "label": ok,
            }
        )
    return out


def test_orm_training_separates_a_toy_set_on_examples_it_never_saw(tmp_path):
    from trainer.learn.orm_calibration import CALIBRATION_FILE, read_threshold

    config = tiny_config(**{"orm.epochs": 6, "orm.lr": 3e-3, "orm.holdout_fraction": 0.25,
                            "orm.checks": "false"})  # fmt: skip
    result = train_orm(config, _toy(48, 0), tmp_path / "orm")
    assert result["done"] and result["orm/heldout"] == 12  # 12 tasks held out whole
    assert 2 * result["orm/train_yes"] == result["orm/train_examples"] >= 30  # balanced
    assert (Path(result["model_dir"]) / CALIBRATION_FILE).exists()
    threshold = read_threshold(result["model_dir"], default=0.5)
    assert threshold == result["orm/threshold"]
    unseen = _toy(20, 7)
    probs = orm_scores(result["model_dir"], [example_prompt(ex) for ex in unseen])
    m = classification_metrics(probs, [ex["label"] for ex in unseen], threshold)
    assert m["orm/accuracy"] > 0.9 and m["orm/balanced_accuracy"] > 0.9, (m, probs)


def test_the_stored_threshold_is_read_back_and_an_uncalibrated_orm_uses_the_default(tmp_path):
    from trainer.learn.orm_calibration import read_threshold, write_calibration

    assert read_threshold(tmp_path, default=0.5) == 0.5
    write_calibration(tmp_path, 0.31, {"heldout": 12})
    assert read_threshold(tmp_path, default=0.5) == 0.31


def test_scoring_cuts_a_long_prompt_exactly_as_training_did(sft_dir):
    from trainer.learn.data import tokenize_example
    from trainer.learn.orm import orm_prompt_ids
    from trainer.learn.tokenizer import eot_id

    tok = load_tokenizer(sft_dir)
    page = " ".join(f'<p id="{i}"> row {i} </p>' for i in range(2000))
    prompt = build_orm_prompt("Find tea", ['exit(message="tea")'], page)
    yes, _ = yes_no_ids(tok)
    trained = tokenize_example(tok, prompt, [yes, eot_id(tok)], 256).input_ids
    assert len(encode_prompt(tok, prompt)) > 10 * 256 and len(trained) == 256
    assert orm_prompt_ids(tok, prompt, 256) == trained[:-2]


def _swapped(n: int, offset: int) -> list[dict]:
    """The same trajectory judged against its own instruction (success) or another instance's
    (failure): only a comparison of the instruction's name with the page tells them apart. The
    same training without `orm.checks` stays near chance (balanced accuracy 0.6 when written)."""
    out = []
    for i in range(n):
        name = f"{WORDS[(i // 2 + offset) % len(WORDS)].title()} Kettle"
        other = f"{WORDS[(i // 2 + offset + 3) % len(WORDS)].title()} Kettle"
        out.append({
            "intent": f"What is the price of {name if i % 2 == 0 else other}?",
            "responses": [f'do(action="Search", argument="{name}", element="2")',
                          'exit(message="$12.00")'],
            "last_html": PAGES["shop"].replace("</html>", f"<h1> {name} </h1> <p> $12.00 </p> </html>"),
            "label": i % 2 == 0, "group": str(i // 2 + 100 * offset),
        })  # fmt: skip
    return out


def test_with_orm_checks_a_tiny_orm_tells_a_swapped_instruction_from_its_own(tmp_path):
    config = tiny_config(**{"orm.epochs": 6, "orm.lr": 3e-3, "orm.holdout_fraction": 0.25,
                            "orm.checks": "true"})  # fmt: skip
    result = train_orm(config, _swapped(48, 0), tmp_path / "orm")
    assert result["done"]
    unseen = _swapped(20, 7)
    prompts = [example_prompt(ex, checks=True) for ex in unseen]
    probs = orm_scores(result["model_dir"], prompts, max_seq_len=config.engine.max_seq_len)
    m = classification_metrics(probs, [ex["label"] for ex in unseen], result["orm/threshold"])
    assert m["orm/balanced_accuracy"] > 0.9, (m, probs)


def test_orm_max_seq_len_bounds_the_orm_inputs_in_training_and_scoring(tmp_path, sft_dir):
    from trainer.learn.orm import orm_prompt_ids, orm_seq_len

    long_page = " ".join(f'<p id="{i}"> row {i} </p>' for i in range(400))
    examples = [dict(ex, last_html=long_page + ex["last_html"]) for ex in _toy(8, 0)]
    config = tiny_config(**{"orm.max_seq_len": "96", "engine.max_seq_len": "2048"})
    assert (
        orm_seq_len(config) == 96 and orm_seq_len(tiny_config()) == tiny_config().engine.max_seq_len
    )
    assert orm_seq_len(tiny_config(**{"orm.max_seq_len": "4096"})) == 256  # engine's caps it
    widths: list[int] = []
    result = train_orm(
        config, examples, tmp_path / "orm", on_step=lambda m: widths.append(m["longest"])
    )
    assert result["done"] and widths and max(widths) == 96  # every example was cut to the budget
    tok = load_tokenizer(sft_dir)
    assert len(orm_prompt_ids(tok, example_prompt(examples[0]), orm_seq_len(config))) == 94
