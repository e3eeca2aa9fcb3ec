"""The learning experiment: base → SFT → WebRL phases, with SFT-continued and filtered BC as baselines
and WebRL on ground-truth rewards as an ablation.

Every policy is evaluated through the same eval stage (browser episodes on the test split); the
table follows the paper's Table 1 (per site and average, §8.1/§9).
"""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.curriculum.models import Task, world_task_key
from apps.rollouts.models import Trajectory
from apps.runs import orchestrator
from apps.runs.fork import fork_run
from apps.runs.learning_report import (
    GROUND_TRUTH_PREFIX,
    SFT_ROW,
    WEBRL_PREFIX,
    comparison_pairs,
    comparisons,
    comparisons_markdown,
    git_commit,
    orm_figures,
    orm_markdown,
    results_document,
    seed_suffix,
    task_outcomes,
    write_results_json,
)
from apps.runs.models import Checkpoint, Phase, Run, StageRun
from apps.runs.rows import demo_rows, records_of, trajectory_rows
from apps.runs.runner import drive_inline, execute_stage
from apps.runs.stages import require_checkpoint
from trainer.config import RunConfig
from trainer.phase import choose_tasks

COLUMNS = [("reddit", "Reddit"), ("gitlab", "GitLab"), ("shopping_admin", "CMS"), ("map", "Map"),
           ("shopping", "OSS")]  # fmt: skip


def ensure_world_tasks(
    test_limit: int | None, seed: int = 0, world_seed: int = 0
) -> dict[str, int]:
    """The train tasks and (a balanced subset of) the test tasks of the world built from
    `world_seed`, as Task rows."""
    from sandbox.tasks import load_tasks

    counts = {}
    for split in ("train", "test"):
        configs = load_tasks(split, world_seed)
        if split == "test" and test_limit:
            keys = [str(c["task_id"]) for c in configs]
            sites = [c["sites"][0] if len(c["sites"]) == 1 else "cross_site" for c in configs]
            keep = set(choose_tasks(keys, sites, test_limit, seed))
            configs = [c for c in configs if str(c["task_id"]) in keep]
        for c in configs:
            Task.objects.get_or_create(
                key=world_task_key(split, c["task_id"], world_seed),
                defaults={"config": c, "intent": c["intent"], "sites": c["sites"],
                          "world": "sandbox", "world_seed": world_seed, "split": split,
                          "template_id": c["intent_template_id"]},
            )  # fmt: skip
        counts[split] = Task.objects.filter(
            world="sandbox", world_seed=world_seed, split=split
        ).count()
    return counts


def site_rates(trajectories) -> dict[str, float]:
    """Success (%) per paper column and the average over every evaluated task (§8.1)."""
    per: dict[str, list[int]] = {}
    all_rows = []
    for traj in trajectories.select_related("task"):
        ok = 1 if traj.score is not None and traj.score >= 1.0 else 0
        all_rows.append(ok)
        per.setdefault(traj.task.site_label, []).append(ok)
    out = {
        col: (100.0 * sum(per[col]) / len(per[col]) if per.get(col) else None) for col, _ in COLUMNS
    }
    out["avg"] = 100.0 * sum(all_rows) / len(all_rows) if all_rows else 0.0
    out["n"] = len(all_rows)
    return out


def eval_model(owner, name: str, config: RunConfig, model_dir: str, on_stage=None):
    """An eval-only run of one policy checkpoint; returns its evaluation trajectories."""
    now = timezone.now()
    run = Run.objects.create(owner=owner, name=name, config=config.to_dict(),
                             status=Run.Status.RUNNING, started_at=now, heartbeat_at=now)  # fmt: skip
    phase = Phase.objects.create(run=run, index=0)
    stage = StageRun.objects.create(phase=phase, name="eval", order=0)
    Checkpoint.objects.create(run=run, phase=phase, kind="actor", path=model_dir)
    progress = on_stage(stage) if on_stage else None
    execute_stage(stage.pk, lambda s: None, orchestrator.worker_id(), on_progress=progress)
    run.refresh_from_db()
    if run.status != Run.Status.SUCCEEDED:
        raise RuntimeError(f"evaluation of {name} ended {run.status}: {run.last_error}")
    return Trajectory.objects.filter(run=run, purpose="eval")


