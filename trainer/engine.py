"""The training engine (device, dtype, AdamW, accumulation, clipping, atomic checkpoints, resume) and its loop.

Plain torch on CPU or one GPU; DeepSpeed ZeRO-3 when launched by torchrun/accelerate (one process or more).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.config import RunConfig
from trainer.models import FINAL_DIR

OnStep = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]
STATE_FILE = "training_state.pt"
CONFIG_FILE = "run_config.json"
CHECKPOINTS_DIR = "checkpoints"


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, an unusable checkpoint)."""


def resolve_device(name: str, cuda_available: bool | None = None) -> torch.device:
    """engine.device as a torch device; `cuda_available` defaults to asking torch."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda_available else "cpu")
    if name == "cuda" and not cuda_available:
        raise TrainingError(
            "engine.device is 'cuda' but no CUDA device is available; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def use_deepspeed(config: RunConfig) -> bool:
    """DeepSpeed only under a launcher (torchrun, accelerate and deepspeed set WORLD_SIZE; one process
    is valid), and only when it is installed."""
    if config.engine.backend != "deepspeed" or "WORLD_SIZE" not in os.environ:
        return False
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise TrainingError(
            "engine.backend is 'deepspeed' but deepspeed is not installed"
        ) from None
    return True


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    root = Path(out_dir) / CHECKPOINTS_DIR
    found = sorted(root.glob("step-*")) if root.is_dir() else []
    found = [p for p in found if (p / STATE_FILE).exists()]
    return found[-1] if found else None


def lr_lambda(schedule: str, warmup_ratio: float, total_steps: int) -> Callable[[int], float]:
    """Linear warmup then cosine to 0, or constant (§1.6)."""
    warmup = int(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


class Engine:
    """Owns the model's optimizer state and checkpoints; `backward` then `step` once per micro-batch."""

    def __init__(
        self,
        config: RunConfig,
        model: torch.nn.Module,
        *,
        lr: float,
        total_steps: int,
        save_model: Callable[[torch.nn.Module, Path], None],
        out_dir: str | Path,
        schedule: str = "constant",
        warmup_ratio: float = 0.0,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.save_model = save_model
        self.grad_accum = config.engine.grad_accum
        self.total_steps = total_steps
        self.device = resolve_device(config.engine.device)
        self.dtype = resolve_dtype(config.engine.dtype, self.device)
        self.step = 0
        self.micro = 0
        model.to(device=self.device, dtype=self.dtype)
        if config.engine.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable()
        params = [p for p in model.parameters() if p.requires_grad]
        self.deepspeed = use_deepspeed(config)
        if self.deepspeed and config.engine.offload:  # ZeRO-Offload steps on the CPU, with its Adam
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            optimizer = DeepSpeedCPUAdam(params, lr=lr, weight_decay=config.engine.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.engine.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(schedule, warmup_ratio, total_steps)
        )
        if self.deepspeed:
            self.model, self.optimizer = _deepspeed_wrap(config, model, optimizer)
        else:
            self.model, self.optimizer = model, optimizer
        self.model.train()

    @property
    def module(self) -> torch.nn.Module:
        return getattr(self.model, "module", self.model)

    def backward(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss {loss.item()} at optimizer step {self.step + 1}")
        if self.deepspeed:
            self.model.backward(loss)
            self.model.step()  # DeepSpeed steps the optimizer itself at accumulation boundaries
        else:
            (loss / self.grad_accum).backward()
        self.micro += 1

    def maybe_step(self, force: bool = False) -> float | None:
        """Step the optimizer after grad_accum micro-batches (or when forced); returns the grad norm."""
        if self.micro == 0 or (self.micro % self.grad_accum != 0 and not force):
            return None
        if self.deepspeed:
            norm = float(self.model.get_global_grad_norm() or 0.0)
        else:
            params = [p for p in self.module.parameters() if p.grad is not None]
            norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.engine.max_grad_norm))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        self.micro = 0
        return norm

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def save_checkpoint(self) -> Path:
        """`checkpoints/step-NNNNNN`: model (HF format), training_state.pt, run_config.json; atomic."""
        target = self.out_dir / CHECKPOINTS_DIR / f"step-{self.step:06d}"
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        self._write_atomic(target, state)
        return target

    def save_final(self) -> Path:
        target = self.out_dir / FINAL_DIR
        self._write_atomic(target, None)
        return target

    def _write_atomic(self, target: Path, state: dict | None) -> None:
        if self.deepspeed and int(os.environ.get("RANK", "0")) != 0:
            self.save_model(self.model, target)  # every rank joins the ZeRO-3 gather
            return
        tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.save_model(self.model, tmp)
        if state is not None:
            torch.save(state, tmp / STATE_FILE)
        (tmp / CONFIG_FILE).write_text(self.config.to_json())
        if target.exists():
            old = target.parent / f".old-{target.name}-{os.getpid()}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)

    def load_state(self, checkpoint: Path) -> None:
        """Optimizer, scheduler, step and RNG states of a checkpoint (model weights are loaded by the caller)."""
        try:
            state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError) as exc:
            raise TrainingError(f"cannot read {checkpoint / STATE_FILE}: {exc}") from exc
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def _deepspeed_wrap(config: RunConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    import deepspeed

    offload = {"device": "cpu", "pin_memory": True} if config.engine.offload else {"device": "none"}
    ds_config = {
        "train_micro_batch_size_per_gpu": config.engine.micro_batch,
        "gradient_accumulation_steps": config.engine.grad_accum,
        "gradient_clipping": config.engine.max_grad_norm,
        "bf16": {"enabled": config.engine.dtype in ("auto", "bfloat16")},
        "zero_optimization": {
            "stage": config.engine.zero_stage,
            "offload_param": offload,
            "offload_optimizer": offload,
            "stage3_gather_16bit_weights_on_model_save": True,
        },
    }
    engine, ds_optimizer, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, config=ds_config
    )
    return engine, ds_optimizer


def shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    return [items[i] for i in order]


def fit(
    engine: Engine,
    micro_batches: Sequence[Any],
    loss_fn: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    count_tokens: Callable[[Any], int] = lambda b: 0,
) -> dict[str, Any]:
    """Run the remaining micro-batches (skipping those a resumed engine already consumed); save at the end.

    Checkpoints every `engine.checkpoint_every` optimizer steps and after the final step.
    """
    every = engine.config.engine.checkpoint_every
    rank = int(os.environ.get("RANK", "0"))
    if engine.deepspeed:  # data parallel: each rank takes every world-th micro-batch, equal counts
        world = int(os.environ["WORLD_SIZE"])
        usable = len(micro_batches) // world * world
        micro_batches = list(micro_batches[:usable])[rank::world]
    if rank != 0:
        on_step = None
    start = engine.step * engine.grad_accum
    stopped = False
    sums: dict[str, float] = {}
    tokens = pending = 0
    t0 = time.perf_counter()
    last: dict[str, Any] = {}
    for index in range(start, len(micro_batches)):
        if engine.micro == 0 and should_stop is not None and should_stop():
            stopped = True
            break
        batch = micro_batches[index]
        loss, metrics = loss_fn(batch)
        engine.backward(loss)
        tokens += count_tokens(batch)
        pending += 1
        for key, value in {"loss": loss.item(), **metrics}.items():
            sums[key] = sums.get(key, 0.0) + value
        is_last = index == len(micro_batches) - 1
        norm = engine.maybe_step(force=is_last)
        if norm is None:
            continue
        elapsed = time.perf_counter() - t0
        last = {k: v / pending for k, v in sums.items()}
        last.update(
            step=engine.step,
            total_steps=engine.total_steps,
            lr=engine.lr,
            grad_norm=norm,
            tokens_per_s=tokens / max(elapsed, 1e-9),
        )
        if on_step is not None:
            on_step(dict(last))
        sums, tokens, pending, t0 = {}, 0, 0, time.perf_counter()
        if engine.step % every == 0 and not is_last:
            engine.save_checkpoint()
    checkpoint = engine.save_checkpoint()
    final = engine.save_final() if not stopped else None
    return {
        "done": not stopped,
        "stopped": stopped,
        "steps": engine.step,
        "loss": last.get("loss"),
        "checkpoint": str(checkpoint),
        "model_dir": str(final) if final else None,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def _texts_for_tokenizer(records: Sequence[dict[str, Any]]) -> list[str]:
    return [
        t
        for r in records
        for t in (r.get("observation", ""), r.get("action", ""), r.get("task", ""))
        if t
    ]


def policy_loader(config: RunConfig, init: str | Path | None, records: Sequence[dict[str, Any]]):
    """(model, tokenizer): a local checkpoint (`init`, `model.policy`, `model.init`), or a tiny Llama
    with a BPE trained on the records' texts."""
    from trainer.models import build_tiny_llama, load_causal_lm, load_tokenizer
    from trainer.tokenizer import train_tokenizer

    if init:
        return load_causal_lm(init), load_tokenizer(config.model.tokenizer or init)
    if config.model.policy:
        return load_causal_lm(config.model.policy), load_tokenizer(
            config.model.tokenizer or config.model.policy
        )
    if config.model.init:  # a base built for the tiny preset (trainer/induction_base.py)
        return load_causal_lm(config.model.init), load_tokenizer(
            config.model.tokenizer or config.model.init
        )
    if config.model.tokenizer:
        tokenizer = load_tokenizer(config.model.tokenizer)
    else:
        tokenizer = train_tokenizer(_texts_for_tokenizer(records), config.model.vocab_size)
    return build_tiny_llama(
        config.model, tokenizer, config.engine.max_seq_len, config.seed
    ), tokenizer


def _model_saver(tokenizer) -> Callable[[torch.nn.Module, Path], None]:
    def save(model: torch.nn.Module, out: Path) -> None:
        if hasattr(
            model, "zero_optimization_stage"
        ):  # a DeepSpeed engine: gather the ZeRO-3 shards
            state = (
                model._zero3_consolidated_16bit_state_dict()
                if model.zero_optimization_stage() == 3
                else None
            )
            if int(os.environ.get("RANK", "0")) != 0:
                return
            model.module.save_pretrained(str(out), state_dict=state)
        else:
            model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))

    return save


