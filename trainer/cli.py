"""Command line for the trainer without a database: SFT, critic, actor, ORM and replay over step files (§10).

python -m trainer sft --config demo-cpu --data steps.jsonl --out runs/sft
python -m trainer critic --config demo-cpu --data phase.jsonl --init runs/sft --out runs/critic
python -m trainer actor --config demo-cpu --data phase.jsonl --init runs/sft --critic runs/critic --out runs/actor
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from trainer.config import ConfigError, load_config
from trainer.data import DataError, add_mc_returns, read_steps, write_steps
from trainer.engine import TrainingError
from trainer.models import ModelLoadError
from trainer.orm import OrmError
from trainer.pretrain import PretrainError, needs_pretraining
from trainer.probe import INDUCTION_DISTANCES

USER_ERRORS = (ConfigError, DataError, ModelLoadError, TrainingError, OrmError, PretrainError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description="WebRL trainer (no database needed)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in [
        (
            "sft",
            "supervised fine-tuning on prompt -> action steps (without --init: builds a tiny model,"
            " copy-pretrained first when model.pretrain_steps > 0)",
        ),
        ("critic", "train the double-headed critic (§3) on step records"),
        ("actor", "one WebRL actor update (§2) with a critic and a reference policy"),
        ("orm", "train the ORM on labelled trajectories and report held-out accuracy (§4)"),
        ("replay", "merge current steps with in-band earlier successes (§5) into one step file"),
    ]:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument(
            "--config", required=True, help="preset name (demo-cpu, paper-llama8b) or a JSON file"
        )
        p.add_argument("--data", required=True, help="JSONL step file (ORM: labelled examples)")
        p.add_argument("--out", required=True, help="output directory (replay: output JSONL file)")
        p.add_argument(
            "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override"
        )
        p.add_argument("--init", help="model directory to start from")
        if name in ("sft", "critic", "actor", "orm"):
            p.add_argument(
                "--resume", action="store_true", help="continue from the last checkpoint in --out"
            )
        if name == "actor":
            p.add_argument(
                "--ref", help="reference policy directory (default: --init, the phase-start actor)"
            )
            p.add_argument(
                "--critic", help="critic directory (not needed with actor.objective=sft)"
            )
        if name == "replay":
            p.add_argument(
                "--past",
                action="append",
                default=[],
                help="earlier phases' step files (repeatable)",
            )
    probe = sub.add_parser(
        "copy-probe",
        help="SFT from scratch vs from the copy-pretrained tiny model: greedy agreement with the"
        " oracle on held-out steps (JSON)",
    )
    probe.add_argument("--config", default="demo-cpu")
    probe.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    probe.add_argument("--data", required=True, help="JSONL step file (`world export-sft`)")
    probe.add_argument("--out", required=True, help="directory for the models it trains")
    probe.add_argument("--train-tasks", type=int, default=200)
    probe.add_argument("--held-steps", type=int, default=150)
    probe.add_argument(
        "--variants",
        default="from_scratch,copy_pretrained",
        help="comma-separated models to train: from_scratch, copy_pretrained",
    )
    probe.add_argument(
        "--decoding",
        default="",
        help="comma-separated decodings to score each model with: free, valid_actions"
        " (default: rollout.decoding)",
    )
    induction = sub.add_parser(
        "induction-probe",
        help="can a model copy? greedy next-token accuracy inside a span repeated DISTANCE tokens"
        " later, with and without the earlier copy (JSON)",
    )
    induction.add_argument("--model", required=True, help="model directory (with its tokenizer)")
    induction.add_argument(
        "--data", required=True, help="JSONL step file: its prompts give the text"
    )
    induction.add_argument(
        "--distances", default=",".join(map(str, INDUCTION_DISTANCES)), help="comma-separated gaps"
    )
    induction.add_argument("--trials", type=int, default=20)
    induction.add_argument("--span", type=int, default=6)
    induction.add_argument("--seed", type=int, default=0)
    induction.add_argument("--device", default="cpu")
    bench = sub.add_parser(
        "bench", help="time actor-update steps of a Llama built from a config (JSON numbers)"
    )
    bench.add_argument("--config", default="demo-cpu")
    bench.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    bench.add_argument("--seq-len", type=int, default=1024)
    bench.add_argument("--steps", type=int, default=5)
    bench.add_argument("--warmup", type=int, default=1)
    bench.add_argument(
        "--peak-tflops", type=float, default=0.0, help="device peak for MFU (H100 bf16 dense: 989)"
    )
    return parser


def _progress(
    total_hint: int | None,
) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """Print one JSON line per optimizer step; a tqdm bar on stderr when it is a terminal."""
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total_hint, unit="step", file=sys.stderr)

    def on_step(metrics: dict[str, Any]) -> None:
        print(json.dumps(metrics), flush=True)
        if bar is not None:
            if metrics.get("total_steps") and bar.total is None:
                bar.total = metrics["total_steps"]
            bar.update(1)
            bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4f}")

    def close() -> None:
        if bar is not None:
            bar.close()

    return on_step, close


def run(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.critic import train_critic
    from trainer.engine import train_actor, train_sft
    from trainer.orm import train_orm

    if args.command == "induction-probe":
        from trainer.probe import induction_probe

        try:
            distances = [int(d) for d in args.distances.split(",") if d.strip()]
        except ValueError:
            raise ConfigError(
                f"--distances: expected integers like 16,64,200 (got {args.distances!r})"
            ) from None
        texts = [r["observation"] for r in read_steps(args.data)]
        return induction_probe(args.model, texts, distances=distances, trials=args.trials,
                               span=args.span, seed=args.seed, device=args.device)  # fmt: skip
    config = load_config(args.config, args.set)
    if args.command == "bench":
        return bench_actor_update(config, args.seq_len, args.steps, args.warmup, args.peak_tflops)
    if args.command == "orm":
        examples = _read_jsonl(args.data)
        on_step, close = _progress(None)
        try:
            return train_orm(
                config, examples, args.out, init=args.init, on_step=on_step, resume=args.resume
            )
        finally:
            close()
    records = read_steps(args.data)
    if args.command == "copy-probe":
        from trainer.probe import copy_probe

        on_step, close = _progress(None)
        try:
            return copy_probe(config, records, args.out, train_tasks=args.train_tasks,
                              held_steps=args.held_steps, on_step=on_step,
                              variants=[v for v in args.variants.split(",") if v],
                              decodings=[d for d in args.decoding.split(",") if d])  # fmt: skip
        finally:
            close()
    if any("mc_return" not in r for r in records):
        records = add_mc_returns(records, config.actor.gamma)
    if args.command == "replay":
        from trainer.replay import build_phase_data

        if not args.init:
            raise ConfigError("replay needs --init, the actor about to be trained")
        past = [r for path in args.past for r in read_steps(path)]
        merged, stats = build_phase_data(config, records, past, args.init)
        write_steps(args.out, merged)
        return {"done": True, "out": args.out, **stats}
    on_step, close = _progress(None)
    try:
        if args.command == "sft":
            init, pretrained = args.init, None
            if not init and needs_pretraining(config):
                from pathlib import Path

                from trainer.pretrain import pretrain_tiny

                pre = pretrain_tiny(
                    config, records, Path(args.out) / "pretrain",
                    on_step=lambda m: on_step({"stage": "pretrain", **m}),
                )  # fmt: skip
                init = pretrained = pre["model_dir"]
            result = train_sft(
                config, records, args.out, init=init, on_step=on_step, resume=args.resume
            )
            return {**result, "pretrained": pretrained} if pretrained else result
        if not args.init:
            raise ConfigError(f"{args.command} needs --init (the SFT model or the current actor)")
        if args.command == "critic":
            return train_critic(
                config, records, args.init, args.out, on_step=on_step, resume=args.resume
            )
        return train_actor(
            config,
            records,
            args.init,
            args.ref or args.init,
            args.critic,
            args.out,
            on_step=on_step,
            resume=args.resume,
        )
    finally:
        close()


def bench_actor_update(
    config, seq_len: int, steps: int, warmup: int, peak_tflops: float
) -> dict[str, Any]:
    """Optimizer steps of the released actor loss on random tokens; tokens/s and MFU (6·params·tokens/s)."""
    import time

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.engine import Engine
    from trainer.losses import sequence_logprobs, token_logprobs, webrl_released

    m = config.model
    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=m.vocab_size, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
            num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads, num_key_value_heads=m.num_heads,
            max_position_embeddings=max(seq_len, 16), tie_word_embeddings=False,
        )
    )  # fmt: skip
    params = sum(p.numel() for p in model.parameters())
    engine = Engine(
        config, model, lr=1e-6, total_steps=steps + warmup, save_model=lambda *_: None, out_dir="."
    )
    B = config.engine.micro_batch
    ids = torch.randint(0, m.vocab_size, (B, seq_len), device=engine.device)  # [B, T]
    action = torch.zeros_like(ids)
    action[:, -seq_len // 4 :] = 1  # the last quarter are action tokens
    attention = torch.ones_like(ids)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        for _ in range(config.engine.grad_accum):
            logits = engine.model(input_ids=ids, attention_mask=attention).logits  # [B, T, V]
            logprobs, n = sequence_logprobs(token_logprobs(logits, ids, action), action)  # [B], [B]
            loss, _ = webrl_released(
                logprobs, logprobs.detach() - 0.1, torch.ones(B, device=engine.device), n
            )
            engine.backward(loss)
        engine.maybe_step()
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    tokens = B * seq_len * config.engine.grad_accum
    tps = tokens * len(times) / sum(times)
    out = {
        "done": True, "params": params, "seq_len": seq_len, "tokens_per_step": tokens, "steps": len(times),
        "step_s": sum(times) / len(times), "tokens_per_s": tps, "device": str(engine.device), "dtype": str(engine.dtype),
    }  # fmt: skip
    if peak_tflops > 0:
        out["mfu"] = 6 * params * tps / (peak_tflops * 1e12)
    return out


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except OSError as exc:
        raise DataError(f"cannot read {path!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise DataError(f"{path}: expected one JSON object per line")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {"done": result.get("done", True), **{k: v for k, v in result.items() if k != "done"}}
        )
    )
    return 0
