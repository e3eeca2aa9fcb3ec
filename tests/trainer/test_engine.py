import json
import math

import pytest
import torch

from tests.trainer.helpers import tiny_config
from trainer.learn.engine import Engine, TrainingError, latest_checkpoint, lr_lambda
from trainer.learn.models import build_tiny_llama, load_causal_lm, load_tokenizer, save_model
from trainer.learn.sft import train_sft


def _engine(tmp_path, sft_dir, **overrides):
    config = tiny_config(**overrides)
    tok = load_tokenizer(sft_dir)
    model = build_tiny_llama(config.model, tok, 256, seed=1)
    return Engine(
        config,
        model,
        lr=1e-3,
        total_steps=10,
        save_model=lambda m, d: save_model(m, tok, d),
        out_dir=tmp_path,
    )


def _step(engine, ids):
    loss = engine.model(input_ids=ids, labels=ids).loss
    engine.backward(loss)
    return engine.maybe_step()


def test_a_checkpoint_loads_back_with_identical_outputs_and_full_state(tmp_path, sft_dir):
    engine = _engine(tmp_path, sft_dir)
    ids = torch.randint(0, 300, (2, 12))
    _step(engine, ids)
    path = engine.save_checkpoint()
    assert path.name == "step-000001" and latest_checkpoint(tmp_path) == path
    with torch.no_grad():
        expected = engine.model(input_ids=ids).logits
        again = load_causal_lm(path)(input_ids=ids).logits
    assert torch.equal(expected, again)
    state = torch.load(path / "training_state.pt", weights_only=False)
    assert state["step"] == 1 and state["optimizer"]["state"]
    assert json.loads((path / "run_config.json").read_text()) == engine.config.to_dict()
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_saving_the_same_step_again_replaces_the_directory(tmp_path, sft_dir):
    engine = _engine(tmp_path, sft_dir)
    first = engine.save_checkpoint()
    (first / "stale.txt").write_text("old")
    assert engine.save_checkpoint() == first and not (first / "stale.txt").exists()


def test_gradients_accumulate_over_micro_batches(tmp_path, sft_dir):
    engine = _engine(tmp_path, sft_dir, **{"engine.grad_accum": 3})
    ids = torch.randint(0, 300, (1, 8))
    assert [_step(engine, ids) is not None for _ in range(6)] == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    assert engine.step == 2


def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path, sft_dir):
    engine = _engine(tmp_path, sft_dir)
    with pytest.raises(TrainingError, match="non-finite loss"):
        engine.backward(torch.tensor(float("nan"), requires_grad=True))


def test_the_schedule_warms_up_then_follows_a_cosine_to_zero():
    f = lr_lambda("cosine", 0.1, 100)
    assert f(0) < f(5) < f(9) <= 1.0
    assert (
        f(10) == pytest.approx(1.0)
        and f(55) == pytest.approx(0.5, abs=0.02)
        and f(100) == pytest.approx(0.0)
    )
    assert lr_lambda("constant", 0.0, 100)(77) == 1.0


def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(tmp_path, steps):
    config = tiny_config(**{"sft.epochs": 2})
    straight = train_sft(config, steps, tmp_path / "straight")
    total = straight["steps"]
    seen = []
    stopped = train_sft(
        config, steps, tmp_path / "resumed", on_step=seen.append, should_stop=lambda: len(seen) >= 2
    )
    assert stopped["stopped"] and stopped["steps"] == 2 and stopped["model_dir"] is None
    assert latest_checkpoint(tmp_path / "resumed").name == "step-000002"
    later = []
    resumed = train_sft(config, steps, tmp_path / "resumed", on_step=later.append, resume=True)
    assert [m["step"] for m in later] == list(range(3, total + 1))
    assert resumed["done"] and resumed["steps"] == total
    a, b = load_causal_lm(straight["model_dir"]), load_causal_lm(resumed["model_dir"])
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    assert all(math.isfinite(m["loss"]) for m in seen + later)
