"""`experiment learning`'s figures beyond the table: paired comparisons of its rows, the ORM's figures
per phase from the judged rollouts, and docs/results.json beside docs/results.md with the same numbers."""

import json
import re
import subprocess

import pytest

from apps.rollouts.models import Trajectory
from apps.runs.experiment import record_results
from apps.runs.learning_report import (
    comparison_pairs,
    comparisons,
    orm_figures,
    seed_suffix,
    task_outcomes,
)
from apps.runs.models import Phase
from tests.web.factories import make_run, make_task, make_trajectory

ZERO = {"reddit": 0.0, "gitlab": 0.0, "shopping_admin": 0.0, "map": 0.0, "shopping": 0.0}


def test_rows_are_compared_with_sft_and_webrl_with_its_baselines_within_one_world():
    labels = [
        "Base (untrained)", "SFT (BC)", "WebRL phase 1", "WebRL phase 2", "SFT continued",
        "Filtered BC", "WebRL with ground-truth reward, phase 2",
        "SFT (BC) · world seed 1", "WebRL phase 2 · world seed 1",
    ]  # fmt: skip
    assert comparison_pairs(labels) == [
        ("Base (untrained)", "SFT (BC)"),
        ("WebRL phase 1", "SFT (BC)"),
        ("WebRL phase 2", "SFT (BC)"),
        ("SFT continued", "SFT (BC)"),
        ("Filtered BC", "SFT (BC)"),
        ("WebRL with ground-truth reward, phase 2", "SFT (BC)"),
        ("WebRL phase 2", "SFT continued"),
        ("WebRL phase 2", "Filtered BC"),
        ("WebRL with ground-truth reward, phase 2", "WebRL phase 2"),
    ]
    assert comparison_pairs(labels, seed=1) == [
        ("WebRL phase 2" + seed_suffix(1), "SFT (BC)" + seed_suffix(1))
    ]
    assert comparison_pairs(["Base (untrained)"]) == []


def a_summary() -> dict:
    """Two policies on 20 tasks: SFT solves tasks 0–3, WebRL tasks 0–9."""
    outcomes = {
        "SFT (BC)": {f"sandbox:test:{i}": i < 4 for i in range(20)},
        "WebRL phase 1": {f"sandbox:test:{i}": i < 10 for i in range(20)},
    }
    rows = {
        "SFT (BC)": {**ZERO, "shopping": 20.0, "avg": 20.0, "n": 20},
        "WebRL phase 1": {**ZERO, "shopping": 50.0, "avg": 50.0, "n": 20},
    }
    orm = {0: {"accuracy": 0.9, "balanced_accuracy": 0.75, "precision": 0.5, "recall": 0.6,
               "specificity": 0.9, "n_success": 5, "n_failure": 35}}  # fmt: skip
    return {
        "minutes": 3.5,
        "tasks": {"train": 40, "test": 20},
        "rows": rows,
        "outcomes": outcomes,
        "comparisons": comparisons(outcomes, comparison_pairs(rows)),
        "orm": orm,
        "orm_accuracy": {0: {"accuracy": 0.9, "scored": 40, "truth_success_rate": 12.5}},
        "filtered_bc_records": 3,
    }


