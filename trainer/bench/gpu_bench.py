"""Benchmarks for a GPU: actor-update tokens/s and MFU at Llama shapes, and the HF policy sampler's
tokens/s by batch size. Commands that print numbers (`python -m trainer bench|gen-bench`), no asserts.

python -m trainer bench --config paper-llama8b --shape 1b --seq-len 4096 --set engine.grad_accum=1
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from trainer.config import ConfigError, RunConfig

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
             "tie_word_embeddings": False},
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "tie_word_embeddings": False},
}  # fmt: skip
"""Llama shapes by name: "1b" is Llama-3.2-1B's (1.24B parameters), "8b" Llama-3.1-8B's (8.03B),
"tiny" a dry run's. "config" (not here) means the config's own `model` section."""

PEAK_BF16_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0))
"""Dense bf16 peak by device-name fragment, first match wins (vendor datasheets, SXM parts)."""


def peak_tflops(device_name: str) -> float | None:
    """The device's dense bf16 peak in TFLOP/s, or None for a device not in the table (and CPUs)."""
    for fragment, tflops in PEAK_BF16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops
    return None


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def mfu(params: int, tokens_per_s: float, peak: float) -> float:
    """Model FLOPs utilisation: 6·N FLOPs a trained token (forward 2N, backward 4N) over the peak."""
    return 6 * params * tokens_per_s / (peak * 1e12)


def llama_config(shape: str, config: RunConfig, max_positions: int) -> LlamaConfig:
    """The Llama of `shape` (a SHAPES name, or "config" for the config's model section)."""
    if shape == "config":
        m = config.model
        dims = {"hidden_size": m.hidden_size, "intermediate_size": m.intermediate_size,
                "num_hidden_layers": m.num_layers, "num_attention_heads": m.num_heads,
                "num_key_value_heads": m.num_heads, "vocab_size": m.vocab_size,
                "tie_word_embeddings": False}  # fmt: skip
    elif shape in SHAPES:
        dims = SHAPES[shape]
    else:
        raise ConfigError(f"--shape: one of config, {', '.join(SHAPES)} (got {shape!r})")
    return LlamaConfig(**dims, max_position_embeddings=max(max_positions, 16))


def build_llama(cfg: LlamaConfig, device: torch.device, dtype: torch.dtype) -> LlamaForCausalLM:
    """A randomly initialised Llama made directly on `device` in `dtype` (an 8B model never passes
    through host memory in fp32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)


def memory_figures(device: torch.device) -> dict[str, float]:
    """Peak GPU memory allocated (GiB) and the process's peak resident host memory (GiB)."""
    out = {
        "host_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        out["memory_total_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)  # fmt: skip
    return out


