import json
import subprocess
import sys

import pytest

from tests.trainer.helpers import PAGES, make_steps
from trainer.cli import main
from trainer.learn.data import write_steps

TINY = [
    "--set", "model.hidden_size=64", "--set", "model.intermediate_size=128", "--set", "model.num_layers=2",
    "--set", "model.vocab_size=400", "--set", "engine.max_seq_len=256", "--set", "sft.epochs=1",
    "--set", "model.pretrain_steps=2",
]  # fmt: skip


@pytest.fixture
def step_file(tmp_path):
    path = tmp_path / "steps.jsonl"
    write_steps(path, make_steps(6))
    return path


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_python_dash_m_trainer_sft_prints_a_json_line_per_step_and_a_done_line(tmp_path, step_file):
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "sft", "--config", "demo-cpu", "--data", str(step_file),
         "--out", str(tmp_path / "sft"), *TINY],
        capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    pretrain = [line for line in lines[:-1] if line.get("stage") == "pretrain"]
    sft = [line for line in lines[:-1] if line.get("stage") != "pretrain"]
    assert [line["step"] for line in pretrain] == [1, 2]  # copy pretraining of the fresh tiny model
    assert [line["step"] for line in sft] == list(range(1, len(sft) + 1))
    assert all(isinstance(line["loss"], float) for line in lines[:-1])
    assert lines[-1]["done"] is True and (tmp_path / "sft" / "final" / "config.json").exists()
    assert lines[-1]["pretrained"] == str(tmp_path / "sft" / "pretrain" / "final")


def test_critic_actor_orm_and_replay_run_from_the_command_line(
    tmp_path, step_file, sft_dir, capsys
):
    base = ["--config", "demo-cpu", "--data", str(step_file), *TINY]
    assert main(["critic", *base, "--init", sft_dir, "--out", str(tmp_path / "critic")]) == 0
    assert (
        main(
            [
                "actor",
                *base,
                "--init",
                sft_dir,
                "--critic",
                str(tmp_path / "critic"),
                "--out",
                str(tmp_path / "actor"),
            ]
        )
        == 0
    )
    merged = tmp_path / "merged.jsonl"
    assert (
        main(["replay", *base, "--init", sft_dir, "--past", str(step_file), "--out", str(merged)])
        == 0
    )
    orm_file = tmp_path / "orm.jsonl"
    rows = [
        {
            "intent": "Find tea",
            "responses": ["exit()"],
            "last_html": PAGES["shop"],
            "label": i % 2 == 0,
        }
        for i in range(6)
    ]
    orm_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(
            [
                "orm",
                "--config",
                "demo-cpu",
                "--data",
                str(orm_file),
                "--out",
                str(tmp_path / "orm"),
                *TINY,
            ]
        )
        == 0
    )
    done = [line for line in _lines(capsys.readouterr().out) if "done" in line]
    assert len(done) == 4 and all(d["done"] for d in done)
    assert "orm/accuracy" in done[-1] and done[2]["replay/current"] == 12.0
    assert len(merged.read_text().splitlines()) == 12 + done[2]["replay/kept"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "actor.lrr=1"], "did you mean 'actor.lr'"),
        (["--set", "actor.lr=abc"], "actor.lr: expected a float, got 'abc'"),
        (["--config", "no-such-preset"], "no such preset or file"),
        (["--data", "/nonexistent.jsonl"], "cannot read step file"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_error(tmp_path, step_file, capsys, args, message):
    argv = [
        "sft",
        "--config",
        "demo-cpu",
        "--data",
        str(step_file),
        "--out",
        str(tmp_path / "o"),
        *args,
    ]
    for flag in ("--config", "--data"):
        if flag in args:  # the later flag wins in argparse; drop the default one
            i = argv.index(flag)
            del argv[i : i + 2]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_actor_without_a_critic_is_a_clear_error(tmp_path, step_file, sft_dir, capsys):
    assert (
        main(
            [
                "actor",
                "--config",
                "demo-cpu",
                "--data",
                str(step_file),
                "--init",
                sft_dir,
                "--out",
                str(tmp_path / "a"),
                *TINY,
            ]
        )
        == 2
    )
    assert "needs a reference policy and a critic" in capsys.readouterr().err
