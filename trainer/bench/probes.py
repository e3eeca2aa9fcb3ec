"""The copy probe: does SFT from a copy-pretrained tiny model copy names that SFT from scratch cannot?

`python -m trainer copy-probe --config demo-cpu --data steps.jsonl` fine-tunes the tiny model twice
on the first `--train-tasks` tasks of a step file (as `world export-sft` writes it): once from
scratch and once after `model.pretrain_steps` of copy pretraining (trainer/learn/pretrain.py). Both then
decode greedily on held-out steps of later tasks, and the probe counts how often each reproduces the
oracle's action: whole, its kind, its element and, where the oracle typed or searched something, its
argument. No browser, no database: the held-out steps are scored against the oracle's own next
action, not by running it. `--variants from_scratch` trains only the first model; `--decoding
free,valid_actions` scores each model under each decoding (`rollout.decoding`: free text, or token by
token through the trie of the step's valid actions, trainer/env/valid_actions.py), on the same steps.

The induction probe asks the narrower question underneath: can a model copy at all? `python -m
trainer induction-probe --model DIR --data steps.jsonl` shows it a span of `span` tokens, then
`distance` tokens of page text, then the span again, and counts how often its greedy next-token
prediction inside the repeat is the span's next token. A span cut from the texts can often be
predicted from its own first tokens without looking back; the same count on a control sequence, where
a different span stands in the first place, measures that, and the difference is what copying adds.
A span of tokens drawn at random from the texts' vocabulary ("shuffled") can only be predicted by
copying. An LLM copies at every distance; a 7.4M model trained for minutes may not.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainer.config import ConfigError, RunConfig
from trainer.env.actions import Action, Kind, parse_action
from trainer.learn.data import DataError
from trainer.prompts import ASSISTANT_HEADER, EOT, USER_HEADER

TYPED = {Kind.TYPE, Kind.SEARCH}
VARIANTS = ("from_scratch", "copy_pretrained")
"""The copy probe's models: SFT from a fresh tiny model, and SFT after copy pretraining."""
INDUCTION_DISTANCES = (16, 64, 200, 450)
"""Default gaps, in tokens, between a span and its repeat (a compact prompt's instruction sits about
450 tokens before the action)."""


def split_by_task(
    records: Sequence[dict[str, Any]], train_tasks: int, held_steps: int, seed: int
) -> tuple[list[dict], list[dict]]:
    """(steps of the first `train_tasks` tasks, up to `held_steps` steps of the tasks after them).

    Tasks are keyed by `task_id` (else `task`, the intent) in the order they first appear."""
    order: dict[Any, int] = {}
    for r in records:
        order.setdefault(r.get("task_id", r.get("task")), len(order))
    if len(order) <= train_tasks:
        raise DataError(
            f"the step file holds {len(order)} tasks: the probe needs more than --train-tasks "
            f"({train_tasks}) so that some are held out"
        )
    train = [r for r in records if order[r.get("task_id", r.get("task"))] < train_tasks]
    held = [r for r in records if order[r.get("task_id", r.get("task"))] >= train_tasks]
    random.Random(seed).shuffle(held)
    return train, held[:held_steps]


def _clean(text: str) -> str:
    return text[: -len(EOT)].strip() if text.endswith(EOT) else text.strip()


def agreement(outputs: Sequence[str], golds: Sequence[str]) -> dict[str, float]:
    """How often each output reproduces its oracle action (counts, and shares where it has any)."""
    n = len(golds)
    counts = {"steps": n, "parsed": 0, "exact": 0, "action": 0, "kind": 0}
    counts.update({"element_n": 0, "element": 0})
    counts.update({"typed_n": 0, "typed": 0})
    for out, gold_text in zip(outputs, golds, strict=True):
        gold = parse_action(_clean(gold_text))
        got = parse_action(out)
        ok = isinstance(got, Action)
        counts["parsed"] += ok
        counts["exact"] += _clean(out) == _clean(gold_text)
        if not isinstance(gold, Action):
            continue
        counts["action"] += ok and got == gold  # the same call, whatever the comment lines say
        counts["kind"] += ok and got.kind == gold.kind
        if gold.element:
            counts["element_n"] += 1
            counts["element"] += ok and got.element == gold.element
        if gold.kind in TYPED:
            counts["typed_n"] += 1
            counts["typed"] += ok and got.kind == gold.kind and got.argument == gold.argument
    shares = {
        "parsed_share": counts["parsed"] / max(n, 1),
        "exact_share": counts["exact"] / max(n, 1),
        "action_share": counts["action"] / max(n, 1),
        "element_share": counts["element"] / max(counts["element_n"], 1),
        "typed_share": counts["typed"] / max(counts["typed_n"], 1),
    }
    return {**counts, **{k: round(v, 3) for k, v in shares.items()}}


