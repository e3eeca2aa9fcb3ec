"""The outcome reward model of spec §4: P(YES) from the YES/NO logits at the last prompt position.

Trained as SFT on (ORM prompt → "YES"/"NO" + EOT); human labels override ground truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig
from trainer.learn.data import DataError, batches, collate_prompts, tokenize_prompt
from trainer.learn.engine import OnStep, ShouldStop, resolve_device
from trainer.learn.models import load_causal_lm, load_tokenizer
from trainer.learn.sft import train_sft
from trainer.learn.tokenizer import encode_text, pad_id
from trainer.prompts import build_orm_prompt

ANSWER_TOKENS = 2
"""ORM training appends "YES"/"NO" and EOT to every prompt; scoring cuts prompts to the same room."""


class OrmError(ValueError):
    """The ORM's tokenizer or data cannot be used as asked."""


def yes_no_ids(tokenizer: Any) -> tuple[int, int]:
    """Vocabulary ids of "YES" and "NO", each of which must be a single token (§4.1)."""
    out = []
    for word in ("YES", "NO"):
        ids = encode_text(tokenizer, word)
        if len(ids) != 1:
            raise OrmError(
                f"{word!r} is {len(ids)} tokens in this tokenizer; the ORM needs one token each"
            )
        out.append(ids[0])
    return out[0], out[1]


def orm_seq_len(config: RunConfig) -> int:
    """The ORM's input budget in tokens: `orm.max_seq_len`, else (and at most) `engine.max_seq_len`."""
    return min(config.orm.max_seq_len or config.engine.max_seq_len, config.engine.max_seq_len)


def example_label(ex: dict[str, Any]) -> bool:
    """A human label overrides the ground-truth label."""
    label = ex.get("human_label", ex.get("label"))
    if isinstance(label, str) and label.upper() in ("YES", "NO"):
        return label.upper() == "YES"
    if isinstance(label, bool | int | float):
        return float(label) >= 0.5
    raise DataError(f"ORM example needs a 'label' (YES/NO, true/false or 0/1), got {label!r}")


def example_prompt(ex: dict[str, Any], variant: str = "webrl", checks: bool = False) -> str:
    """`prompt` as given, else built from `intent`, `responses`, `last_html` (§4.1) in the example's
    `prompt_variant`, else `variant` (the run's `rollout.prompt`), with `orm_checks` if `checks`."""
    if isinstance(ex.get("prompt"), str):
        return ex["prompt"]
    try:
        variant = ex.get("prompt_variant", variant)
        return build_orm_prompt(
            ex["intent"], list(ex["responses"]), ex["last_html"], variant=variant, checks=checks
        )
    except (KeyError, TypeError):
        raise DataError(
            "ORM example needs 'prompt' or 'intent', 'responses' and 'last_html'"
        ) from None


def orm_prompt_ids(tokenizer: Any, prompt: str, max_seq_len: int) -> list[int]:
    """The prompt's ids exactly as ORM training saw them (`fit_prompt` to max_seq_len - answer)."""
    return tokenize_prompt(tokenizer, prompt, max_seq_len - ANSWER_TOKENS)