def eval_variants(
    owner, config: RunConfig, model_dir: str, variants: dict[str, list[str]],
    test_limit: int | None = None, on_stage=None,
) -> dict:  # fmt: skip
    """One checkpoint evaluated on the test split under each variant's overrides of `config` (the
    first variant is the reference): {"rows": {name: site_rates + run_id}, "comparisons": every
    other variant against the first, paired on the same tasks (McNemar, Newcombe's 95% CI)}."""
    if not variants:
        raise ValueError("give at least one variant")
    ensure_world_tasks(test_limit, config.seed, config.world_seed)
    configs = {name: config.with_overrides(sets) for name, sets in variants.items()}
    rows, outcomes = {}, {}
    for name, cfg in configs.items():
        trajectories = eval_model(owner, f"eval_policy: {name}", cfg, model_dir, on_stage)
        rows[name] = {**site_rates(trajectories), "run_id": trajectories.first().run_id}
        outcomes[name] = task_outcomes(trajectories)
    first, *others = list(variants)
    return {"rows": rows, "comparisons": comparisons(outcomes, [(o, first) for o in others])}


def train_baselines(config: RunConfig, run: Run, out_root: Path) -> dict[str, str]:
    """SFT continued on the demonstrations, and filtered BC on WebRL's phase-1 successes (§9)."""
    from trainer.learn.models import build_tiny_llama, load_tokenizer, save_model
    from trainer.learn.pretrain import pretrained_dir
    from trainer.learn.sft import train_sft

    sft = Checkpoint.objects.get(run=run, kind="actor", phase__index=0).path
    budget = config.run.phases * config.actor.epochs
    gamma = config.actor.gamma
    dirs = {}
    pretrained = pretrained_dir(out_root.parent / "phase-0" / "pretrain")
    if (
        pretrained is not None
    ):  # the copy-pretrained model SFT started from (trainer/learn/pretrain.py)
        dirs["base"], dirs["base_label"] = str(pretrained), "Base (copy-pretrained)"
    elif (
        config.model.init
    ):  # a base built elsewhere (trainer/bench/induction_base.py): SFT started there
        dirs["base"], dirs["base_label"] = config.model.init, "Base (model.init)"
    else:
        tokenizer = load_tokenizer(sft)
        base = build_tiny_llama(config.model, tokenizer, config.engine.max_seq_len, config.seed)
        dirs["base"], dirs["base_label"] = str(out_root / "base"), "Base (untrained)"
        save_model(base, tokenizer, dirs["base"])
    demos = records_of(demo_rows(run.pk), gamma, variant=config.rollout.prompt)
    result = train_sft(config, demos, out_root / "sft_continued", init=sft, epochs=budget,
                       schedule="constant", warmup_ratio=0.0)  # fmt: skip
    dirs["sft_continued"] = result["model_dir"]
    wins = Trajectory.objects.filter(run=run, purpose="train", phase__index=1, status="ok",
                                     reward__gte=0.5)  # fmt: skip
    bc = records_of(trajectory_rows(wins), gamma, variant=config.rollout.prompt)
    if bc:
        result = train_sft(config, bc, out_root / "filtered_bc", init=sft, lr=config.actor.lr,
                           epochs=budget, schedule="constant", warmup_ratio=0.0)  # fmt: skip
        dirs["filtered_bc"] = result["model_dir"]
    else:  # nothing succeeded in phase 1: filtered BC has no data and stays the SFT policy
        dirs["filtered_bc"] = sft
    dirs["filtered_bc_records"] = str(len(bc))
    return dirs


