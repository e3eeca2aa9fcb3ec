"""Load Hugging Face causal LMs and tokenizers from local directories; build tiny Llamas from a config.

Nothing here downloads: a missing directory is an error that names it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from trainer.config import ModelSection
from trainer.learn.tokenizer import eot_id, pad_id

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


FINAL_DIR = "final"


def model_dir(path: str | Path) -> Path:
    """A training output directory resolves to its final model; a model directory to itself."""
    p = Path(path)
    if not (p / "config.json").exists() and (p / FINAL_DIR / "config.json").exists():
        return p / FINAL_DIR
    return p


class ModelLoadError(RuntimeError):
    """A model or tokenizer directory is missing or unreadable."""


def _check_dir(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ModelLoadError(
            f"{what} directory {str(p)!r} does not exist (only local checkpoints load)"
        )
    return p


def load_tokenizer(path: str | Path):
    """A tokenizer saved with `save_pretrained` in a local directory."""
    p = _check_dir(model_dir(path), "tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a tokenizer from {str(p)!r}: {exc}") from exc


def load_causal_lm(path: str | Path, *, dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """Any Hugging Face causal LM from a local directory (or a training output's final model)."""
    p = _check_dir(model_dir(path), "model")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(p), dtype=dtype, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a causal LM from {str(p)!r}: {exc}") from exc
    return model.to(device)


def tiny_llama_config(section: ModelSection, tokenizer, max_seq_len: int) -> LlamaConfig:
    """The Llama architecture at the sizes in `section`, with the tokenizer's vocabulary."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=section.hidden_size,
        intermediate_size=section.intermediate_size,
        num_hidden_layers=section.num_layers,
        num_attention_heads=section.num_heads,
        num_key_value_heads=section.num_heads,
        max_position_embeddings=max_seq_len,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eot_id(tokenizer),
        pad_token_id=pad_id(tokenizer),
        tie_word_embeddings=False,
    )


def build_tiny_llama(
    section: ModelSection, tokenizer, max_seq_len: int, seed: int = 0
) -> LlamaForCausalLM:
    """A randomly initialised Llama (seeded) sized by the config."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(section, tokenizer, max_seq_len))
    model.generation_config.pad_token_id = pad_id(tokenizer)
    model.generation_config.eos_token_id = eot_id(tokenizer)
    return model


def save_model(model, tokenizer, out_dir: str | Path) -> None:
    """`save_pretrained` for both, so the directory loads with `load_causal_lm`/`load_tokenizer`."""
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
