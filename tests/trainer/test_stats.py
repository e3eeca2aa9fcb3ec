"""Paired comparisons and classifier figures against values worked out by hand (or published)."""

import math

import pytest

from trainer.bench.stats import (
    PairedTable,
    binomial_two_sided,
    classifier_figures,
    compare,
    mcnemar,
    newcombe_paired_interval,
    paired_table,
    wilson_interval,
)

Z2 = 1.959963984540054**2  # 3.8414588...


def test_the_exact_mcnemar_p_is_twice_the_binomial_tail_of_the_discordant_tasks():
    # 6 against 16 discordant: P(X <= 6 | 22, 1/2) = (1 + 22 + 231 + 1540 + 7315 + 26334 + 74613) / 2^22
    assert binomial_two_sided(6, 22) == pytest.approx(2 * 110056 / 2**22)  # 0.05248
    assert mcnemar(6, 16) == (pytest.approx(0.0524788), "exact binomial")
    assert mcnemar(16, 6)[0] == mcnemar(6, 16)[0]
    assert mcnemar(0, 5) == (pytest.approx(2 / 32), "exact binomial")
    assert mcnemar(0, 0) == (1.0, "exact binomial")  # nothing discordant: no evidence
    assert mcnemar(3, 3)[0] == 1.0


def test_many_discordant_tasks_use_the_chi_square_test():
    # 30 against 10: χ² = (30 − 10)² / 40 = 10 on 1 df, P(χ²₁ > 10) = erfc(√5) = 0.0015654
    p, method = mcnemar(30, 10)
    assert method == "asymptotic chi-square"
    assert p == pytest.approx(0.0015654, abs=1e-7)
    assert mcnemar(13, 11)[1] == "exact binomial"  # 24 discordant


def test_the_wilson_interval_of_nothing_solved_starts_at_zero():
    # x = 0: centre = half-width = (z²/2n) / (1 + z²/n), so the upper bound is (z²/n) / (1 + z²/n)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx((Z2 / 10) / (1 + Z2 / 10))  # 0.2775
    assert wilson_interval(65, 161) == pytest.approx((0.331037, 0.480904), abs=1e-6)


def test_newcombes_paired_interval_matches_the_published_example():
    # Cavo et al. 2012 in Fagerland, Lydersen and Laake, "Statistical Analysis of Contingency
    # Tables" (2017), ch. 8: both 59, first only 6, second only 16, neither 80;
    # Newcombe square-and-add: −0.0621 (95% CI −0.1186 to −0.0046).
    lo, hi = newcombe_paired_interval(PairedTable(59, 6, 16, 80))
    assert (round(lo, 4), round(hi, 4)) == (-0.1186, -0.0046)


def test_newcombes_interval_without_correlation_adds_the_two_wilson_errors():
    # Bentur et al. 2009 (1, 1, 7, 12): ad − bc = 5 <= n/2 = 10.5, so φ = 0.
    # p1 = 2/21, Wilson (0.026519, 0.289141); p2 = 8/21, Wilson (0.207510, 0.591213).
    # L = p1 − p2 − √((p1 − 0.026519)² + (0.591213 − p2)²), U = p1 − p2 + √((p2 − 0.207510)² + (0.289141 − p1)²)
    p1, p2 = 2 / 21, 8 / 21
    lower = p1 - p2 - math.sqrt((p1 - 0.0265188) ** 2 + (0.5912135 - p2) ** 2)
    upper = p1 - p2 + math.sqrt((p2 - 0.2075101) ** 2 + (0.2891414 - p1) ** 2)
    assert newcombe_paired_interval(PairedTable(1, 1, 7, 12)) == pytest.approx(
        (lower, upper), abs=1e-6
    )
    assert (lower, upper) == pytest.approx((-0.50692, -0.02556), abs=1e-5)


def test_two_policies_that_solve_nothing_differ_by_zero_within_two_points():
    # 0 of 165 each: the interval is ±(z²/165) / (1 + z²/165) = ±0.02275
    nothing = {k: False for k in range(165)}
    result = compare("WebRL", nothing, "SFT", nothing)
    assert (result.diff, result.p, result.n) == (0.0, 1.0, 165)
    assert result.ci95 == pytest.approx((-2.2752, 2.2752), abs=1e-4)


def test_a_comparison_pairs_outcomes_by_task():
    a = {"t1": True, "t2": True, "t3": False, "t4": False, "t5": True}
    b = {"t1": True, "t2": False, "t3": True, "t4": False, "t6": True}  # t5, t6: not shared
    assert paired_table(a, b) == PairedTable(both=1, a_only=1, b_only=1, neither=1)
    result = compare("A", a, "B", b)
    assert (result.n, result.a_rate, result.b_rate, result.diff) == (4, 50.0, 50.0, 0.0)
    assert result.to_dict()["ci95"] == list(result.ci95)
    a_better = compare("A", {i: i < 10 for i in range(20)}, "B", {i: False for i in range(20)})
    assert a_better.diff == 50.0 and a_better.p == pytest.approx(2 / 2**10)
    assert a_better.ci95[0] > 0  # ten discordant tasks all one way: the interval excludes 0
    with pytest.raises(ValueError, match="share no evaluated task"):
        paired_table({"x": True}, {"y": True})


def test_classifier_figures_count_against_the_truth():
    predicted = [True, True, False, False, True]
    truth = [True, False, False, True, True]  # tp 2, fp 1, fn 1, tn 1
    assert classifier_figures(predicted, truth) == {
        "accuracy": pytest.approx(3 / 5),
        "balanced_accuracy": pytest.approx((2 / 3 + 1 / 2) / 2),
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "specificity": pytest.approx(1 / 2),
        "n_success": 3,
        "n_failure": 2,
    }
    no_success = classifier_figures([True, False], [False, False])
    assert no_success["recall"] is None and no_success["balanced_accuracy"] is None
    assert no_success["specificity"] == 0.5 and no_success["precision"] == 0.0
