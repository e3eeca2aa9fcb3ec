"""Byte-level BPE tokenizers trained locally on the world's texts, with Llama-3's special strings.

`YES` and `NO` are single tokens so the ORM can read P(YES) from one logit each (§4.1).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from trainer.prompts import BEGIN_OF_TEXT, EOT

END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
PAD = "<|finetune_right_pad_id|>"
SPECIAL_TOKENS = [BEGIN_OF_TEXT, END_OF_TEXT, EOT, START_HEADER, END_HEADER, PAD]
ANSWER_TOKENS = ["YES", "NO"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; every string round-trips exactly through encode/decode."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    # single_word: "YES" is one token when it stands alone, yet "NOTE" is not split into "NO"+"TE".
    tok.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in ANSWER_TOKENS])
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BEGIN_OF_TEXT,
        eos_token=EOT,
        pad_token=PAD,
        padding_side="right",
    )


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of `text` exactly as written (special strings map to their ids, no BOS added)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Ids of a prompt with BOS in front, as the SFT template and vLLM do (§1.6); never doubled."""
    ids = encode_text(tokenizer, text)
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids


def eot_id(tokenizer) -> int:
    """Id of `<|eot_id|>`, the end of every action (§1.4)."""
    (tid,) = encode_text(tokenizer, EOT)
    return tid


def pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return eot_id(tokenizer)
