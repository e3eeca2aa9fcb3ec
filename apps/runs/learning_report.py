"""The figures of `experiment learning` beyond the success table: paired comparisons of its rows on the
same test tasks, the ORM's figures per phase against ground truth, and `docs/results.json`.

The statistics themselves are pure functions in `trainer.bench.stats`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from apps.rollouts.models import Trajectory
from apps.runs.models import Phase
from trainer.bench.stats import classifier_figures, compare

SUCCESS = 1.0
SFT_ROW = "SFT (BC)"
WEBRL_PREFIX = "WebRL phase "
GROUND_TRUTH_PREFIX = "WebRL with ground-truth reward, phase "
ORM_FIGURES = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "specificity",
    "n_success",
    "n_failure",
)


def task_outcomes(trajectories) -> dict[str, bool]:
    """Task key → solved (ground truth), one entry per evaluated task."""
    return {
        key: score is not None and score >= SUCCESS
        for key, score in trajectories.values_list("task__key", "score")
    }


def orm_figures(phase: Phase, threshold: float) -> dict:
    """The ORM's verdicts on the phase's finished rollouts against their ground truth.

    Reads `orm_p_yes`, which the phase's ORM stage writes on every rollout it judges (phase 0's
    rollouts are judged by the ORM just trained on them, so its figures there are in-sample).
    """
    rows = Trajectory.objects.filter(
        phase=phase,
        purpose=Trajectory.Purpose.TRAIN,
        status=Trajectory.Status.OK,
        score__isnull=False,
        orm_p_yes__isnull=False,
    ).values_list("orm_p_yes", "score")
    threshold = phase.metrics.get("orm/threshold", threshold)  # the calibrated one it labelled with
    predicted = [p >= threshold for p, _ in rows]
    truth = [s >= SUCCESS for _, s in rows]
    return classifier_figures(predicted, truth)


SEED_MARK = " · world seed "


def seed_suffix(seed: int) -> str:
    """What the labels of rows evaluated on another world's test split end with."""
    return f"{SEED_MARK}{seed}"


def comparison_pairs(labels: Iterable[str], seed: int | None = None) -> list[tuple[str, str]]:
    """(a, b) pairs worth a paired test: every row against SFT, the last WebRL phase against each
    baseline, and WebRL with ground-truth reward against WebRL with the ORM's. Rows are paired
    within one world: the default one, or with `seed` the rows labelled with `seed_suffix(seed)`."""
    suffix = "" if seed is None else seed_suffix(seed)
    if suffix:
        names = [label[: -len(suffix)] for label in labels if label.endswith(suffix)]
    else:
        names = [label for label in labels if SEED_MARK not in label]

    def pick(prefix: str) -> str | None:
        matches = [n for n in names if n.startswith(prefix)]
        return matches[-1] if matches else None

    pairs: list[tuple[str, str]] = []
    if SFT_ROW in names:
        pairs += [(n, SFT_ROW) for n in names if n != SFT_ROW]
    webrl, truth = pick(WEBRL_PREFIX), pick(GROUND_TRUTH_PREFIX)
    if webrl is not None:
        pairs += [(webrl, b) for b in ("SFT continued", "Filtered BC") if b in names]
    if webrl is not None and truth is not None:
        pairs.append((truth, webrl))
    out: list[tuple[str, str]] = []
    for a, b in pairs:
        if (a + suffix, b + suffix) not in out:
            out.append((a + suffix, b + suffix))
    return out


def comparisons(
    outcomes: Mapping[str, Mapping[str, bool]], pairs: Iterable[tuple[str, str]]
) -> list[dict]:
    """McNemar's test and Newcombe's 95% interval of each pair's difference (percentage points)."""
    return [compare(a, outcomes[a], b, outcomes[b]).to_dict() for a, b in pairs]


def rows_list(rows: Mapping[str, dict], columns: Iterable[str]) -> list[dict]:
    """The table rows as results.json holds them: {policy, avg, per_site, n}."""
    columns = list(columns)
    return [
        {
            "policy": name,
            "avg": r["avg"],
            "per_site": {c: r.get(c) for c in columns},
            "n": r["n"],
        }
        for name, r in rows.items()
    ]


def results_document(summary: dict, columns: Iterable[str], command: str, commit: str) -> dict:
    """The content of docs/results.json."""
    return {
        "rows": rows_list(summary["rows"], columns),
        "orm": {str(k): v for k, v in sorted(summary.get("orm", {}).items())},
        "comparisons": summary.get("comparisons", []),
        "minutes": summary["minutes"],
        "command": command,
        "commit": commit,
    }


def write_results_json(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def git_commit(root: Path) -> str:
    """HEAD's short hash, with "-dirty" when tracked files differ from it; "unknown" without git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def comparisons_markdown(items: list[dict]) -> str:
    head = "| A | B | tasks | A − B (points) | 95% CI (Newcombe) | only A / only B | p (McNemar) |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for c in items:
        lo, hi = c["ci95"]
        lines.append(
            f"| {c['a']} | {c['b']} | {c['n']} | {c['diff']:+.1f} | [{lo:+.1f}, {hi:+.1f}] | "
            f"{c['a_only']} / {c['b_only']} | {_p(c['p'])} ({c['test']}) |"
        )
    return "\n".join(lines)


def orm_markdown(orm: Mapping) -> str:
    head = "| phase | accuracy | balanced accuracy | precision | recall | specificity | successes | failures |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for phase, f in sorted(orm.items(), key=lambda kv: str(kv[0])):
        cells = [_share(f.get(k)) for k in ORM_FIGURES[:5]]
        lines.append(
            f"| {phase} | "
            + " | ".join(cells)
            + f" | {f.get('n_success', 0)} | {f.get('n_failure', 0)} |"
        )
    return "\n".join(lines)


def _share(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"
