"""The outcome reward model of spec §4: P(YES) from the YES/NO logits at the last prompt position.

Trained as SFT on (ORM prompt → "YES"/"NO" + EOT); human labels override ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig
from trainer.data import DataError, batches, collate_prompts, tokenize_prompt
from trainer.engine import OnStep, ShouldStop, resolve_device, train_sft
from trainer.models import load_causal_lm, load_tokenizer
from trainer.prompts import build_orm_prompt
from trainer.tokenizer import encode_text, pad_id

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


def example_label(ex: dict[str, Any]) -> bool:
    """A human label overrides the ground-truth label."""
    label = ex.get("human_label", ex.get("label"))
    if isinstance(label, str) and label.upper() in ("YES", "NO"):
        return label.upper() == "YES"
    if isinstance(label, bool | int | float):
        return float(label) >= 0.5
    raise DataError(f"ORM example needs a 'label' (YES/NO, true/false or 0/1), got {label!r}")


def example_prompt(ex: dict[str, Any]) -> str:
    """`prompt` as given, else built from `intent`, `responses`, `last_html` (§4.1)."""
    if isinstance(ex.get("prompt"), str):
        return ex["prompt"]
    try:
        return build_orm_prompt(ex["intent"], list(ex["responses"]), ex["last_html"])
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


def classification_metrics(
    probs: Sequence[float], labels: Sequence[bool], threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, precision, recall and specificity (NO on failures) of [P(YES) >= threshold]."""
    pred = [p >= threshold for p in probs]
    tp = sum(p and y for p, y in zip(pred, labels, strict=True))
    fp = sum(p and not y for p, y in zip(pred, labels, strict=True))
    tn = sum((not p) and (not y) for p, y in zip(pred, labels, strict=True))
    fn = sum((not p) and y for p, y in zip(pred, labels, strict=True))
    correct = sum(p == y for p, y in zip(pred, labels, strict=True))
    return {
        "orm/accuracy": correct / len(labels) if labels else 0.0,
        "orm/precision": tp / (tp + fp) if tp + fp else 0.0,
        "orm/recall": tp / (tp + fn) if tp + fn else 0.0,
        "orm/specificity": tn / (tn + fp) if tn + fp else 0.0,
        "orm/heldout": float(len(labels)),
    }


def balance_labels(items: Sequence[Any], labels: Sequence[bool], seed: int) -> list[Any]:
    """`items` plus repeats of the rarer label's items (whole copies first, then a seeded sample)
    so that both labels are equally frequent; unchanged when a label is missing."""
    pos = [x for x, y in zip(items, labels, strict=True) if y]
    neg = [x for x, y in zip(items, labels, strict=True) if not y]
    if not pos or not neg or len(pos) == len(neg):
        return list(items)
    rare, common = (pos, neg) if len(pos) < len(neg) else (neg, pos)
    need = len(common) - len(rare)
    extra = rare * (need // len(rare)) + random.Random(seed).sample(rare, need % len(rare))
    return [*items, *extra]


def split_holdout(
    examples: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list, list]:
    items = list(examples)
    random.Random(seed).shuffle(items)
    n_hold = int(round(fraction * len(items))) if len(items) > 1 else 0
    return items[n_hold:], items[:n_hold]


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
    """SFT on prompt → YES/NO for the training part; accuracy/precision/recall on the held-out part."""
    train, held = split_holdout(examples, config.orm.holdout_fraction, config.seed)
    if config.orm.balance:
        train = balance_labels(train, [example_label(ex) for ex in train], config.seed)
    records = [
        {"observation": example_prompt(ex), "action": "YES" if example_label(ex) else "NO"}
        for ex in train
    ]
    if not records:
        raise DataError("no ORM examples to train on")
    o = config.orm
    result = train_sft(
        config, records, out_dir, init=init or (o.model or None), on_step=on_step, should_stop=should_stop,
        resume=resume, lr=o.lr, epochs=o.epochs, schedule=o.schedule, warmup_ratio=o.warmup_ratio,
    )  # fmt: skip
    if held and result.get("model_dir"):
        probs = orm_scores(
            result["model_dir"],
            [example_prompt(ex) for ex in held],
            max_seq_len=config.engine.max_seq_len,
            device=config.engine.device,
        )
        result.update(
            classification_metrics(probs, [example_label(ex) for ex in held], o.threshold)
        )
    return result
