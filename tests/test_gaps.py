"""Gap arithmetic against hand-computed values from known draws, and gap-flag boundaries."""

import numpy as np
import pandas as pd
import pytest

from sae.gaps import compare_draws
from sae.reliability import flag_gaps
from sae.spec import FlagSpec


def test_ratio_difference_and_probability_from_known_draws():
    # four draws of two places; computed by hand
    target = np.array([[2.0, 10.0], [4.0, 10.0], [6.0, 10.0], [8.0, 10.0]])
    reference = np.array([[1.0, 20.0], [2.0, 20.0], [3.0, 20.0], [4.0, 5.0]])
    table = compare_draws(target, reference, interval=0.5)
    # ratios per draw: 2, 2, 2, 2 and 0.5, 0.5, 0.5, 2: medians 2 and 0.5
    assert table["ratio_median"].tolist() == pytest.approx([2.0, 0.5])
    assert table["diff_mean"].tolist() == pytest.approx([2.5, (-10 * 3 + 5) / 4])
    assert table["prob_higher"].tolist() == [1.0, 0.25]
    # 50% interval of the differences 1, 2, 3, 4: numpy's linear quantiles 1.75 and 3.25
    assert table.loc[0, ["diff_lower", "diff_upper"]].tolist() == pytest.approx([1.75, 3.25])


def test_ratio_point_value_is_its_median_and_agrees_with_the_reciprocal():
    # issue #10: with log(θ_g/θ_r) ~ N(0, 0.6²) the mean ratio is e^(0.18) = 1.20 although
    # P(higher) = 0.5; the median is 1 and the reciprocal's median is its inverse
    rng = np.random.default_rng(4)
    log_ratio = rng.normal(0.0, 0.6, (40_000, 1))
    target, reference = np.exp(log_ratio), np.ones((40_000, 1))
    forward = compare_draws(target, reference, 0.95)
    backward = compare_draws(reference, target, 0.95)
    assert forward.loc[0, "ratio_median"] == pytest.approx(1.0, abs=0.02)
    assert forward.loc[0, "ratio_median"] * backward.loc[0, "ratio_median"] == pytest.approx(
        1.0, abs=1e-3
    )
    assert forward.loc[0, "prob_higher"] == pytest.approx(0.5, abs=0.01)


def test_ratio_is_not_reported_where_the_reference_reaches_zero():
    # prevalence draws: the second place's reference touches 0 (e.g. arcsine back-transform)
    target = np.array([[0.2, 0.1], [0.3, 0.2]])
    reference = np.array([[0.1, 0.0], [0.1, 0.05]])
    table = compare_draws(target, reference, interval=0.5)
    assert table.loc[0, "ratio_median"] == pytest.approx(2.5)
    assert table.loc[1, ["ratio_median", "ratio_lower", "ratio_upper"]].isna().all()
    assert table.loc[1, "diff_mean"] == pytest.approx(0.125)  # the difference is still reported
    flags = flag_gaps(
        table, pd.Series(["reliable"] * 2), pd.Series(["reliable"] * 2), FlagSpec(), 0.5
    )
    assert "no rate ratio" in flags.loc[1, "flag_reason"]
    assert "no rate ratio" not in flags.loc[0, "flag_reason"]


def gap_flag(prob, lower, upper, target="reliable", reference="reliable"):
    table = pd.DataFrame({"ratio_median": [1.0], "ratio_lower": [lower], "ratio_upper": [upper],
                          "diff_lower": [np.nan], "diff_upper": [np.nan], "prob_higher": [prob]})  # fmt: skip
    return flag_gaps(table, pd.Series([target]), pd.Series([reference]), FlagSpec(), 0.95).iloc[0]


@pytest.mark.parametrize(
    ("prob", "lower", "upper", "expected"),
    [
        (0.99, 1.01, 1.8, "clear"),  # the interval excludes 1
        (0.97, 0.98, 2.05, "likely"),  # issue #10: P(higher) 0.97 with an interval through 1
        (0.03, 0.5, 0.99, "clear"),
        (0.80, 0.9, 1.5, "likely"),
        (0.7999, 0.9, 1.5, "uncertain"),
        (0.20, 0.7, 1.1, "likely"),
        (0.5, 0.8, 1.2, "uncertain"),
    ],
)
def test_gap_word_never_contradicts_its_interval(prob, lower, upper, expected):
    assert gap_flag(prob, lower, upper)["flag"] == expected


def test_a_gap_is_flagged_by_its_own_uncertainty_and_names_weak_rates():
    # a certain gap stays clear even when one rate is unreliable; the reason says so
    result = gap_flag(0.999, 1.4, 2.5, reference="unreliable")
    assert result["flag"] == "clear"
    assert "the reference rate is unreliable" in result["flag_reason"]
    assert "P(higher) = 0.999" in result["flag_reason"]