@torch.no_grad()
def p_yes(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_seq_len: int = 16384,
    batch_size: int = 4,
) -> list[float]:
    """softmax over the (YES, NO) logits at each prompt's last position → P(YES) (§4.1)."""
    yes, no = yes_no_ids(tokenizer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[float] = []
    for chunk in batches([orm_prompt_ids(tokenizer, p, max_seq_len) for p in prompts], batch_size):
        batch = {k: v.to(device) for k, v in collate_prompts(chunk, pad_id(tokenizer)).items()}
        logits = model(**batch).logits  # [B, T, V]
        last = batch["attention_mask"].sum(-1) - 1  # [B]
        final = logits[torch.arange(logits.shape[0], device=device), last]  # [B, V]
        pair = final[:, [yes, no]].float()  # [B, 2]
        out.extend(pair.softmax(-1)[:, 0].tolist())
    model.train(was_training)
    return out


def orm_scores(
    orm_dir: str | Path, prompts: Sequence[str], *, max_seq_len: int = 16384, device: str = "auto"
) -> list[float]:
    """P(YES) per ORM prompt with the model in `orm_dir`."""
    model = load_causal_lm(orm_dir, device=str(resolve_device(device)))
    return p_yes(model, load_tokenizer(orm_dir), prompts, max_seq_len=max_seq_len)


def example_scores(
    config: RunConfig, orm_dir: str | Path, examples: Sequence[dict[str, Any]]
) -> list[float]:
    """P(YES) per example with the ORM in `orm_dir`, its prompts built and cut as `config` trains
    them (`rollout.prompt`, `orm.checks`, `orm.max_seq_len`)."""
    prompts = [example_prompt(ex, config.rollout.prompt, config.orm.checks) for ex in examples]
    return orm_scores(
        orm_dir, prompts, max_seq_len=orm_seq_len(config), device=config.engine.device
    )


def classification_metrics(
    probs: Sequence[float], labels: Sequence[bool], threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall (YES on successes), specificity (NO on
    failures) and the counts of [P(YES) >= threshold] against the labels.

    Balanced accuracy is the mean of recall and specificity over the classes present, so that a
    model saying YES (or NO) to everything scores 0.5 however unbalanced the set (a set of one
    class scores that class's rate). Undefined rates are 0.
    """
    pred = [p >= threshold for p in probs]
    tp = sum(p and y for p, y in zip(pred, labels, strict=True))
    fp = sum(p and not y for p, y in zip(pred, labels, strict=True))
    tn = sum((not p) and (not y) for p, y in zip(pred, labels, strict=True))
    fn = sum((not p) and y for p, y in zip(pred, labels, strict=True))
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    rates = [r for r, n in ((recall, tp + fn), (specificity, tn + fp)) if n]
    return {
        "orm/accuracy": (tp + tn) / len(labels) if labels else 0.0,
        "orm/balanced_accuracy": sum(rates) / len(rates) if rates else 0.0,
        "orm/precision": tp / (tp + fp) if tp + fp else 0.0,
        "orm/recall": recall,
        "orm/specificity": specificity,
        "orm/n_success": float(tp + fn),
        "orm/n_failure": float(tn + fp),
        "orm/heldout": float(len(labels)),
    }


def train_orm(
    config: RunConfig,
    examples: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    init: str | Path | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """SFT on prompt → YES/NO (§4.1) over the training tasks' examples (balanced by sampling); on
    the held-out tasks' examples, the calibrated threshold (stored beside the weights) and the
    figures at it (`orm/...`, and `orm/default_balanced_accuracy` at `orm.threshold`)."""
    from trainer.learn.orm_calibration import calibrate_threshold, write_calibration
    from trainer.learn.orm_data import sample_balanced, split_by_group

    o = config.orm
    train, held = split_by_group(examples, o.holdout_fraction, config.seed)
    if o.balance:
        labels = [example_label(ex) for ex in train]
        train = sample_balanced(train, labels, config.seed, o.examples_per_class)
    records = [
        {
            "observation": example_prompt(ex, config.rollout.prompt, o.checks),
            "action": "YES" if example_label(ex) else "NO",
        }
        for ex in train
    ]
    if not records:
        raise DataError("no ORM examples to train on")
    sized = dataclasses.replace(
        config, engine=dataclasses.replace(config.engine, max_seq_len=orm_seq_len(config))
    )
    result = train_sft(
        sized, records, out_dir, init=init or (o.model or None), on_step=on_step, should_stop=should_stop,
        resume=resume, lr=o.lr, epochs=o.epochs, schedule=o.schedule, warmup_ratio=o.warmup_ratio,
        prompt_weight=0.0,
    )  # fmt: skip
    result["orm/train_examples"] = float(len(records))
    result["orm/train_yes"] = float(sum(r["action"] == "YES" for r in records))
    result["orm/threshold"] = o.threshold
    if held and result.get("model_dir"):
        probs = example_scores(config, result["model_dir"], held)
        labels = [example_label(ex) for ex in held]
        default = classification_metrics(probs, labels, o.threshold)
        threshold = calibrate_threshold(probs, labels, o.threshold) if o.calibrate else o.threshold
        result.update(classification_metrics(probs, labels, threshold))
        result["orm/threshold"] = threshold
        result["orm/default_balanced_accuracy"] = default["orm/balanced_accuracy"]
        if o.calibrate:
            write_calibration(result["model_dir"], threshold, {
                "heldout": len(held), "balanced_accuracy": result["orm/balanced_accuracy"],
                "default_threshold": o.threshold,
                "default_balanced_accuracy": default["orm/balanced_accuracy"],
            })  # fmt: skip
    return result
