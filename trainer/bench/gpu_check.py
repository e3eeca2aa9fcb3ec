"""One prepared GPU check (issue 17): the gpu tests, actor-update MFU at the 1B and 8B shapes, ZeRO-3
with CPU offload on one GPU, the policy sampler's tokens/s and the induction base, each part a
subprocess under its own time limit, inside one overall budget; one JSON summary in --out.

scripts/gpu_check.sh --out DIR [--dry-run] [--data steps.jsonl] [--budget 470]

`--dry-run` runs every part that needs no GPU at tiny sizes on the CPU (CI runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GPU_TEST_FILES = ("tests/trainer/test_gpu.py", "tests/trainer/test_placement.py")
"""Every test file with gpu-marked tests (a test keeps this list complete)."""
DEFAULT_DATA = "var/gpu/steps.jsonl"
"""Where `scripts/gpu_wheels.sh` leaves the world's prompts for the induction base and the sampler."""
DEFAULT_BUDGET_S = 470
"""Whole check, under the 8 minutes one GPU call may spend (the wheel install comes first)."""
DRY_PART_S = 300
"""A dry run's limit for each part: the CPU machines that run it are shared and slow, not short of time."""
DRY_BUDGET_S = 1500
MIN_PART_S = 15
"""A part with less time than this left in the budget is skipped, not started."""
SUMMARY = "summary.json"
BASE_ARCHIVE = "induction-base.tar.gz"


@dataclass
class Part:
    name: str
    budget_s: float
    argv: list[str] = field(default_factory=list)
    skip: str = ""
    """Why the part does not run here ("" = it runs)."""
    kind: str = "json"
    """How its result is read: "json" (the last JSON line with "done") or "junit" (pytest)."""


def env_info() -> dict[str, Any]:
    """What the machine has: versions, the device, its peak, DeepSpeed."""
    import importlib.util

    import torch
    import transformers

    from trainer.bench.gpu_bench import peak_tflops

    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    info = {
        "done": True, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "cuda": cuda, "device": name,
        "gpus": torch.cuda.device_count(), "cpus": os.cpu_count(),
        "peak_bf16_tflops": peak_tflops(name) if cuda else None,
        "deepspeed": None, "django": importlib.util.find_spec("django") is not None,
    }  # fmt: skip
    if cuda:
        info["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    if importlib.util.find_spec("deepspeed") is not None:
        from importlib.metadata import version

        info["deepspeed"] = version("deepspeed")
    return info


def synthetic_records(n: int = 60, seed: int = 0) -> list[dict[str, Any]]:
    """Agent prompts over made-up pages, for when no exported step file is at hand (dry runs)."""
    from trainer.prompts import build_agent_prompt

    rng = random.Random(seed)
    words = ("shoes lamps books tea chairs maps paris boston forum issue order route price review "
             "project label invoice customer search submit home account street city").split()  # fmt: skip
    records = []
    for i in range(n):
        items = " ".join(f'<a id="{k}"> {" ".join(rng.sample(words, 3))} </a>' for k in range(40))
        intent = f"Find the {rng.choice(words)} of {rng.choice(words)} {i}"
        records.append({"observation": build_agent_prompt(intent, [], f"<html> {items} </html>"),
                        "action": 'do(action="Click", element="0")', "task": intent})  # fmt: skip
    return records


def plan(dry: bool, data: str, work: Path, py: str) -> list[Part]:
    """The parts in order of value: each later one is the first to lose its time."""
    tr = [py, "-m", "trainer"]
    gpu = ["--set", "engine.device=cuda", "--set", "engine.dtype=bfloat16"]
    cpu = ["--set", "engine.device=cpu", "--set", "engine.dtype=float32"]
    dev = cpu if dry else gpu
    one = ["--set", "engine.micro_batch=1", "--set", "engine.grad_accum=1"]
    ckpt = ["--set", "engine.gradient_checkpointing=true"]
    pytest = [py, "-m", "pytest", "-m", "gpu", "-p", "no:django", "-p", "no:cacheprovider",
              "-q", "-rA", f"--junitxml={work / 'pytest.xml'}", *GPU_TEST_FILES]  # fmt: skip
    base_out = str(work / "induction-base")
    if dry:
        bench_1b = [*tr, "bench", "--shape", "tiny", "--seq-len", "64", "--steps", "2",
                    "--warmup", "1", *dev, *one]  # fmt: skip
        bench_8b = [*bench_1b, *ckpt]
        generation = [*tr, "gen-bench", "--shape", "tiny", "--data", data, "--batches", "1,2,4",
                      "--prompt-len", "64", "--new-tokens", "8", "--set", "model.vocab_size=400",
                      *dev]  # fmt: skip
        base = [*tr, "induction-base", "--data", data, "--out", base_out, "--minutes", "0.05",
                "--batch", "2", "--seq-len", "128", "--probe-every", "1", "--trials", "2",
                "--workers", "1", *dev]  # fmt: skip
        zero3: list[str] = []
        zero3_skip = "needs CUDA and DeepSpeed (dry run)"
    else:
        bench_1b = [*tr, "bench", "--config", "paper-llama8b", "--shape", "1b", "--seq-len", "4096",
                    "--steps", "5", "--warmup", "1", *dev, "--set", "engine.micro_batch=1",
                    "--set", "engine.grad_accum=4"]  # fmt: skip
        bench_8b = [*tr, "bench", "--config", "paper-llama8b", "--shape", "8b", "--seq-len", "4096",
                    "--steps", "3", "--warmup", "1", *dev, *one, *ckpt]  # fmt: skip
        generation = [*tr, "gen-bench", "--shape", "1b", "--data", data, "--batches", "1,16,64",
                      "--prompt-len", "512", "--new-tokens", "128", *dev]  # fmt: skip
        workers = str(max(1, min(12, (os.cpu_count() or 2) - 2)))
        base = [*tr, "induction-base", "--data", data, "--out", base_out, "--minutes", "1.75",
                "--batch", "128", "--seq-len", "1024", "--probe-every", "15", "--workers", workers,
                "--set", "engine.device=cuda"]  # fmt: skip
        # One GPU: ZeRO-3 with parameters and optimizer state offloaded to the CPU, at the 1B shape
        # (at 8B the fp32 master weights and Adam state alone are 96 GB of host memory).
        zero3 = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m",
                 "trainer", "bench", "--config", "paper-llama8b", "--shape", "1b", "--seq-len",
                 "4096", "--steps", "3", "--warmup", "1", *dev, *one, "--set",
                 "engine.backend=deepspeed", "--set", "engine.zero_stage=3", "--set",
                 "engine.offload=true"]  # fmt: skip
        zero3_skip = ""
    return [
        Part("env", 20, [py, "-m", "trainer.bench.gpu_check", "env"]),
        Part("pytest_gpu", 110, pytest, kind="junit"),
        Part("bench_1b", 45, bench_1b),
        Part("induction_base", 140, base),
        Part("generation", 45, generation),
        Part("bench_8b_checkpointing", 60, bench_8b),
        Part("bench_zero3_offload_1gpu", 80, zero3, skip=zero3_skip),
    ]


