"""Relabelling, agreement figures and the JSONL export of human labels as ORM training data."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied

from apps.reviews.models import HumanLabel
from apps.reviews.services import add_human_label, agreement_stats, export_labels_jsonl
from apps.rollouts.models import Trajectory
from tests.web.factories import CastTestCase, make_run, make_trajectory
from trainer.prompts import build_orm_prompt


class AddHumanLabelTests(CastTestCase):
    def test_it_records_the_label_and_updates_the_trajectory(self):
        trajectory = make_trajectory(p_yes=0.8, score=0.0)
        add_human_label(self.reviewer, trajectory, False, note="wrong price")
        stored = Trajectory.objects.get(pk=trajectory.pk)
        assert stored.human_label is False and stored.reward == 0.0
        assert HumanLabel.objects.get(trajectory=trajectory).note == "wrong price"

    def test_the_latest_label_counts_and_the_history_stays(self):
        trajectory = make_trajectory()
        add_human_label(self.reviewer, trajectory, False)
        add_human_label(self.reviewer, trajectory, True)
        stored = Trajectory.objects.get(pk=trajectory.pk)
        assert stored.human_label is True and stored.reward == 1.0
        assert HumanLabel.objects.filter(trajectory=trajectory).count() == 2

    def test_it_refuses_users_who_are_not_reviewers(self):
        trajectory = make_trajectory()
        for user in (self.owner, self.outsider):
            try:
                add_human_label(user, trajectory, True)
            except PermissionDenied:
                pass
            else:
                raise AssertionError(f"{user} labelled a trajectory")
        assert not HumanLabel.objects.exists()

    def test_it_rejects_a_label_that_is_not_a_bool(self):
        trajectory = make_trajectory()
        try:
            add_human_label(self.reviewer, trajectory, "yes")
        except ValueError as exc:
            assert "label" in str(exc)
        else:
            raise AssertionError("accepted a string label")


class AgreementTests(CastTestCase):
    def test_it_counts_agreement_between_orm_humans_and_ground_truth(self):
        run = make_run(self.owner)
        a = make_trajectory(run, p_yes=0.9, score=1.0)  # ORM yes, truth yes, human yes
        b = make_trajectory(run, p_yes=0.7, score=0.0)  # ORM yes, truth no, human no
        c = make_trajectory(run, p_yes=0.2, score=None)  # ORM no, no truth, human yes
        make_trajectory(run, p_yes=0.1, score=0.0)  # not labelled: ORM vs truth only
        add_human_label(self.reviewer, a, True)
        add_human_label(self.reviewer, b, False)
        add_human_label(self.reviewer, c, True)
        stats = agreement_stats(run)
        assert (stats["orm_vs_human"].agree, stats["orm_vs_human"].total) == (1, 3)
        assert (stats["human_vs_truth"].agree, stats["human_vs_truth"].total) == (2, 2)
        assert (stats["orm_vs_truth"].agree, stats["orm_vs_truth"].total) == (2, 3)
        (row,) = stats["per_reviewer"]
        assert row["username"] == "reviewer" and row["labels"] == 3
        assert (row["orm"].agree, row["orm"].total) == (1, 3)
        assert row["truth"].rate == 1.0

    def test_rates_are_none_without_data(self):
        stats = agreement_stats()
        assert stats["orm_vs_human"].rate is None and stats["per_reviewer"] == []


class ExportTests(CastTestCase):
    def test_it_exports_one_orm_example_per_labelled_trajectory(self):
        run = make_run(self.owner)
        labelled = make_trajectory(run, steps=2)
        make_trajectory(run)  # unlabelled: not exported
        add_human_label(self.reviewer, labelled, False)
        lines = list(export_labels_jsonl(run))
        assert len(lines) == 1 and lines[0].endswith("\n")
        record = json.loads(lines[0])
        steps = list(labelled.steps.order_by("index"))
        expected = build_orm_prompt(
            labelled.task.intent, [s.response for s in steps], steps[-1].observation,
            variant=run.config["rollout"]["prompt"],  # the run's prompt variant
            checks=run.config["orm"]["checks"],  # and the run's ORM checks
        )  # fmt: skip
        assert record["prompt"] == expected
        assert record["completion"] == "NO" and record["label"] is False
        assert record["trajectory_id"] == labelled.pk and record["run_id"] == run.pk

    def test_it_exports_every_run_without_a_filter(self):
        for run in (make_run(self.owner, name="a"), make_run(self.owner, name="b")):
            add_human_label(self.reviewer, make_trajectory(run), True)
        assert len(list(export_labels_jsonl())) == 2
