"""Tests for course_lib.stats: paired differences by seed, their words, the one-standard-error rule."""

import math

import matplotlib
import numpy as np
import pytest
from scipy import stats as scipy_stats

from course_lib.stats import describe, largest_within_one_se, paired_difference, plot_intervals

matplotlib.use("Agg")


def test_paired_difference_matches_a_one_sample_t_interval_on_the_differences():
    a = np.array([0.91, 0.93, 0.90, 0.95, 0.92, 0.94])
    b = np.array([0.90, 0.90, 0.89, 0.93, 0.90, 0.93])
    d = paired_difference(a, b)
    low, high = scipy_stats.t.interval(0.95, len(a) - 1, loc=(a - b).mean(), scale=scipy_stats.sem(a - b))
    assert d["mean"] == pytest.approx((a - b).mean())
    assert (d["low"], d["high"]) == pytest.approx((low, high))
    assert d["n"] == 6


def test_pairing_removes_noise_that_two_independent_means_would_keep():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.05, 10)  # what the seed does to both settings alike
    a, b = seed_effect + 0.01, seed_effect.copy()
    d = paired_difference(a, b)
    assert d["low"] > 0  # the constant gain of 0.01 is found although the seeds vary by 0.05
    independent_se = math.sqrt(a.var(ddof=1) / 10 + b.var(ddof=1) / 10)
    assert d["se"] < independent_se / 100


def test_nan_pairs_are_dropped_and_too_few_seeds_are_not_compared():
    d = paired_difference([1.0, math.nan, 3.0], [0.0, 1.0, math.nan])
    assert d["n"] == 1 and d["mean"] == 1.0 and math.isnan(d["se"])
    assert describe(d).startswith("not comparable")


def test_describe_says_indistinguishable_when_the_interval_contains_zero():
    assert describe({"mean": 0.004, "se": 0.006, "low": -0.01, "high": 0.018, "n": 10}).startswith(
        "indistinguishable here")
    assert describe({"mean": 0.021, "se": 0.009, "low": 0.001, "high": 0.041, "n": 10}) == "better by 0.021 ± 0.009"
    assert describe({"mean": -0.03, "se": 0.01, "low": -0.05, "high": -0.01, "n": 10}) == "worse by 0.030 ± 0.010"


def test_one_standard_error_rule_picks_the_largest_setting_as_good_as_the_best():
    values = [0.1, 0.2, 0.3, 0.6, 1.0]
    means = [0.90, 0.95, 0.94, 0.949, 0.70]
    ses = [0.01, 0.005, 0.01, 0.01, 0.05]
    assert largest_within_one_se(values, means, ses) == 3  # 0.949 >= 0.95 - 0.005; 0.94 is not, 0.70 is not


def test_plot_intervals_draws_one_row_per_comparison_and_names_the_ones_it_cannot_draw():
    diffs = {"a": paired_difference([1, 2, 3], [0, 1, 2.5]), "b": paired_difference([1.0], [0.0])}
    ax = plot_intervals(diffs)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert any("usable seeds" in t.get_text() for t in ax.texts)