def last_json(stdout: str) -> dict[str, Any] | None:
    """The last stdout line that is a JSON object with "done" (the trainer CLI's result line)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and "done" in data:
                return data
    return None


def junit_results(path: Path) -> dict[str, Any]:
    """Counts and each test's outcome from pytest's JUnit XML."""
    tests: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                messages[name] = (child.get("message") or "")[:300]
        tests[name] = outcome
    counts = {k: sum(1 for v in tests.values() if v == k) for k in ("passed", "failed", "skipped", "error")}  # fmt: skip
    return {"done": True, **counts, "tests": tests, "messages": messages}


def run_part(part: Part, timeout_s: float, env: dict[str, str], log) -> dict[str, Any]:
    """Run one part in its own process group; a failure, a crash or a timeout is its result alone."""
    out: dict[str, Any] = {"limit_s": round(timeout_s, 1), "command": " ".join(part.argv)}
    if part.skip:
        return {**out, "status": "skipped", "reason": part.skip}
    t0 = time.perf_counter()
    proc = subprocess.Popen(part.argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun's workers too
        stdout, stderr = proc.communicate()
        timed_out = True
    seconds = round(time.perf_counter() - t0, 1)
    log.write(f"\n===== {part.name} (rc {proc.returncode}, {seconds} s)\n$ {out['command']}\n")
    log.write(f"--- stdout (tail)\n{stdout[-6000:]}\n--- stderr (tail)\n{stderr[-6000:]}\n")
    log.flush()
    out.update(seconds=seconds, rc=proc.returncode)
    result = None
    if part.kind == "junit":
        xml = Path(part.argv[[a.startswith("--junitxml=") for a in part.argv].index(True)][11:])
        result = junit_results(xml) if xml.exists() else None
    else:
        result = last_json(stdout)
    if result is not None:
        out["result"] = result
    if timed_out:
        return {**out, "status": "timeout", "error": f"stopped after {timeout_s:.0f} s"}
    if proc.returncode == 0 and result is not None and result.get("done"):
        return {**out, "status": "passed"}
    error = (result or {}).get("error") or (stderr.strip().splitlines() or ["no output"])[-1]
    return {**out, "status": "failed", "error": str(error)[:500]}


def headline(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures the issue asks for, lifted out of the parts' results (None where not measured)."""

    def result(name: str) -> dict[str, Any]:
        return parts.get(name, {}).get("result") or {}

    def bench(name: str) -> dict[str, Any]:
        r = result(name)
        keys = ("shape", "params", "tokens_per_s", "mfu", "peak_memory_gib", "host_peak_rss_gib", "fit")  # fmt: skip
        return {"status": parts.get(name, {}).get("status"), **{k: r.get(k) for k in keys}}

    tests = result("pytest_gpu").get("tests", {})
    zero3 = [v for k, v in tests.items() if "deepspeed_zero3" in k and "[1]" in k]
    base = result("induction_base")
    shuffled_450 = [
        r["copied"]
        for r in base.get("probe", [])
        if r["mode"] == "shuffled" and r["distance"] == base.get("distance")
    ]
    return {
        "gpu_tests": {
            k: result("pytest_gpu").get(k) for k in ("passed", "failed", "skipped", "error")
        },  # fmt: skip
        "zero3_single_gpu_test": zero3[0] if zero3 else None,
        "bench_1b": bench("bench_1b"),
        "bench_8b_checkpointing": bench("bench_8b_checkpointing"),
        "bench_zero3_offload_1gpu": bench("bench_zero3_offload_1gpu"),
        "generation_tokens_per_s": {
            str(r["batch"]): r["tokens_per_s"] for r in result("generation").get("results", [])
        },
        "induction_base": {
            "reached": base.get("reached"),
            "shuffled_copied_at_distance": shuffled_450[0] if shuffled_450 else None,
            "of": base.get("trials", 0) * 5 if base else None,
            "train_minutes": base.get("train_minutes"),
            "size_bytes": base.get("size_bytes"),
        },
    }


