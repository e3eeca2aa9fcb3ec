"""`manage.py policy_divergence`: a run's evaluation episodes against the oracle's, from the database."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.rollouts.models import Step, Trajectory
from tests.web.factories import make_phase, make_run, make_task

pytestmark = pytest.mark.django_db

SEARCH = '# Element: Search\ndo(action="Search", argument="Maple Row Dutch Oven", element="5")'
WAIT = '# Note: waiting for the page to update\ndo(action="Hover", element="0")'
OPEN = '# Element: Maple Row Dutch Oven\ndo(action="Click", element="31")'
ANSWER = 'exit(message="$23.99")'


def _episode(run, phase, task, purpose, responses, score):
    traj = Trajectory.objects.create(task=task, run=run, phase=phase, purpose=purpose,
                                     status="ok", score=score, step_count=len(responses))  # fmt: skip
    for i, response in enumerate(responses):
        Step.objects.create(trajectory=traj, index=i, response=response)
    return traj


@pytest.fixture
def run(owner):
    run = make_run(owner)
    phase0 = make_phase(run, 0)
    tasks = [make_task(f"What is the price of item {i}?", split="test",
                       config={"intent_template": "What is the price of {{product}}?"})
             for i in range(4)]  # fmt: skip
    for task in tasks:  # the oracle waits once after searching: left out of the comparison
        _episode(run, phase0, task, "heldout", [SEARCH, WAIT, OPEN, ANSWER], 1.0)
    _episode(run, phase0, tasks[0], "eval", [SEARCH, OPEN, ANSWER], 1.0)
    _episode(run, phase0, tasks[1], "eval", [SEARCH, OPEN, 'exit(message="")'], 0.0)
    _episode(run, phase0, tasks[2], "eval", [SEARCH, 'do(action="Click", element="7")'], 0.0)
    _episode(run, phase0, tasks[3], "eval", ['exit(message="")'], 0.0)
    return run


def test_the_json_report_classes_each_evaluation_episode_against_the_oracles(run):
    out = io.StringIO()
    call_command("policy_divergence", "--run", str(run.pk), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["phase"] == 0 and report["episodes"] == 4
    counts = {k: v for k, v in report["by_class"].items() if v}
    assert counts == {"solved": 1, "answer": 1, "element": 1, "kind": 1}
    assert report["by_class_and_step"] == {"answer@2": 1, "element@1": 1, "kind@0": 1}
    assert report["kind_changes"] == {"exit -> search": 1}
    assert report["by_template"] == {
        "What is the price of {{product}}?": {"solved": 1, "answer": 1, "element": 1, "kind": 1}
    }
    (example,) = report["examples"]["element"]
    assert example["policy"] == 'do(action="Click", element="7")'
    assert example["oracle"] == 'do(action="Click", element="31")'


def test_the_text_report_and_its_errors(run, owner):
    out = io.StringIO()
    call_command("policy_divergence", "--run", str(run.pk), stdout=out)
    text = out.getvalue()
    assert "4 evaluation episodes" in text and "exit -> search" in text
    assert "element      1   25.0%" in text
    with pytest.raises(CommandError, match="no run 999999"):
        call_command("policy_divergence", "--run", "999999")
    with pytest.raises(CommandError, match="no evaluation episodes"):
        call_command("policy_divergence", "--run", str(make_run(owner).pk))
    with pytest.raises(CommandError, match="no evaluation episode of phase 3"):
        call_command("policy_divergence", "--run", str(run.pk), "--phase", "3")


def _demo(run, phase, intent, steps):
    task = make_task(intent, config={"intent_template": intent})
    traj = Trajectory.objects.create(task=task, run=run, phase=phase, purpose="demo", status="ok",
                                     score=1.0, step_count=len(steps))  # fmt: skip
    for i, (page, response) in enumerate(steps):
        Step.objects.create(trajectory=traj, index=i, observation=page, response=response)


def test_coverage_counts_the_oracle_steps_outside_the_valid_action_set(owner):
    run = make_run(owner)
    phase = make_phase(run, 0)
    page = ('<html> <input id="5" type="search" placeholder="Search"> </input>'
            " <p> Price: $23.99 </p> </html>")  # fmt: skip
    inside = 'do(action="Search", argument="Maple Row Dutch Oven", element="5")'
    outside = 'do(action="Type", argument="Ashford on Monday: 06:00", element="5")'
    _demo(run, phase, "What is the price of Maple Row Dutch Oven?",
          [(page, inside), (page, WAIT), (page, 'exit(message="$23.99")')])  # fmt: skip
    _demo(run, phase, 'Post "Ashford on Monday: H", where H is its hour.',
          [(page, outside), (page, 'exit(message="")')])  # fmt: skip
    out = io.StringIO()
    call_command("policy_divergence", "--run", str(run.pk), "--coverage", "--json", stdout=out)
    cover = json.loads(out.getvalue())
    assert (cover["tasks"], cover["tasks_with_a_step_outside"]) == (2, 1)
    assert (cover["steps"], cover["steps_outside"]) == (4, 1)  # the waiting step is left out
    assert cover["outside_by_kind"] == {"type": 1}
    assert cover["examples"][0]["oracle"] == outside
    text = io.StringIO()
    call_command("policy_divergence", "--run", str(run.pk), "--coverage", stdout=text)
    assert "1 of 4 oracle steps are outside the valid-action set; 1 of 2 tasks" in text.getvalue()
    with pytest.raises(CommandError, match="no successful heldout episodes"):
        call_command(
            "policy_divergence", "--run", str(run.pk), "--coverage", "--purpose", "heldout"
        )