def run_learning(
    owner,
    config: RunConfig,
    test_limit: int | None,
    on_stage=None,
    ground_truth_row: bool = True,
    eval_seed: int | None = None,
) -> dict:
    """The whole experiment; returns a JSON-able summary with the table rows.

    With `ground_truth_row` the WebRL run is forked after phase 0 (apps/runs/fork.py) and its RL
    phases are run again on the evaluator's rewards (orm.reward_source "ground_truth"): rows
    "WebRL with ground-truth reward, phase N", so an RL failure can be told from an ORM failure.
    With `eval_seed` every row's policy is also evaluated on the test split of the world built from
    that seed (served in-process): rows labelled `seed_suffix(eval_seed)`, compared among
    themselves, so overfitting to one world's names shows."""
    if eval_seed is not None and (eval_seed < 0 or eval_seed == config.world_seed):
        raise ValueError(f"--eval-seed {eval_seed}: give another world's seed (>= 0) than the "
                         f"training world's ({config.world_seed})")  # fmt: skip
    t0 = time.time()
    tasks = ensure_world_tasks(test_limit, config.seed, config.world_seed)
    run = Run.objects.create(owner=owner, name="learning: webrl", config=config.to_dict())
    status = drive_inline(run.pk, on_stage=on_stage)
    run.refresh_from_db()
    if status != Run.Status.SUCCEEDED:
        raise RuntimeError(f"WebRL run {run.pk} ended {status}: {run.last_error}")
    rows: dict[str, dict] = {}
    outcomes: dict[str, dict[str, bool]] = {}
    policies: dict[str, str] = {}  # row → the model directory it evaluated

    def add(label: str, trajectories, model_dir: str) -> None:
        rows[label] = site_rates(trajectories)
        outcomes[label] = task_outcomes(trajectories)
        policies[label] = model_dir

    def phase_eval(phase: Phase):
        return Trajectory.objects.filter(phase=phase, purpose="eval")

    def phase_actor(phase: Phase) -> str:
        return require_checkpoint(phase.run_id, "actor", before_phase=phase.index + 1).path

    phases = list(Phase.objects.filter(run=run).order_by("index"))
    out_root = Path(settings.CHECKPOINT_ROOT) / f"run-{run.pk}" / "baselines"
    dirs = train_baselines(config, run, out_root)
    add(dirs["base_label"], eval_model(owner, "learning: base", config, dirs["base"], on_stage),
        dirs["base"])  # fmt: skip
    for phase in phases:
        label = SFT_ROW if phase.index == 0 else f"{WEBRL_PREFIX}{phase.index}"
        add(label, phase_eval(phase), phase_actor(phase))
    if ground_truth_row and config.run.phases >= 1:
        fork = fork_run(run, ["orm.reward_source=ground_truth"], 0, owner=owner,
                        name="learning: webrl, ground-truth reward")  # fmt: skip
        status = drive_inline(fork.pk, on_stage=on_stage)
        if status != Run.Status.SUCCEEDED:
            fork.refresh_from_db()
            raise RuntimeError(
                f"ground-truth-reward run {fork.pk} ended {status}: {fork.last_error}"
            )
        for phase in Phase.objects.filter(run=fork, index__gte=1).order_by("index"):
            add(f"{GROUND_TRUTH_PREFIX}{phase.index}", phase_eval(phase), phase_actor(phase))
    for label, key in (("SFT continued", "sft_continued"), ("Filtered BC", "filtered_bc")):
        name = f"learning: {key.replace('_', '-')}"
        add(label, eval_model(owner, name, config, dirs[key], on_stage), dirs[key])
    pairs = comparison_pairs(rows)
    if eval_seed is not None:
        seed_rows = eval_on_world(owner, config, eval_seed, test_limit, policies, on_stage)
        for label, trajectories in seed_rows.items():
            add(label, trajectories, policies[label.removesuffix(seed_suffix(eval_seed))])
        pairs += comparison_pairs(rows, seed=eval_seed)
        tasks[f"test{seed_suffix(eval_seed)}"] = len(next(iter(seed_rows.values())))
    orm = {
        p.index: {
            "accuracy": p.metrics.get("orm/accuracy"),
            "scored": p.metrics.get("orm/scored"),
            "truth_success_rate": p.metrics.get("rollout/success_rate"),
        }
        for p in phases
    }
    return {
        "run_id": run.pk,
        "tasks": tasks,
        "rows": rows,
        "outcomes": outcomes,
        "comparisons": comparisons(outcomes, pairs),
        "eval_seed": eval_seed,
        "orm": {p.index: orm_figures(p, config.orm.threshold) for p in phases},
        "orm_accuracy": orm,
        "filtered_bc_records": int(dirs["filtered_bc_records"]),
        "minutes": round((time.time() - t0) / 60, 1),
    }


def eval_on_world(owner, config: RunConfig, seed: int, test_limit: int | None,
                  policies: dict[str, str], on_stage=None) -> dict:  # fmt: skip
    """Each policy evaluated on the test split of the world built from `seed`, served from this
    process for the purpose; row label (with `seed_suffix(seed)`) → its eval trajectories."""
    from django.test.utils import override_settings

    from sandbox.server import WorldThread, free_port_block

    ensure_world_tasks(test_limit, config.seed, seed)
    other = config.with_overrides([f"world_seed={seed}"])
    out = {}
    with WorldThread(
        instances=settings.WORLD_INSTANCES, port=free_port_block(), seed=seed
    ) as world:
        with override_settings(WORLD_URL=world.url):
            for label, model_dir in policies.items():
                name = f"learning: {label}{seed_suffix(seed)}"
                out[label + seed_suffix(seed)] = eval_model(owner, name, other, model_dir, on_stage)
    return out


