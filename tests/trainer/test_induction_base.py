"""The GPU-built base for the tiny preset (trainer/bench/induction_base.py) and `model.init`, which
starts phase 0 from it, at tiny sizes on the CPU."""

import json

import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.bench.induction_base import INFO_FILE, copy_batches, train_induction_base
from trainer.config import ConfigError
from trainer.learn.models import load_causal_lm
from trainer.learn.pretrain import needs_pretraining
from trainer.learn.sft import policy_loader, train_sft

SMALL = {"minutes": 0.05, "batch": 2, "seq_len": 64, "probe_every_s": 0.0, "trials": 2,
         "distance": 40}  # fmt: skip


def test_batches_built_by_worker_processes_are_the_batches_built_inline():
    streams = [list(range(100, 160)), list(range(500, 530))]
    inline, pooled = copy_batches(streams, 3, 2, 32), copy_batches(streams, 3, 2, 32, workers=2)
    got = [(next(inline), next(pooled)) for _ in range(3)]
    pooled.close()
    assert all(a == b for a, b in got) and got[0][0] != got[1][0]
    assert all(len(row) == 32 for a, _ in got for row in a)


def test_the_base_stops_at_the_first_probe_that_reaches_the_target(tmp_path):
    out = train_induction_base(tiny_config(), make_steps(8), tmp_path, target=0, **SMALL)
    assert out["reached"] and len(out["history"]) == 1 and out["steps"] == 1
    assert out["history"][0]["copied"] >= 0 and out["tokens"] == 2 * 64


def test_without_reaching_the_target_it_trains_until_the_time_is_up_and_saves_a_small_bf16_model(
    tmp_path,
):
    out = train_induction_base(tiny_config(), make_steps(8), tmp_path, target=10**6, **SMALL)
    assert not out["reached"] and out["steps"] >= 1 and out["train_minutes"] >= 0.05
    final = tmp_path / "final"
    info = json.loads((final / INFO_FILE).read_text())
    assert info["steps"] == out["steps"] and info["within_30mb"]
    probed = [(r["mode"], r["distance"]) for r in info["probe"]]
    assert probed == [(m, d) for m in ("text", "shuffled") for d in (16, 40)]
    assert json.loads((final / "config.json").read_text())["dtype"] == "bfloat16"


def test_model_init_starts_sft_from_the_base_and_skips_copy_pretraining(tmp_path):
    base = train_induction_base(tiny_config(), make_steps(8), tmp_path / "base", target=0, **SMALL)
    config = tiny_config(**{"model.init": base["model_dir"], "model.pretrain_steps": 1500})
    assert not needs_pretraining(config)
    model, tokenizer = policy_loader(config, None, make_steps(2))
    saved = load_causal_lm(base["model_dir"])
    for (name, a), (_, b) in zip(model.state_dict().items(), saved.state_dict().items(), strict=True):  # fmt: skip
        assert torch.equal(a, b), name
    assert len(tokenizer) == saved.config.vocab_size
    assert train_sft(config, make_steps(2), tmp_path / "sft")["done"]


def test_model_init_and_model_policy_together_are_refused():
    with pytest.raises(ConfigError, match="model.init"):
        tiny_config(**{"model.init": "/base", "model.policy": "/llm"})
