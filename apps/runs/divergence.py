"""A run's evaluation episodes against the oracle's on the same test tasks (`trainer.bench.divergence`):
where each first left the oracle's path, counted by class, step, site and template."""

from __future__ import annotations

from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Run
from sandbox.oracle import is_waiting_step
from trainer.bench.divergence import first_divergence, summarise


class DivergenceError(ValueError):
    pass


def _responses(trajectory_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {pk: [] for pk in trajectory_ids}
    steps = Step.objects.filter(trajectory_id__in=trajectory_ids).order_by("trajectory_id", "index")
    for tid, response in steps.values_list("trajectory_id", "response"):
        out[tid].append(response)
    return out


def divergence_report(run: Run, phase: int | None = None, examples: int = 3) -> dict:
    """The report for the evaluation of `phase` (default: the latest evaluated phase) against the
    run's oracle episodes on held-out test tasks (phase 0's `heldout` trajectories)."""
    evals = Trajectory.objects.filter(run=run, purpose=Trajectory.Purpose.EVAL)
    if phase is None:
        phase = evals.order_by("-phase__index").values_list("phase__index", flat=True).first()
        if phase is None:
            raise DivergenceError(f"run {run.pk} has no evaluation episodes")
    evals = evals.filter(phase__index=phase).select_related("task")
    oracle = Trajectory.objects.filter(
        run=run, purpose=Trajectory.Purpose.HELDOUT, status="ok", score__gte=1.0
    )
    oracle_of = {t.task_id: t.pk for t in oracle.only("pk", "task_id")}
    evals = [t for t in evals if t.task_id in oracle_of]
    if not evals:
        raise DivergenceError(
            f"run {run.pk}: no evaluation episode of phase {phase} has an oracle episode of its "
            "task to compare with (the oracle runs on orm.heldout_tasks test tasks in phase 0)"
        )
    responses = _responses([t.pk for t in evals] + list(oracle_of.values()))
    rows = []
    for traj in evals:
        gold = [r for r in responses[oracle_of[traj.task_id]] if not is_waiting_step(r)]
        solved = traj.score is not None and traj.score >= 1.0
        config = traj.task.config if isinstance(traj.task.config, dict) else {}
        rows.append({
            "divergence": first_divergence(responses[traj.pk], gold, solved),
            "site": (traj.task.sites or ["?"])[0],
            "template": str(config.get("intent_template", config.get("intent_template_id", "?"))),
            "intent": traj.task.intent,
        })  # fmt: skip
    return {"run": run.pk, "phase": phase, **summarise(rows, examples)}
