"""docs/results.md shows the current result first; `experiment learning` records each measurement in a
dated file under docs/experiments/ and makes it the current result without touching the history."""

import re
import shutil
from datetime import date

from apps.runs.experiment import learning_section, write_results
from tests.conftest import ROOT

DOCS = ROOT / "docs"


def a_summary(avg: float = 0.0) -> dict:
    """A learning summary whose SFT row scores `avg` on Reddit (and on average), WebRL 0."""
    zero = {"reddit": 0.0, "gitlab": 0.0, "shopping_admin": 0.0, "map": 0.0, "shopping": 0.0}
    rows = {
        "SFT (BC)": {**zero, "reddit": avg, "avg": avg, "n": 165},
        "WebRL phase 1": {**zero, "avg": 0.0, "n": 165},
    }
    return {
        "minutes": 12.5,
        "tasks": {"train": 2215, "test": 165},
        "rows": rows,
        "orm_accuracy": {0: {"accuracy": 0.9, "scored": 40, "truth_success_rate": 2.5}},
        "filtered_bc_records": 7,
    }


def sections(text: str) -> dict[str, str]:
    """`## name` -> that section's text, heading included."""
    parts = re.split(r"(?m)^(?=## )", text)
    return {p.splitlines()[0][3:]: p for p in parts if p.startswith("## ")}


def links(text: str) -> list[str]:
    return re.findall(r"\]\((experiments/[^)#]+)\)", text)


def test_every_experiment_file_is_linked_from_results_md_and_every_link_resolves():
    text = (DOCS / "results.md").read_text()
    assert set(links(text)) == {
        f"experiments/{p.name}" for p in (DOCS / "experiments").glob("*.md")
    }
    assert all((DOCS / link).is_file() for link in links(text))
    assert list(sections(text))[0] == "Learning"  # the current result comes before the history
    assert list(sections(text))[-1] == "History"


def test_a_measurement_becomes_the_current_result_and_leaves_every_record_and_section(tmp_path):
    shutil.copy(DOCS / "results.md", tmp_path / "results.md")
    shutil.copytree(DOCS / "experiments", tmp_path / "experiments")
    before = (tmp_path / "results.md").read_text()
    records_before = {p.name: p.read_text() for p in (tmp_path / "experiments").iterdir()}

    section = learning_section(
        a_summary(3.0), "python manage.py experiment learning", "2 CPU cores"
    )
    record = write_results(tmp_path / "results.md", section, when=date(2026, 12, 4))

    after = (tmp_path / "results.md").read_text()
    assert record == tmp_path / "experiments" / "2026-12-04-learning.md"
    assert {p.name: p.read_text() for p in (tmp_path / "experiments").iterdir() if p != record} == (
        records_before
    )
    old, new = sections(before), sections(after)
    assert list(new) == list(old)
    for name in old.keys() - {"Learning", "History"}:
        assert new[name] == old[name]
    assert "| SFT (BC) | 3.0 |" in new["Learning"]
    assert "Measured 2026-12-04 ([record](experiments/2026-12-04-learning.md))" in new["Learning"]
    assert "No policy has solved" not in new["Learning"]  # the former current result is replaced
    assert links(new["History"]) == links(old["History"]) + ["experiments/2026-12-04-learning.md"]
    text = record.read_text()
    assert text.startswith("# 2026-12-04: `experiment learning`\n")
    assert "Command: `python manage.py experiment learning`" in text
    assert "| SFT (BC) | 3.0 |" in text and "| WebRL phase 1 | 0.0 |" in text


def test_a_second_measurement_on_the_same_day_gets_its_own_record(tmp_path):
    results = tmp_path / "results.md"
    first = write_results(
        results, learning_section(a_summary(1.0), "first", "m"), date(2026, 12, 4)
    )
    second = write_results(
        results, learning_section(a_summary(2.0), "second", "m"), date(2026, 12, 4)
    )
    assert (first.name, second.name) == ("2026-12-04-learning.md", "2026-12-04-learning-2.md")
    assert "Command: `first`" in first.read_text()
    text = results.read_text()
    assert text.startswith("# Results\n")
    assert "Command: `second`" in sections(text)["Learning"]
    assert "Command: `first`" not in text
    assert links(sections(text)["History"]) == [
        "experiments/2026-12-04-learning.md",
        "experiments/2026-12-04-learning-2.md",
    ]