def page_of(record: dict[str, Any]) -> str:
    """The page (H_t) of a step record's agent prompt, without `instruction_last`'s closing line."""
    current = record["observation"].rsplit(USER_HEADER, 1)[-1]
    html = current.removesuffix(f"\n\n{EOT}{ASSISTANT_HEADER}")
    return html.removesuffix(f"\n\nTask Instruction: {record.get('task', '')}")


def greedy_outputs(
    model_dir: str | Path, config: RunConfig, records: Sequence[dict], decoding: str = "free"
) -> list[str]:
    """The model's greedy reply to each record's prompt, with evaluation's token budget; with
    `valid_actions`, through the trie of the actions valid on the record's page."""
    from trainer.env.valid_actions import valid_actions
    from trainer.serve.hf import HFGenerator
    from trainer.serve.sampling import Decoding

    greedy = dataclasses.replace(Decoding.evaluation(config), temperature=0.0)
    generator = HFGenerator.from_dir(model_dir, config, greedy)
    choices = None
    if decoding == "valid_actions":
        choices = [valid_actions(r.get("task", ""), page_of(r)) for r in records]
    return [o.text for o in generator.generate([r["observation"] for r in records], choices)]


def copy_probe(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    train_tasks: int = 200,
    held_steps: int = 150,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    variants: Sequence[str] = VARIANTS,
    decodings: Sequence[str] | None = None,
) -> dict[str, Any]:
    """SFT from scratch and from the copy-pretrained model on the same steps; agreement of each,
    under `config.rollout.decoding` and, in `decodings`, under each decoding named there."""
    from trainer.learn.pretrain import pretrain_tiny
    from trainer.learn.sft import train_sft

    decodings = list(decodings or [config.rollout.decoding])
    if config.model.policy:
        raise ConfigError("copy-probe builds tiny models: leave model.policy empty")
    if not variants or set(variants) - set(VARIANTS):
        raise ConfigError(f"copy-probe variants: some of {', '.join(VARIANTS)}, got {variants}")
    if set(decodings) - {"free", "valid_actions"}:
        raise ConfigError(f"copy-probe decodings: free and/or valid_actions, got {decodings}")
    if "copy_pretrained" in variants and config.model.pretrain_steps < 1:
        raise ConfigError(
            "copy-probe compares against copy pretraining: set model.pretrain_steps > 0"
        )
    train, held = split_by_task(records, train_tasks, held_steps, config.seed)
    out = Path(out_dir)
    result: dict[str, Any] = {
        "train_tasks": train_tasks,
        "train_steps": len(train),
        "held_steps": len(held),
        "pretrain_steps": config.model.pretrain_steps,
    }
    golds = [r["action"] for r in held]
    for name in variants:
        pretrain = name == "copy_pretrained"
        started = time.perf_counter()

        def tagged(metrics: dict[str, Any], stage: str, name: str = name) -> None:
            if on_step is not None:
                on_step({"variant": name, "stage": stage, **metrics})

        init = None
        if pretrain:
            pre = pretrain_tiny(config, train, out / name / "pretrain",
                                on_step=lambda m: tagged(m, "pretrain"))  # fmt: skip
            init = pre["model_dir"]
        sft = train_sft(config, train, out / name / "sft", init=init,
                        on_step=lambda m: tagged(m, "sft"))  # fmt: skip
        by_decoding = {}
        for decoding in decodings:
            began = time.perf_counter()
            outputs = greedy_outputs(sft["model_dir"], config, held, decoding)
            by_decoding[decoding] = {**agreement(outputs, golds),
                                     "decode_s": round(time.perf_counter() - began, 1)}  # fmt: skip
        result[name] = {**by_decoding[decodings[0]], "sft_loss": sft["loss"],
                        "minutes": round((time.perf_counter() - started) / 60, 1),
                        "decodings": by_decoding}  # fmt: skip
    return result