def run_check(out_dir: Path, *, dry: bool, data: str | None, budget_s: float, work: Path) -> dict:
    """Every part in order inside `budget_s`; writes OUT/summary.json (and the log, the JUnit XML
    and the induction base as one archive) and returns the summary."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data_info: dict[str, Any] = {"path": data, "synthetic": False}
    if not data or not Path(data).is_file():
        from trainer.learn.data import write_steps

        data = str(work / "synthetic_steps.jsonl")
        write_steps(data, synthetic_records())
        data_info = {"path": None, "synthetic": True, "asked": data_info["path"]}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}  # fmt: skip
    if dry:
        env["OMP_NUM_THREADS"] = "1"  # tiny models on a shared 2-core machine
    else:
        env["DS_ACCELERATOR"] = "cuda"
    summary: dict[str, Any] = {"dry_run": dry, "budget_s": budget_s, "data": data_info,
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "parts": {}}  # fmt: skip
    with open(out_dir / "check.log", "w", encoding="utf-8") as log:
        for part in plan(dry, data, work, sys.executable):
            left = budget_s - (time.perf_counter() - started)
            if not part.skip and left < MIN_PART_S:
                part.skip = f"no time left in the {budget_s:.0f} s budget"
            limit = DRY_PART_S if dry else part.budget_s
            summary["parts"][part.name] = run_part(part, min(limit, left), env, log)
            print(json.dumps({"part": part.name, "status": summary["parts"][part.name]["status"]}),
                  flush=True)  # fmt: skip
    if (work / "pytest.xml").exists():
        shutil.copy(work / "pytest.xml", out_dir / "pytest.xml")
    final = work / "induction-base" / "final"
    if final.is_dir():
        with tarfile.open(out_dir / BASE_ARCHIVE, "w:gz") as tar:
            tar.add(final, arcname="induction-base")
    summary["env"] = summary["parts"]["env"].get("result") or {}
    summary["headline"] = headline(summary["parts"])
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench.gpu_check", description=__doc__)
    parser.add_argument("what", nargs="?", default="check", choices=("check", "env"))
    parser.add_argument("--out", help="folder for summary.json, check.log, pytest.xml and the base")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--data", default=DEFAULT_DATA, help="JSONL step file (else synthetic)")
    parser.add_argument(
        "--budget", type=float, default=0.0,
        help=f"seconds for all parts (default {DEFAULT_BUDGET_S}; dry run {DRY_BUDGET_S})",
    )  # fmt: skip
    parser.add_argument("--work", default="", help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.what == "env":
        print(json.dumps(env_info()))
        return 0
    if not args.out:
        parser.error("--out is required")
    import tempfile

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="webrl-gpu-check-"))
    data = Path(args.data) if args.data else None
    if data is not None and not data.is_absolute() and not data.exists():
        data = ROOT / data  # the default names a path inside the repository
    budget = args.budget or (DRY_BUDGET_S if args.dry_run else DEFAULT_BUDGET_S)
    summary = run_check(Path(args.out), dry=args.dry_run, data=str(data.resolve()) if data else None,
                        budget_s=budget, work=work)  # fmt: skip
    failed = [k for k, v in summary["parts"].items() if v["status"] in ("failed", "timeout")]
    print(json.dumps({"done": True, "summary": str(Path(args.out) / SUMMARY), "failed": failed,
                      "wall_s": summary["wall_s"]}))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
