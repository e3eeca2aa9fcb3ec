"""The generic training engine: device, dtype, AdamW, accumulation, clipping, atomic checkpoints, resume.

Plain torch on CPU or one GPU; DeepSpeed ZeRO-3 when launched by torchrun/accelerate (one process or more).
The objectives live on top of it: `sft`, `actor`, `critic` and `orm`.
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
from trainer.learn.models import FINAL_DIR

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


def prune_step_checkpoints(out_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` step checkpoints (0 keeps all); returns those deleted."""
    if keep <= 0 or int(os.environ.get("RANK", "0")) != 0:
        return []
    root = Path(out_dir) / CHECKPOINTS_DIR
    steps = sorted(root.glob("step-*")) if root.is_dir() else []
    old = steps[:-keep]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


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
        prune_step_checkpoints(self.out_dir, self.config.engine.keep_step_checkpoints)
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
    tokens = pending = longest = 0
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
        if isinstance(batch, dict) and "attention_mask" in batch:
            longest = max(longest, int(batch["attention_mask"].shape[-1]))
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
        if longest:
            last["longest"] = longest  # the widest (padded) sequence of the step, in tokens
        if on_step is not None:
            on_step(dict(last))
        sums, tokens, pending, longest, t0 = {}, 0, 0, 0, time.perf_counter()
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


def model_saver(tokenizer) -> Callable[[torch.nn.Module, Path], None]:
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


def repeat_epochs(items: Sequence[Any], epochs: int, seed: int) -> list[Any]:
    out: list[Any] = []
    for epoch in range(epochs):
        out.extend(shuffled(items, seed + epoch))
    return out


def count_tokens(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["attention_mask"].sum())