def _induction_case(
    streams: Sequence[Sequence[int]], vocab: Sequence[int], rng: random.Random,
    mode: str, span: int, distance: int,
) -> tuple[list[int], list[int]]:  # fmt: skip
    """(span, filler): a span cut from a stream (each longer than `span`) or drawn from `vocab`, and
    `distance` filler tokens."""
    if mode == "shuffled":
        piece = [rng.choice(vocab) for _ in range(span)]
    else:
        stream = rng.choice(streams)  # every stream is longer than `span`
        start = rng.randrange(len(stream) - span)
        piece = list(stream[start : start + span])
    filler: list[int] = []
    while len(filler) < distance:
        stream = rng.choice(streams)
        start = rng.randrange(max(1, len(stream) - distance))
        filler.extend(stream[start : start + distance - len(filler)])
    return piece, filler


def induction_probe(
    model_dir: str | Path,
    texts: Sequence[str],
    *,
    distances: Sequence[int] = INDUCTION_DISTANCES,
    trials: int = 20,
    span: int = 6,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Greedy next-token accuracy inside a repeated span, with and without its earlier copy.

    For each mode ("text", "shuffled") and distance: `copied` counts right predictions of tokens 2..span
    of the repeat when the span appeared `distance` tokens earlier; `without_copy` counts them when a
    different span of the same kind stood there instead. Both out of `n` = trials × (span - 1)."""
    from trainer.learn.models import load_causal_lm, load_tokenizer

    model, tokenizer = load_causal_lm(model_dir), load_tokenizer(model_dir)
    model.to(device)
    rows = induction_counts(model, tokenizer, texts, distances=distances, trials=trials, span=span,
                            seed=seed)  # fmt: skip
    return {"model": str(model_dir), "span": span, "trials": trials, "results": rows}


def induction_counts(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    distances: Sequence[int] = INDUCTION_DISTANCES,
    trials: int = 20,
    span: int = 6,
    seed: int = 0,
    modes: Sequence[str] = ("text", "shuffled"),
) -> list[dict[str, Any]]:
    """`induction_probe`'s rows for a model in memory (on its own device; left in its train/eval mode)."""
    import torch

    from trainer.learn.tokenizer import encode_prompt, encode_text

    if span < 2 or trials < 1 or not distances or min(distances) < 0:
        raise ConfigError("induction-probe: span >= 2, trials >= 1 and distances >= 0 are needed")
    limit = getattr(model.config, "max_position_embeddings", None)
    longest = 1 + 2 * span + max(distances)  # with BOS
    if limit and longest > limit:
        raise ConfigError(
            f"induction-probe: a distance of {max(distances)} needs {longest} positions; the model "
            f"has {limit}"
        )
    streams = [ids for ids in (encode_text(tokenizer, t) for t in texts) if len(ids) > span]
    if not streams:
        raise DataError(f"induction-probe: no text longer than {span} tokens to cut spans from")
    vocab = sorted({i for ids in streams for i in ids})
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    head = encode_prompt(tokenizer, "")  # BOS, where the model has one
    rng = random.Random(seed)
    rows = []
    for mode in modes:
        for distance in distances:
            copied = without = 0
            for _ in range(trials):
                piece, filler = _induction_case(streams, vocab, rng, mode, span, distance)
                other, _ = _induction_case(streams, vocab, rng, mode, span, 0)
                batch = torch.tensor(
                    [[*head, *piece, *filler, *piece], [*head, *other, *filler, *piece]],
                    device=device,
                )
                with torch.no_grad():
                    pred = model(input_ids=batch).logits.argmax(-1)  # [2, T]
                start = len(head) + span + distance  # position of the repeat's first token
                want = torch.tensor(piece[1:], device=device)
                copied += int((pred[0, start : start + span - 1] == want).sum())
                without += int((pred[1, start : start + span - 1] == want).sum())
            n = trials * (span - 1)
            rows.append({"mode": mode, "distance": distance, "copied": copied,
                         "without_copy": without, "n": n})  # fmt: skip
    model.train(was_training)
    return rows
