"""Copy pretraining (trainer/learn/pretrain.py): the corpus, the saved model, reuse and stopping."""

import json
import random

import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.pretrain import (
    DONE_FILE,
    SEQ_LEN,
    TOKENS_PER_STEP,
    PretrainError,
    copy_sequence,
    lm_loss,
    pretrain_tiny,
    pretrained_dir,
)


def test_a_corpus_sequence_is_cut_from_the_streams_and_repeats_some_of_its_spans():
    streams = [list(range(100, 160)), list(range(500, 540))]
    rng = random.Random(3)
    seqs = [copy_sequence(streams, rng, length=128) for _ in range(20)]
    vocab = set(streams[0]) | set(streams[1])
    assert all(len(s) == 128 and set(s) <= vocab for s in seqs)
    # a repeated span shows as the same bigram twice in one sequence; spans of fresh text rarely do
    repeats = [len(s) - 1 - len(set(zip(s, s[1:], strict=False))) for s in seqs]
    assert sum(r > 0 for r in repeats) >= 18


def test_a_corpus_needs_some_text():
    with pytest.raises(PretrainError, match="no token stream"):
        copy_sequence([[], []], random.Random(0))


def test_lm_loss_is_the_next_token_cross_entropy_of_every_position():
    ids = torch.tensor([[1, 2, 3]])  # [B, T]
    logits = torch.zeros(1, 3, 5)  # [B, T, V]: uniform
    assert lm_loss(logits, ids).item() == pytest.approx(torch.log(torch.tensor(5.0)).item())


def test_pretraining_saves_a_loadable_model_with_its_tokenizer_and_a_done_file(tmp_path):
    config = tiny_config(**{"model.pretrain_steps": 6})
    seen = []
    result = pretrain_tiny(config, make_steps(6), tmp_path / "pre", on_step=seen.append)
    assert result["done"] and not result["reused"] and result["steps"] == 6
    assert [m["step"] for m in seen] == list(range(1, 7)) and seen[-1]["total_steps"] == 6
    final = pretrained_dir(tmp_path / "pre")
    assert final is not None and str(final) == result["model_dir"]
    info = json.loads((final / DONE_FILE).read_text())
    assert info["steps"] == 6
    # sequences never run past the model's positions; the step's token budget is kept
    length = min(SEQ_LEN, config.engine.max_seq_len)
    assert info["seq_len"] == length and info["sequences_per_step"] == TOKENS_PER_STEP // length
    model, tokenizer = load_causal_lm(final), load_tokenizer(final)
    assert model.config.hidden_size == 64 and len(tokenizer) == model.config.vocab_size


def test_a_finished_pretraining_is_reused_and_a_stopped_one_saves_nothing(tmp_path):
    config = tiny_config(**{"model.pretrain_steps": 3})
    pretrain_tiny(config, make_steps(4), tmp_path / "pre")
    again = pretrain_tiny(config, make_steps(4), tmp_path / "pre", on_step=lambda m: 1 / 0)
    assert again["reused"] and again["steps"] == 3
    stopped = pretrain_tiny(config, make_steps(4), tmp_path / "other", should_stop=lambda: True)
    assert stopped["stopped"] and stopped["model_dir"] is None
    assert pretrained_dir(tmp_path / "other") is None


def test_a_config_refuses_negative_pretraining_steps():
    from trainer.config import ConfigError

    with pytest.raises(ConfigError, match="model.pretrain_steps"):
        tiny_config(**{"model.pretrain_steps": -1})
