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

from trainer.bench.probes import INDUCTION_DISTANCES
from trainer.config import ConfigError, load_config
from trainer.learn.data import DataError, add_mc_returns, read_steps, write_steps
from trainer.learn.engine import TrainingError
from trainer.learn.models import ModelLoadError
from trainer.learn.orm import OrmError
from trainer.learn.pretrain import PretrainError, needs_pretraining

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
        "--peak-tflops", type=float, default=0.0,
        help="device peak for MFU; 0 = the dense bf16 peak of a known GPU (H200, H100: 989)",
    )  # fmt: skip
    bench.add_argument(
        "--shape",
        default="config",
        help="config (the model section), tiny, 1b or 8b (Llama-3 shapes)",
    )
    gen = sub.add_parser(
        "gen-bench",
        help="tokens/s of the HF policy sampler on a random Llama, by batch size (JSON)",
    )
    gen.add_argument("--config", default="demo-cpu")
    gen.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    gen.add_argument("--data", required=True, help="JSONL step file: its prompts and tokenizer")
    gen.add_argument("--shape", default="config", help="config, tiny, 1b or 8b")
    gen.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes")
    gen.add_argument("--prompt-len", type=int, default=512)
    gen.add_argument("--new-tokens", type=int, default=128)
    base = sub.add_parser(
        "induction-base",
        help="copy-pretrain the tiny model (GPU, large batches) until the induction probe copies"
        " random spans 450 tokens back; writes OUT/final for model.init (JSON)",
    )
    base.add_argument("--config", default="demo-cpu")
    base.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    base.add_argument("--data", required=True, help="JSONL step file (`world export-sft`)")
    base.add_argument("--out", required=True, help="output directory (the model goes to OUT/final)")
    base.add_argument("--minutes", type=float, default=5.0, help="training time limit")
    base.add_argument("--batch", type=int, default=128, help="sequences a step")
    base.add_argument("--seq-len", type=int, default=1024, help="tokens a sequence (<= engine.max_seq_len)")  # fmt: skip
    base.add_argument("--lr", type=float, default=0.0, help="0 = model.pretrain_lr")
    base.add_argument("--probe-every", type=float, default=20.0, help="seconds between probes")
    base.add_argument("--trials", type=int, default=20)
    base.add_argument("--target", type=int, default=80, help="shuffled copies of trials x 5")
    base.add_argument("--distance", type=int, default=450, help="tokens between span and repeat")
    base.add_argument("--workers", type=int, default=0, help="processes building batches")
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
    from trainer.learn.actor import train_actor
    from trainer.learn.critic import train_critic
    from trainer.learn.orm import train_orm
    from trainer.learn.sft import train_sft

    if args.command == "induction-probe":
        from trainer.bench.probes import induction_probe

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
        from trainer.bench.gpu_bench import bench_actor_update

        return bench_actor_update(config, args.seq_len, args.steps, args.warmup, args.peak_tflops,
                                  shape=args.shape)  # fmt: skip
    if args.command == "gen-bench":
        from trainer.bench.gpu_bench import generation_bench

        try:
            sizes = [int(b) for b in args.batches.split(",") if b.strip()]
        except ValueError:
            raise ConfigError(f"--batches: expected integers like 1,16,64 (got {args.batches!r})") from None  # fmt: skip
        texts = [r["observation"] for r in read_steps(args.data)]
        return generation_bench(config, texts, shape=args.shape, batches=sizes,
                                prompt_len=args.prompt_len, new_tokens=args.new_tokens)  # fmt: skip
    if args.command == "induction-base":
        from trainer.bench.induction_base import train_induction_base

        on_step, close = _progress(None)
        try:
            return train_induction_base(
                config, read_steps(args.data), args.out, minutes=args.minutes, batch=args.batch,
                seq_len=args.seq_len, lr=args.lr or None, probe_every_s=args.probe_every,
                target=args.target, distance=args.distance, trials=args.trials,
                workers=args.workers, on_step=on_step,
            )  # fmt: skip
        finally:
            close()
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
        from trainer.bench.probes import copy_probe

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
        from trainer.learn.replay import build_phase_data

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

                from trainer.learn.pretrain import pretrain_tiny

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
