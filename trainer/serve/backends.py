"""The sampling backend that a run's config names: in-process HF, or an OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path

from trainer.config import RunConfig
from trainer.serve.hf import HFGenerator
from trainer.serve.openai_client import OpenAIGenerator
from trainer.serve.sampling import Decoding, GenerationError, Generator


def make_generator(
    config: RunConfig, model_dir: str | Path, decoding: Decoding | None = None
) -> Generator:
    """The backend that `rollout.backend` names ("vllm" expects the caller to hold a running VllmServer)."""
    if config.rollout.backend == "hf":
        return HFGenerator.from_dir(model_dir, config, decoding)
    if not config.rollout.server_url:
        raise GenerationError(
            f"rollout.backend {config.rollout.backend!r} needs rollout.server_url"
        )
    return OpenAIGenerator(config.rollout.server_url, decoding=decoding or Decoding.rollout(config))
