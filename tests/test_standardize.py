import pandas as pd
import pytest

from sae.errors import SaeInputError
from sae.standardize import age_range, standard_weights, user_weights


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Under.40", (0, 39)),
        ("<1", (0, 0)),
        ("40.59", (40, 59)),
        ("40-59", (40, 59)),
        ("70+", (70, float("inf"))),
        ("85 and over", (85, float("inf"))),
    ],
)
def test_age_labels(label, expected):
    assert age_range(label) == expected


def test_pennsylvania_bands_sum_the_2000_standard():
    # computed here from the 2000 U.S. standard million (SEER 19 groups): 0-39 = 569,682 etc.
    weights = standard_weights(["Under.40", "40.59", "60.69", "70+"])
    assert weights.sum() == pytest.approx(1.0)
    assert weights["Under.40"] == pytest.approx(569_682 / 1_000_000, abs=1e-6)
    assert weights["70+"] == pytest.approx((31_773 + 26_999 + 17_842 + 15_508) / 1e6, abs=1e-6)


def test_adult_bands_truncate_and_renormalise_the_standard():
    # issue #10: 18+ bands. By hand from the 2000 standard million: 18-44 = 2/5 of 15-19 (72,169)
    # + 20-24 ... 40-44 = 393,531.6; all 18+ = 1e6 − 258,001.4 = 741,998.6; share 0.530367
    weights = standard_weights(["18-44", "45-64", "65+"])
    assert weights.sum() == pytest.approx(1.0)
    assert weights["18-44"] == pytest.approx(393_531.6 / 741_998.6, abs=1e-6)
    closed = standard_weights(["40-64"])  # a single closed band: everything in it
    assert closed["40-64"] == pytest.approx(1.0)


def test_bands_that_leave_gaps_are_errors():
    with pytest.raises(SaeInputError, match="gap or overlap before '60-69'"):
        standard_weights(["Under.40", "40-49", "60-69", "70+"])
    with pytest.raises(SaeInputError, match="not an age range"):
        standard_weights(["young", "old"])


def test_user_weights_are_normalised_and_complete():
    table = pd.DataFrame({"age": ["young", "old"], "weight": [3.0, 1.0]})
    assert user_weights(table, ["young", "old"], "w.csv").to_dict() == {"young": 0.75, "old": 0.25}
    with pytest.raises(SaeInputError, match="no weight for age band"):
        user_weights(table, ["young", "middle"], "w.csv")