def bench_actor_update(
    config: RunConfig,
    seq_len: int,
    steps: int,
    warmup: int,
    peak_tflops: float = 0.0,
    shape: str = "config",
) -> dict[str, Any]:
    """Optimizer steps of the released actor loss on random tokens: tokens/s, MFU, peak memory.

    `peak_tflops` 0 looks the device up in PEAK_BF16_TFLOPS. Out of GPU memory is a result
    (`fit` false), not an error."""
    from trainer.learn.engine import Engine, resolve_device, resolve_dtype
    from trainer.learn.losses import sequence_logprobs, token_logprobs, webrl_released

    device = resolve_device(config.engine.device)
    dtype = resolve_dtype(config.engine.dtype, device)
    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cfg = llama_config(shape, config, seq_len)
    head = {"shape": shape, "seq_len": seq_len, "device": device_name(device), "dtype": str(dtype),
            "gradient_checkpointing": config.engine.gradient_checkpointing,
            "backend": config.engine.backend}  # fmt: skip
    try:
        model = build_llama(cfg, device, dtype)
        params = sum(p.numel() for p in model.parameters())
        engine = Engine(config, model, lr=1e-6, total_steps=steps + warmup,
                        save_model=lambda *_: None, out_dir=".")  # fmt: skip
        B = config.engine.micro_batch
        ids = torch.randint(0, cfg.vocab_size, (B, seq_len), device=engine.device)  # [B, T]
        action = torch.zeros_like(ids)
        action[:, -seq_len // 4 :] = 1  # the last quarter are action tokens
        attention = torch.ones_like(ids)
        times = []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            for _ in range(config.engine.grad_accum):
                logits = engine.model(input_ids=ids, attention_mask=attention).logits  # [B, T, V]
                logprobs, n = sequence_logprobs(token_logprobs(logits, ids, action), action)  # [B]
                del logits
                loss, _ = webrl_released(
                    logprobs, logprobs.detach() - 0.1, torch.ones(B, device=engine.device), n
                )
                engine.backward(loss)
            engine.maybe_step()
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    except torch.cuda.OutOfMemoryError as exc:
        return {"done": False, "fit": False, **head, "error": f"out of GPU memory: {exc}"[:500],
                **memory_figures(device)}  # fmt: skip
    tokens = B * seq_len * config.engine.grad_accum
    tps = tokens * len(times) / sum(times)
    out = {"done": True, "fit": True, **head, "params": params, "tokens_per_step": tokens,
           "steps": len(times), "step_s": sum(times) / len(times), "tokens_per_s": tps,
           **memory_figures(device)}  # fmt: skip
    peak = peak_tflops or peak_tflops_of(device)
    if peak:
        out["peak_tflops"] = peak
        out["mfu"] = mfu(params, tps, peak)
    return out


def peak_tflops_of(device: torch.device) -> float | None:
    return peak_tflops(device_name(device)) if device.type == "cuda" else None


def generation_bench(
    config: RunConfig,
    texts: Sequence[str],
    *,
    shape: str = "config",
    batches: Sequence[int] = (1, 16, 64),
    prompt_len: int = 512,
    new_tokens: int = 128,
) -> dict[str, Any]:
    """The policy sampler (HFGenerator: rollout temperature and top-p, log-probs kept) on a random
    Llama of `shape`: sampled tokens/s at each batch size. Prompts are tokenized with a BPE of
    `model.vocab_size` trained on `texts`; the model keeps the shape's larger vocabulary (sampled ids
    past the tokenizer's decode to nothing), so its output layer costs what the shape's does."""
    from trainer.learn.engine import resolve_device, resolve_dtype
    from trainer.learn.tokenizer import eot_id, pad_id, train_tokenizer
    from trainer.serve.hf import HFGenerator
    from trainer.serve.sampling import Decoding

    device = resolve_device(config.engine.device)
    dtype = resolve_dtype(config.engine.dtype, device)
    tokenizer = train_tokenizer(texts, config.model.vocab_size)
    cfg = llama_config(shape, config, prompt_len + new_tokens)
    cfg.vocab_size = max(cfg.vocab_size, len(tokenizer))
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = (
        tokenizer.bos_token_id, eot_id(tokenizer), pad_id(tokenizer),
    )  # fmt: skip
    torch.manual_seed(config.seed)
    model = build_llama(cfg, device, dtype)
    decoding = Decoding(config.rollout.temperature, config.rollout.top_p, new_tokens)
    prompts = long_prompts(texts, max(batches))
    rows = []
    for b in [1, *batches]:  # the first batch of 1 warms up (CUDA context, kernels)
        gen = HFGenerator(model, tokenizer, decoding, batch_size=b,
                          max_seq_len=prompt_len + new_tokens, seed=config.seed)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        samples = gen.sample(prompts[:b])
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        sampled = sum(len(s.token_ids) for s in samples)
        rows.append({"batch": b, "seconds": round(seconds, 3), "sampled_tokens": sampled,
                     "tokens_per_s": round(sampled / seconds, 1)})  # fmt: skip
    return {"done": True, "shape": shape, "device": device_name(device), "dtype": str(dtype),
            "params": sum(p.numel() for p in model.parameters()), "vocab": cfg.vocab_size,
            "tokenizer_vocab": len(tokenizer),
            "prompt_len": prompt_len, "new_tokens": new_tokens, "results": rows[1:],
            **memory_figures(device)}  # fmt: skip


def long_prompts(texts: Sequence[str], n: int) -> list[str]:
    """`n` prompts, each several texts joined, so that left truncation fills the prompt budget."""
    usable = [t for t in texts if t] or ["Task Instruction: nothing"]
    return ["\n".join(usable[(i + k) % len(usable)] for k in range(4)) for i in range(n)]
