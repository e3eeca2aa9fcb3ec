"""A tiny Llama trained in seconds to continue a few prompts, served by the project's own
OpenAI-compatible server (`trainer.serve.server`), so the LLM generator and judge are tested end to end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from trainer.learn.tokenizer import EOT, encode_prompt, eot_id, pad_id, train_tokenizer
from trainer.serve.hf import HFGenerator
from trainer.serve.sampling import Decoding
from trainer.serve.server import RunningServer, chat_prompt, create_app


def train_memorizer(pairs: Sequence[tuple[str, str]], steps: int = 80, seed: int = 0):
    """A 2-layer Llama that learns to answer each prompt with its completion (greedy decoding).

    One torch thread: on a loaded 2-core machine more threads make this ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(pairs, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(pairs: Sequence[tuple[str, str]], steps: int, seed: int):
    texts = [p + c + EOT for p, c in pairs]
    tokenizer = train_tokenizer(texts * 4, vocab_size=600)
    torch.manual_seed(seed)
    seqs = [encode_prompt(tokenizer, t) for t in texts]  # BOS first, as HFGenerator does
    length = max(len(s) for s in seqs)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=length + 256,
        eos_token_id=eot_id(tokenizer),
        pad_token_id=pad_id(tokenizer),
    )
    model = LlamaForCausalLM(config)
    ids = torch.full((len(seqs), length), pad_id(tokenizer))
    labels = torch.full((len(seqs), length), -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, : len(s)] = torch.tensor(s)
    mask = (labels != -100).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, tokenizer


def as_chat(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The same pairs with each prompt in the chat layout that `trainer.serve.server` gives a user message."""
    return [(chat_prompt([{"role": "user", "content": p}]), c) for p, c in pairs]


@contextlib.contextmanager
def serving(model, tokenizer, name: str = "tiny") -> Iterator[str]:
    """Serve the model with the project's own OpenAI-compatible server; yields its base URL."""
    generator = HFGenerator(model, tokenizer, Decoding(temperature=0.0), max_seq_len=2048)
    with RunningServer(create_app(generator, name)).start() as server:
        yield server.url
