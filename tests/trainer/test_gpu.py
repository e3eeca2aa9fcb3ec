"""CUDA and DeepSpeed paths; skipped without a GPU (run with `pytest -m gpu`)."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from tests.trainer.helpers import make_steps, tiny_config
from trainer.bench.gpu_bench import bench_actor_update
from trainer.learn.actor import train_actor
from trainer.learn.data import write_steps
from trainer.learn.sft import train_sft
from trainer.serve.hf import HFGenerator
from trainer.serve.sampling import Decoding

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
CUDA = {"engine.device": "cuda", "engine.dtype": "bfloat16"}


def test_sft_and_an_actor_update_run_in_bf16_on_the_gpu(tmp_path, steps, critic_dir):
    config = tiny_config(**CUDA)
    metrics = []
    sft = train_sft(config, steps, tmp_path / "sft", on_step=metrics.append)
    actor = train_actor(
        config,
        steps,
        sft["model_dir"],
        sft["model_dir"],
        critic_dir,
        tmp_path / "actor",
        on_step=metrics.append,
    )
    assert actor["done"] and all(math.isfinite(m["loss"]) for m in metrics)


def test_hf_generation_runs_on_the_gpu(sft_dir):
    gen = HFGenerator.from_dir(
        sft_dir, tiny_config(**CUDA), Decoding(temperature=1.0, max_tokens=8)
    )
    out = gen.sample(["Task Instruction: hello"])
    assert gen.tokenizer.decode(out[0].token_ids) == out[0].text


def test_the_actor_update_benchmark_reports_throughput_and_mfu():
    config = tiny_config(**CUDA, **{"model.hidden_size": 1024, "model.intermediate_size": 2816,
                                    "model.num_layers": 8, "model.num_heads": 16, "model.vocab_size": 32000})  # fmt: skip
    out = bench_actor_update(config, seq_len=4096, steps=3, warmup=1, peak_tflops=989.0)
    assert out["tokens_per_s"] > 0 and 0 < out["mfu"] < 1


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="needs deepspeed")
@pytest.mark.parametrize("gpus", [1, 2])
def test_sft_runs_under_deepspeed_zero3_with_torchrun(tmp_path, gpus):
    if torch.cuda.device_count() < gpus:
        pytest.skip(f"needs {gpus} GPUs")
    data = tmp_path / "steps.jsonl"
    write_steps(data, make_steps(8))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "trainer", "sft", "--config", "demo-cpu", "--data", str(data), "--out", str(tmp_path / "ds"),
           "--set", "engine.backend=deepspeed", "--set", "engine.device=cuda", "--set", "engine.dtype=bfloat16",
           "--set", "engine.offload=false", "--set", "model.pretrain_steps=0"]  # fmt: skip
    path = os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])  # keeps carried wheels
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": path}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"done"')]
    assert done and (tmp_path / "ds" / "final" / "config.json").exists()
    (state,) = (tmp_path / "ds" / "checkpoints").glob("step-*/training_state.pt")
    optimizer = torch.load(state, weights_only=False)["optimizer"]
    assert optimizer["zero_stage"] == 3  # the state of DeepSpeed's ZeRO-3 optimizer, not AdamW's
