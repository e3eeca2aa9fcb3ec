"""The ORM's P(YES) threshold: chosen on held-out trajectories to maximise balanced accuracy, stored
beside the ORM's weights (`orm_calibration.json`) and read back wherever the ORM labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.learn.models import model_dir

CALIBRATION_FILE = "orm_calibration.json"


def balanced_accuracy(probs: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    """Mean of recall and specificity of [P(YES) >= threshold] over the classes present."""
    pos = [p for p, y in zip(probs, labels, strict=True) if y]
    neg = [p for p, y in zip(probs, labels, strict=True) if not y]
    rates = []
    if pos:
        rates.append(sum(p >= threshold for p in pos) / len(pos))
    if neg:
        rates.append(sum(p < threshold for p in neg) / len(neg))
    return sum(rates) / len(rates) if rates else 0.0


def calibrate_threshold(
    probs: Sequence[float], labels: Sequence[bool], default: float = 0.5
) -> float:
    """The cut between two neighbouring distinct scores with the highest balanced accuracy; ties go
    to the cut nearest `default`. `default` itself when the labels hold only one class or the
    scores only one value (nothing to choose from)."""
    values = sorted(set(float(p) for p in probs))
    if len(values) < 2 or all(labels) or not any(labels):
        return default
    cuts = [(a + b) / 2 for a, b in zip(values[:-1], values[1:], strict=True)]
    return max(cuts, key=lambda t: (balanced_accuracy(probs, labels, t), -abs(t - default)))


def write_calibration(orm_dir: str | Path, threshold: float, details: dict[str, Any]) -> Path:
    """`orm_calibration.json` in the ORM's model directory: the threshold and how it was found."""
    path = model_dir(orm_dir) / CALIBRATION_FILE
    path.write_text(json.dumps({"threshold": threshold, **details}, indent=2, sort_keys=True))
    return path


def read_threshold(orm_dir: str | Path, default: float) -> float:
    """The stored threshold of the ORM in `orm_dir`, else `default` (an uncalibrated ORM)."""
    path = model_dir(orm_dir) / CALIBRATION_FILE
    if not path.exists():
        return default
    return float(json.loads(path.read_text())["threshold"])