def table_markdown(rows: dict[str, dict]) -> str:
    head = "| policy | " + " | ".join(t for _, t in COLUMNS) + " | Avg SR | tasks |"
    sep = "|" + "---|" * (len(COLUMNS) + 3)
    lines = [head, sep]
    for name, r in rows.items():
        cells = ["–" if r.get(c) is None else f"{r[c]:.1f}" for c, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{r['avg']:.1f}** | {r['n']} |")
    return "\n".join(lines)


def learning_section(summary: dict, command: str, machine: str) -> str:
    orm = "; ".join(
        f"phase {k}: {_pct(v['accuracy'])} of {int(v['scored'] or 0)} rollouts "
        f"({_pct((v['truth_success_rate'] or 0) / 100)} of them successful by ground truth)"
        for k, v in sorted(summary["orm_accuracy"].items())
    )
    return (
        "## Learning\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {machine}. Wall time {summary['minutes']} min. Tasks in the database: "
        f"{summary['tasks']['train']} train, {summary['tasks']['test']} test (all test tasks in the "
        "database are evaluated).\n\n"
        "Success rate (%) on the built-in world's test tasks by ground-truth evaluators, "
        "columns as in the paper's Table 1 (cross-site tasks count in the average only):\n\n"
        f"{table_markdown(summary['rows'])}\n\n"
        f"ORM accuracy against ground truth on each phase's rollouts: {orm}.\n"
        f"Filtered BC trained on {summary['filtered_bc_records']} steps of phase-1 successes.\n"
        + _extra_tables(summary)
    )


def _extra_tables(summary: dict) -> str:
    """The paired comparisons and the ORM's figures per phase, where the summary has them."""
    out = ""
    if summary.get("comparisons"):
        out += (
            "\nPaired comparisons on the same test tasks: the difference in success rate, its 95% "
            "interval (Newcombe's hybrid score interval for paired proportions) and McNemar's "
            "test (exact binomial below 25 discordant tasks):\n\n"
            f"{comparisons_markdown(summary['comparisons'])}\n"
        )
    if summary.get("orm"):
        out += (
            "\nThe ORM's verdicts on each phase's rollouts against ground truth (phase 0: the "
            "ORM just trained on them):\n\n"
            f"{orm_markdown(summary['orm'])}\n"
        )
    return out


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def record_results(
    summary: dict, results: Path, command: str, machine: str, json: bool, commit: str | None = None
) -> Path:
    """`write_results` of the summary's section; with `json`, also `results`' .json sibling
    (docs/results.json) with the same rows, comparisons and ORM figures. Returns the record."""
    record = write_results(results, learning_section(summary, command, machine))
    if json:
        commit = commit or git_commit(Path(settings.BASE_DIR))
        document = results_document(summary, [c for c, _ in COLUMNS], command, commit)
        write_results_json(results.with_suffix(".json"), document)
    return record


def write_results(path: Path, section: str, when: date | None = None) -> Path:
    """Record a learning measurement (`section`, a `## Learning` section from `learning_section`).

    docs/results.md shows the current result first and keeps the story in docs/experiments/, one
    dated file per attempt. So this writes the measurement to a new dated file in `experiments/`
    beside `path`, makes it `path`'s `## Learning` section (with a link to that file), and adds
    the link to `## History`. Other sections and every earlier record stay as they are. Returns
    the new record's path.
    """
    day = (when or timezone.localdate()).isoformat()
    records = path.parent / "experiments"
    records.mkdir(parents=True, exist_ok=True)
    record = records / f"{day}-learning.md"
    n = 2
    while record.exists():
        record = records / f"{day}-learning-{n}.md"
        n += 1
    link = f"experiments/{record.name}"
    title = f"{day}: `experiment learning`"
    body = section.split("\n", 1)[1].strip("\n")  # without its "## Learning" heading
    record.write_text(
        f"# {title}\n\nWritten by `python manage.py experiment learning`. "
        f"Where things stand now: [docs/{path.name}](../{path.name}).\n\n{body}\n"
    )
    current = f"## Learning\n\nMeasured {day} ([record]({link})).\n\n{body}\n"
    text = path.read_text() if path.exists() else "# Results\n"
    text = _put_section(text, "Learning", current)
    history = re.search(r"^## History\n.*?(?=^## |\Z)", text, re.S | re.M)
    entries = history.group(0).rstrip("\n") if history else "## History\n"
    text = _put_section(text, "History", f"{entries}\n- [{title}]({link})\n")
    path.write_text(text)
    return record


def _put_section(text: str, name: str, section: str) -> str:
    """`text` with its `## name` section replaced by `section`, or `section` appended."""
    pattern = re.compile(rf"^## {name}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return (
            pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1).rstrip("\n") + "\n"
        )
    return text.rstrip("\n") + "\n\n" + section