def test_results_json_holds_the_same_rows_comparisons_and_orm_figures_as_results_md(tmp_path):
    results = tmp_path / "results.md"
    summary = a_summary()
    record_results(summary, results, "python manage.py experiment learning --json", "m",
                   json=True, commit="abc1234")  # fmt: skip
    document = json.loads((tmp_path / "results.json").read_text())
    assert list(document) == ["rows", "orm", "comparisons", "minutes", "command", "commit"]
    assert document["rows"] == [
        {"policy": "SFT (BC)", "avg": 20.0, "n": 20, "per_site": {**ZERO, "shopping": 20.0}},
        {"policy": "WebRL phase 1", "avg": 50.0, "n": 20, "per_site": {**ZERO, "shopping": 50.0}},
    ]
    assert document["orm"] == {"0": summary["orm"][0]}
    (comparison,) = document["comparisons"]
    assert {k: comparison[k] for k in ("a", "b", "diff", "n", "a_only", "b_only")} == {
        "a": "WebRL phase 1", "b": "SFT (BC)", "diff": 30.0, "n": 20, "a_only": 6, "b_only": 0,
    }  # fmt: skip
    assert comparison["p"] == pytest.approx(2 / 2**6)  # six discordant tasks, all one way
    lo, hi = comparison["ci95"]
    assert 0 < lo < 30.0 < hi
    assert (document["minutes"], document["commit"]) == (3.5, "abc1234")
    assert document["command"] == "python manage.py experiment learning --json"

    text = results.read_text()
    assert "| SFT (BC) | 0.0 | 0.0 | 0.0 | 0.0 | 20.0 | **20.0** | 20 |" in text
    assert "| WebRL phase 1 | 0.0 | 0.0 | 0.0 | 0.0 | 50.0 | **50.0** | 20 |" in text
    assert (
        f"| WebRL phase 1 | SFT (BC) | 20 | +30.0 | [{lo:+.1f}, {hi:+.1f}] | 6 / 0 | 0.031" in text
    )
    assert "| 0 | 90.0% | 75.0% | 50.0% | 60.0% | 90.0% | 5 | 35 |" in text


def test_without_json_only_results_md_is_written(tmp_path):
    record_results(a_summary(), tmp_path / "results.md", "c", "m", json=False)
    assert (tmp_path / "results.md").exists() and not (tmp_path / "results.json").exists()


def test_the_commit_is_heads_hash_marked_dirty_when_tracked_files_changed(tmp_path):
    from apps.runs.learning_report import git_commit

    assert git_commit(tmp_path) == "unknown"  # not a repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    clean = git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{7,}", clean)
    (tmp_path / "f").write_text("2")
    assert git_commit(tmp_path) == f"{clean}-dirty"


@pytest.mark.django_db
def test_orm_figures_and_outcomes_come_from_the_judged_rollouts(django_user_model):
    owner = django_user_model.objects.create(username="o")
    run = make_run(owner)
    phase = Phase.objects.create(run=run, index=1)
    # (P(YES), score): 2 true successes (one missed), 3 failures (one called a success)
    for p_yes, score in ((0.9, 1.0), (0.2, 1.0), (0.7, 0.0), (0.1, 0.0), (0.3, 0.0)):
        make_trajectory(run, phase=phase, p_yes=p_yes, score=score, purpose="train")
    make_trajectory(run, phase=phase, p_yes=None, score=0.0, purpose="train")  # not judged
    make_trajectory(run, phase=phase, p_yes=0.9, score=None, purpose="train")  # no ground truth
    make_trajectory(run, phase=phase, p_yes=0.9, score=0.0, purpose="train", status="error")
    make_trajectory(run, phase=phase, p_yes=0.9, score=0.0, purpose="eval")
    assert orm_figures(phase, threshold=0.5) == {
        "accuracy": pytest.approx(3 / 5),
        "balanced_accuracy": pytest.approx((1 / 2 + 2 / 3) / 2),
        "precision": pytest.approx(1 / 2),
        "recall": pytest.approx(1 / 2),
        "specificity": pytest.approx(2 / 3),
        "n_success": 2,
        "n_failure": 3,
    }
    solved = make_task(key="sandbox:test:1")
    failed = make_task(key="sandbox:test:2")
    make_trajectory(run, solved, phase=phase, score=1.0, purpose="eval")
    make_trajectory(run, failed, phase=phase, score=0.5, purpose="eval")
    evals = Trajectory.objects.filter(phase=phase, purpose="eval", task__key__startswith="sandbox")
    assert task_outcomes(evals) == {"sandbox:test:1": True, "sandbox:test:2": False}