def _epochs(items: Sequence[Any], epochs: int, seed: int) -> list[Any]:
    out: list[Any] = []
    for epoch in range(epochs):
        out.extend(shuffled(items, seed + epoch))
    return out


def _count_tokens(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["attention_mask"].sum())


def train_sft(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    init: str | Path | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
    lr: float | None = None,
    epochs: int | None = None,
    schedule: str | None = None,
    warmup_ratio: float | None = None,
) -> dict[str, Any]:
    """Token-mean NLL of prompt → action + EOT over step records (§1.2 SFT); the ORM reuses it."""
    from trainer.data import action_ids_for, batches, collate, tokenize_example
    from trainer.losses import sft_loss, token_logprobs
    from trainer.tokenizer import pad_id

    checkpoint = latest_checkpoint(out_dir) if resume else None
    model, tokenizer = policy_loader(config, checkpoint or init, records)
    examples = [
        tokenize_example(
            tokenizer, r["observation"], action_ids_for(tokenizer, r), config.engine.max_seq_len
        )
        for r in records
    ]
    pad = pad_id(tokenizer)
    micro = [
        collate(b, pad)
        for b in batches(
            _epochs(examples, epochs or config.sft.epochs, config.seed), config.engine.micro_batch
        )
    ]
    engine = Engine(
        config,
        model,
        lr=lr if lr is not None else config.sft.lr,
        total_steps=-(-len(micro) // config.engine.grad_accum),
        save_model=_model_saver(tokenizer),
        out_dir=out_dir,
        schedule=schedule or config.sft.schedule,
        warmup_ratio=config.sft.warmup_ratio if warmup_ratio is None else warmup_ratio,
    )
    if checkpoint is not None:
        engine.load_state(checkpoint)

    def loss_fn(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = {k: v.to(engine.device) for k, v in batch.items()}
        logits = engine.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
        return sft_loss(
            token_logprobs(logits, batch["input_ids"], batch["action_mask"]), batch["action_mask"]
        )

    return fit(
        engine, micro, loss_fn, on_step=on_step, should_stop=should_stop, count_tokens=_count_tokens
    )


@torch.no_grad()
def score_actions(
    model, batches_: Sequence[dict[str, torch.Tensor]], device: torch.device
) -> list[tuple[float, int]]:
    """(Σ action-token log-prob, action-token count) per example, batch by batch, no gradient."""
    from trainer.losses import sequence_logprobs, token_logprobs

    was_training = model.training
    model.eval()
    out: list[tuple[float, int]] = []
    for batch in batches_:
        ids, attn, act = (
            batch[k].to(device) for k in ("input_ids", "attention_mask", "action_mask")
        )
        logits = model(input_ids=ids, attention_mask=attn).logits  # [B, T, V]
        lp, n = sequence_logprobs(token_logprobs(logits, ids, act), act)  # [B], [B]
        out.extend(zip(lp.tolist(), [int(x) for x in n.tolist()], strict=True))
    model.train(was_training)
    return out


def actor_advantages(config: RunConfig, records: Sequence[dict[str, Any]], critic) -> list[float]:
    """A per step from a frozen critic: the released code's binarised A (§2.2) or the paper's eq. 9 (§2.1)."""
    from trainer.data import mc_returns
    from trainer.losses import paper_advantages, released_advantages

    a = config.actor
    v = torch.tensor(critic.min_values([r["observation"] for r in records]))  # [N]
    v_next = torch.tensor(
        critic.min_values([r.get("next_observation") or r["observation"] for r in records])
    )
    reward = torch.tensor([float(r.get("reward", 0.0)) for r in records])  # [N]
    if a.objective == "webrl_paper":
        done = torch.tensor([bool(r.get("done", False)) for r in records])  # [N]
        final = torch.tensor(
            [float(r.get("trajectory_reward", r.get("reward", 0.0))) for r in records]
        )
        step_reward = torch.where(
            done, final, torch.zeros_like(final)
        )  # outcome only on the last step
        return paper_advantages(v, v_next, step_reward, final, done, a.lam).tolist()
    mc = [r.get("mc_return") for r in records]
    if any(
        m is None for m in mc
    ):  # a lone step without a return: the outcome discounted over one step
        mc = [
            m if m is not None else mc_returns([float(r.get("reward", 0.0))], a.gamma)[0]
            for m, r in zip(mc, records, strict=True)
        ]
    adv = released_advantages(
        v,
        v_next,
        reward,
        torch.tensor(mc, dtype=torch.float32),
        offset=a.advantage_offset,
        clip=a.advantage_clip,
        positive=a.positive_advantage,
        negative=a.negative_advantage,
    )
    return adv.tolist()


def train_actor(
    config: RunConfig,
    records: Sequence[dict[str, Any]],
    actor_dir: str | Path,
    ref_dir: str | Path | None,
    critic_dir: str | Path | None,
    out_dir: str | Path,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """One actor update (§1.3.7): advantages from the frozen critic, KL-anchored to π_ref, objective by name."""
    from trainer.data import action_ids_for, batches, collate, tokenize_example
    from trainer.losses import ACTOR_OBJECTIVES, sequence_logprobs, sft_loss, token_logprobs
    from trainer.models import load_causal_lm, load_tokenizer
    from trainer.placement import load_frozen_critic
    from trainer.tokenizer import pad_id

    objective = config.actor.objective
    if objective == "sft":
        return train_sft(
            config, records, out_dir, init=actor_dir, on_step=on_step, should_stop=should_stop,
            resume=resume, lr=config.actor.lr, epochs=config.actor.epochs, schedule="constant", warmup_ratio=0.0,
        )  # fmt: skip
    if ref_dir is None or critic_dir is None:
        raise TrainingError(f"actor.objective {objective!r} needs a reference policy and a critic")
    tokenizer = load_tokenizer(actor_dir)
    pad = pad_id(tokenizer)
    L = config.engine.max_seq_len
    examples = [
        tokenize_example(tokenizer, r["observation"], action_ids_for(tokenizer, r), L)
        for r in records
    ]
    critic = load_frozen_critic(config, critic_dir)
    advantages = actor_advantages(config, records, critic)
    del critic
    device = resolve_device(config.engine.device)
    ref = load_causal_lm(
        ref_dir, dtype=resolve_dtype(config.engine.dtype, device), device=str(device)
    )
    ref_scores = score_actions(
        ref, [collate(b, pad) for b in batches(examples, config.engine.micro_batch)], device
    )
    del ref
    rows = list(zip(examples, advantages, [s[0] for s in ref_scores], strict=True))
    micro = batches(_epochs(rows, config.actor.epochs, config.seed), config.engine.micro_batch)
    checkpoint = latest_checkpoint(out_dir) if resume else None
    engine = Engine(
        config,
        load_causal_lm(checkpoint or actor_dir),
        lr=config.actor.lr,
        total_steps=-(-len(micro) // config.engine.grad_accum),
        save_model=_model_saver(tokenizer),
        out_dir=out_dir,
    )
    if checkpoint is not None:
        engine.load_state(checkpoint)
    a = config.actor
    loss_args: dict[str, Any] = (
        {"beta": a.beta}
        if objective == "webrl_paper"
        else {
            "beta_base": a.beta_base,
            "beta_high": a.beta_high,
            "ref_conf_positive": a.ref_conf_positive,
            "ref_conf_negative": a.ref_conf_negative,
            "huber_delta": a.huber_delta,
        }
    )

    def loss_fn(chunk: Sequence[tuple[Any, float, float]]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = {k: v.to(engine.device) for k, v in collate([c[0] for c in chunk], pad).items()}
        logits = engine.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
        token_lp = token_logprobs(logits, batch["input_ids"], batch["action_mask"])  # [B, T-1]
        logprobs, n_tokens = sequence_logprobs(token_lp, batch["action_mask"])  # [B], [B]
        adv = torch.tensor([c[1] for c in chunk], device=engine.device)  # [B]
        ref_lp = torch.tensor([c[2] for c in chunk], device=engine.device)  # [B]
        loss, metrics = ACTOR_OBJECTIVES[objective](logprobs, ref_lp, adv, n_tokens, **loss_args)
        metrics["loss/nll"] = sft_loss(token_lp.detach(), batch["action_mask"])[0].item()
        return loss, metrics

    def count(chunk: Sequence[tuple[Any, float, float]]) -> int:
        return sum(len(c[0].input_ids) for c in chunk)

    return fit(engine, micro, loss_fn, on_step=on_step, should_stop=should_stop, count_tokens=count)
