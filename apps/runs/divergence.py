"""A run's evaluation episodes against the oracle's on the same test tasks (`trainer.bench.divergence`):
where each first left the oracle's path, counted by class, step, site and template."""

from __future__ import annotations

from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Run
from sandbox.oracle import is_waiting_step
from trainer.bench.divergence import final_call, first_divergence, summarise


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


def valid_action_coverage(run: Run, purpose: str = Trajectory.Purpose.DEMO) -> dict:
    """How many of the oracle's steps (its waiting steps left out) on the run's `purpose` episodes
    (phase 0's demonstrations, or `heldout` on test tasks) the run's valid-action set holds on the
    page the oracle saw: a task with a step outside it cannot be solved along the oracle's path
    under `rollout.decoding="valid_actions"`."""
    from collections import Counter

    from trainer.config import RunConfig
    from trainer.env.actions import Action, parse_action
    from trainer.env.valid_actions import valid_actions

    config = RunConfig.from_dict(run.config)
    r = config.rollout
    episodes = Trajectory.objects.filter(run=run, purpose=purpose, status="ok", score__gte=1.0)
    episodes = list(episodes.select_related("task"))
    if not episodes:
        raise DivergenceError(f"run {run.pk} has no successful {purpose} episodes")
    steps = Step.objects.filter(trajectory__in=episodes).order_by("trajectory_id", "index")
    by_traj: dict[int, list[Step]] = {}
    for step in steps.only("trajectory_id", "index", "observation", "response"):
        by_traj.setdefault(step.trajectory_id, []).append(step)
    kinds: Counter = Counter()
    missed_kinds: Counter = Counter()
    templates: Counter = Counter()
    examples: list[dict] = []
    blocked = 0
    for traj in episodes:
        intent = traj.task.intent
        question = r.answer_questions and intent.rstrip().endswith("?")
        missed = False
        for step in by_traj.get(traj.pk, []):
            if is_waiting_step(step.response):
                continue
            action = parse_action(step.response)
            kind = action.kind.value if isinstance(action, Action) else "unparsed"
            allowed = set(valid_actions(intent, step.observation, arguments=r.arguments,
                                        empty_exit=not question))  # fmt: skip
            call = final_call(step.response)
            kinds[kind] += 1
            if step.response.strip() in allowed or call in allowed:
                continue
            missed_kinds[kind] += 1
            missed = True
            if len(examples) < 10:
                examples.append({"intent": intent, "step": step.index, "oracle": call})
        if missed:
            blocked += 1
            config_ = traj.task.config if isinstance(traj.task.config, dict) else {}
            templates[str(config_.get("intent_template", "?"))] += 1
    return {
        "run": run.pk,
        "purpose": purpose,
        "tasks": len(episodes),
        "tasks_with_a_step_outside": blocked,
        "steps": sum(kinds.values()),
        "steps_outside": sum(missed_kinds.values()),
        "steps_by_kind": dict(kinds.most_common()),
        "outside_by_kind": dict(missed_kinds.most_common()),
        "outside_by_template": dict(templates.most_common()),
        "examples": examples,
    }
