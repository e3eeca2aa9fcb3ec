"""The prepared GPU check (scripts/gpu_check.sh, trainer/bench/gpu_check.py): its dry run on the CPU, the
guard around each part, and the benchmark's arithmetic."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.bench.gpu_bench import SHAPES, build_llama, llama_config, mfu, peak_tflops
from trainer.bench.gpu_check import GPU_TEST_FILES, ROOT, Part, last_json, run_part
from trainer.config import preset

CPU_PARTS = ("env", "pytest_gpu", "bench_1b", "induction_base", "generation",
             "bench_8b_checkpointing")  # fmt: skip


@pytest.mark.timeout(1800)
def test_the_dry_run_writes_a_summary_in_which_every_cpu_part_passed(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--dry-run", "--out", str(out), "--work", str(tmp_path / "w"),
         "--data", str(tmp_path / "none.jsonl")],
        cwd=ROOT, capture_output=True, text=True, timeout=1700,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert set(summary) >= {"dry_run", "parts", "headline", "env", "data", "wall_s", "budget_s"}
    assert summary["dry_run"] and summary["data"]["synthetic"]
    parts = summary["parts"]
    assert set(parts) == {*CPU_PARTS, "bench_zero3_offload_1gpu"}
    assert {k: parts[k]["status"] for k in CPU_PARTS} == dict.fromkeys(CPU_PARTS, "passed")
    assert parts["bench_zero3_offload_1gpu"]["status"] == "skipped"
    head = summary["headline"]
    assert head["bench_1b"]["tokens_per_s"] > 0 and head["bench_8b_checkpointing"]["fit"]
    assert set(head["generation_tokens_per_s"]) == {"1", "2", "4"}
    assert head["gpu_tests"]["failed"] == 0 and head["gpu_tests"]["skipped"] >= 1
    assert head["induction_base"]["of"] == 10 and head["induction_base"]["size_bytes"] > 0
    assert {p.name for p in out.iterdir()} == {"summary.json", "check.log", "pytest.xml",
                                               "induction-base.tar.gz"}  # fmt: skip


def test_a_failing_or_hanging_part_is_recorded_and_the_next_part_still_runs(tmp_path):
    log = (tmp_path / "log").open("w")
    env = dict(os.environ)
    failing = Part("f", 30, [sys.executable, "-c", "import sys; print('bad', file=sys.stderr); sys.exit(3)"])  # fmt: skip
    hanging = Part("h", 30, [sys.executable, "-c", "import time; time.sleep(30)"])
    fine = Part("ok", 30, [sys.executable, "-c", 'print(\'{"done": true, "x": 1}\')'])
    got = [run_part(failing, 30, env, log), run_part(hanging, 1, env, log), run_part(fine, 30, env, log)]  # fmt: skip
    assert [g["status"] for g in got] == ["failed", "timeout", "passed"]
    assert got[0]["error"] == "bad" and got[0]["rc"] == 3
    assert got[2]["result"] == {"done": True, "x": 1}
    assert run_part(Part("s", 30, skip="no GPU"), 30, env, log)["status"] == "skipped"


def test_the_result_is_the_last_json_line_that_says_done():
    out = 'noise\n{"done": false, "a": 1}\n{"step": 2}\n{"done": true, "a": 2}\n[1]\n'
    assert last_json(out) == {"done": True, "a": 2}
    assert last_json("nothing here") is None


def test_every_test_file_with_gpu_tests_is_in_the_check():
    marked = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if re.search(r"^\s*@?pytest\.mark\.gpu\b", p.read_text(encoding="utf-8"), re.M)
    }
    assert marked and marked <= set(GPU_TEST_FILES)
    assert all((ROOT / f).is_file() for f in GPU_TEST_FILES)


def test_mfu_is_six_params_per_token_over_the_device_peak():
    assert peak_tflops("NVIDIA H200") == 989.0
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("Tesla T4") is None
    assert mfu(1_000_000_000, 10_000.0, 100.0) == pytest.approx(6e13 / 1e14)


def test_the_named_shapes_have_llama_3_parameter_counts():
    def count(shape: str) -> int:
        cfg = llama_config(shape, preset("demo-cpu"), 4096)
        return sum(p.numel() for p in build_llama(cfg, torch.device("meta"), torch.bfloat16).parameters())  # fmt: skip

    counts = {name: count(name) for name in ("1b", "8b")}
    assert counts == {"1b": 1_235_814_400, "8b": 8_030_261_248}
    assert set(SHAPES) == {"tiny", "1b", "8b"}


def test_the_wheel_script_pins_each_package_once():
    text = (Path(ROOT) / "scripts" / "gpu_wheels.sh").read_text()
    pins = [w.split("==")[0] for w in text.split() if "==" in w and not w.startswith('"')]
    assert len(pins) == len(set(pins)) and "pydantic-core" in pins
