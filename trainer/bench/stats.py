"""Statistics of evaluation results: two policies compared on the same tasks, and a classifier's figures.

Two policies evaluated on the same tasks give paired outcomes, so their difference in success rate
is tested with McNemar's test on the discordant tasks (those that exactly one of them solves):
the exact binomial test while there are fewer than 25 of them, else the asymptotic χ² test without
continuity correction (which Fagerland, Lydersen and Laake, BMC Med Res Methodol 2013, find closer
to the nominal level than the corrected one). The 95% interval of the difference is Newcombe's
hybrid score interval for paired proportions (Newcombe, Stat Med 1998, 17:2635, method 10): Wilson
score intervals of both rates combined with the continuity-corrected correlation φ of the pairs.
Unlike the Wald interval it stays inside [−1, 1] and does not collapse to a point when no task is
discordant.

Pure Python (math only).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
EXACT_BELOW = 25  # discordant pairs below which McNemar's test is the exact binomial one


@dataclass(frozen=True)
class PairedTable:
    """Outcomes of policies A and B on the same n tasks."""

    both: int  # solved by both
    a_only: int  # solved by A, not B
    b_only: int  # solved by B, not A
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither


def paired_table(a: Mapping[Hashable, bool], b: Mapping[Hashable, bool]) -> PairedTable:
    """The 2×2 table of two policies' outcomes (task → solved) over the tasks both were run on."""
    tasks = a.keys() & b.keys()
    if not tasks:
        raise ValueError("the two policies share no evaluated task")
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for task in tasks:
        counts[(bool(a[task]), bool(b[task]))] += 1
    return PairedTable(
        counts[(True, True)], counts[(True, False)], counts[(False, True)], counts[(False, False)]
    )


def binomial_two_sided(k: int, n: int) -> float:
    """Two-sided p of k successes in n fair coin flips: twice the smaller tail, at most 1."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def mcnemar(a_only: int, b_only: int) -> tuple[float, str]:
    """(p, method) of McNemar's test of equal success rates from the discordant counts."""
    discordant = a_only + b_only
    if discordant < EXACT_BELOW:
        return binomial_two_sided(a_only, discordant), "exact binomial"
    chi2 = (a_only - b_only) ** 2 / discordant
    return math.erfc(math.sqrt(chi2 / 2.0)), "asymptotic chi-square"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a binomial proportion."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired_interval(table: PairedTable, z: float = Z95) -> tuple[float, float]:
    """Newcombe's method-10 interval of p_A − p_B from paired outcomes."""
    n = table.n
    a_wins, b_wins = table.both + table.a_only, table.both + table.b_only
    p1, p2 = a_wins / n, b_wins / n
    l1, u1 = wilson_interval(a_wins, n, z)
    l2, u2 = wilson_interval(b_wins, n, z)
    margins = a_wins * (n - a_wins) * b_wins * (n - b_wins)
    phi = 0.0
    if margins > 0:
        cross = table.both * table.neither - table.a_only * table.b_only
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    diff = p1 - p2
    lower = diff - math.sqrt(
        max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    )
    upper = diff + math.sqrt(
        max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    )
    return max(-1.0, lower), min(1.0, upper)


@dataclass(frozen=True)
class Comparison:
    """A − B in success rate (percentage points) on their common tasks, with the test and interval."""

    a: str
    b: str
    n: int
    a_rate: float
    b_rate: float
    diff: float
    ci95: tuple[float, float]
    p: float
    test: str
    a_only: int
    b_only: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci95"] = list(self.ci95)
        return out


def compare(
    a_name: str, a: Mapping[Hashable, bool], b_name: str, b: Mapping[Hashable, bool]
) -> Comparison:
    """Policy A against policy B on the tasks both were evaluated on; rates and diff in %."""
    table = paired_table(a, b)
    n = table.n
    p, test = mcnemar(table.a_only, table.b_only)
    lo, hi = newcombe_paired_interval(table)
    return Comparison(
        a=a_name,
        b=b_name,
        n=n,
        a_rate=100.0 * (table.both + table.a_only) / n,
        b_rate=100.0 * (table.both + table.b_only) / n,
        diff=100.0 * (table.a_only - table.b_only) / n,
        ci95=(100.0 * lo, 100.0 * hi),
        p=p,
        test=test,
        a_only=table.a_only,
        b_only=table.b_only,
    )


def classifier_figures(predicted: Sequence[bool], truth: Sequence[bool]) -> dict:
    """Accuracy, balanced accuracy, precision, recall and specificity of yes/no predictions against
    the truth, and how many true successes and failures there were. A figure whose denominator is
    empty is None (balanced accuracy then too)."""
    if len(predicted) != len(truth):
        raise ValueError("one prediction per true label")
    tp = sum(1 for p, t in zip(predicted, truth, strict=True) if p and t)
    fp = sum(1 for p, t in zip(predicted, truth, strict=True) if p and not t)
    fn = sum(1 for p, t in zip(predicted, truth, strict=True) if not p and t)
    tn = len(truth) - tp - fp - fn

    def ratio(x: int, y: int) -> float | None:
        return x / y if y else None

    recall, specificity = ratio(tp, tp + fn), ratio(tn, tn + fp)
    return {
        "accuracy": ratio(tp + tn, len(truth)),
        "balanced_accuracy": (
            None if recall is None or specificity is None else (recall + specificity) / 2
        ),
        "precision": ratio(tp, tp + fp),
        "recall": recall,
        "specificity": specificity,
        "n_success": tp + fn,
        "n_failure": tn + fp,
    }
