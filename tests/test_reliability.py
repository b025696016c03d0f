import numpy as np
import pandas as pd
import pytest

from sae.reliability import flag_estimates
from sae.spec import FlagSpec


def table(**columns):
    base = {
        "mean": 100.0,
        "median": 100.0,
        "sd": 5.0,
        "lower": 90.0,
        "upper": 110.0,
        "rhat": 1.0,
        "ess_bulk": 4000.0,
        "observed": 50,
        "has_data": True,
    }
    base.update(columns)
    return pd.DataFrame([base])


DEFAULT_FLAGS = FlagSpec()


def flag(divergences=0, flags=DEFAULT_FLAGS, **columns):
    return flag_estimates(table(**columns), flags, divergences).iloc[0]


def test_reliable_cell_says_why():
    result = flag()
    assert result["flag"] == "reliable"
    assert result["flag_reason"] == "RSE 5%, interval width 20% of the estimate"


@pytest.mark.parametrize(
    ("sd", "expected"),
    [(19.99, "reliable"), (20.0, "caution"), (29.99, "caution"), (30.0, "unreliable")],
)
def test_rse_boundaries(sd, expected):
    # NCHS: RSE ≥ 30% unreliable; sae's default caution band 20–30%
    assert flag(sd=sd)["flag"] == expected


def test_relative_width_boundary():
    # NCHS rates standard: relative interval width > 160% is unreliable
    assert flag(lower=20.0, upper=180.0)["flag"] == "reliable"
    result = flag(lower=20.0, upper=180.01)
    assert (
        result["flag"] == "unreliable"
        and "interval width 160% of the estimate > 160%" in result["flag_reason"]
    )


def test_few_events_is_caution_and_no_data_is_unreliable():
    few = flag(observed=19)
    assert few["flag"] == "caution" and "19 events (< 20)" in few["flag_reason"]
    assert flag(observed=20)["flag"] == "reliable"
    none = flag(observed=0, has_data=False)
    assert none["flag"] == "unreliable" and none["flag_reason"].startswith("no data in this cell")


def test_convergence_failures_make_numbers_unreliable():
    assert flag(rhat=1.011)["flag"] == "unreliable"
    assert flag(ess_bulk=399.0)["flag"] == "unreliable"
    diverged = flag(divergences=3)
    assert diverged["flag"] == "unreliable" and "3 divergent transitions" in diverged["flag_reason"]


def test_reasons_accumulate_and_thresholds_are_configurable():
    result = flag(sd=35.0, observed=5)
    assert result["flag_reason"].count(";") == 1  # RSE and event count both reported
    assert flag(flags=FlagSpec(rse_unreliable=0.5), sd=35.0)["flag"] == "caution"


def test_little_data_is_model_driven_whatever_the_interval():
    # issue #10: 0 events in 500 people, the data carry ~2% of the information: a narrow interval
    # from smoothing must not make it reliable
    result = flag(observed=0, data_share=0.02)
    assert result["flag"] == "model-driven"
    assert "the data carry 2% of the information" in result["flag_reason"]
    assert flag(data_share=0.6)["flag"] == "reliable"


def test_data_only_variance_matches_a_hand_computation():
    # one Poisson stratum: rate 10 per 1,000 in 500 people → 5 expected events,
    # Var_data(θ) = θ² / 5 = 20 (per 1,000)²; two strata with shares ½: ¼ (20 + 20) = 10
    from types import SimpleNamespace

    import scipy.sparse as sp

    from sae.family import Poisson
    from sae.posterior import data_only_variance

    rows = pd.DataFrame({"area": ["a", "a"], "exposure": [500.0, 500.0]})
    grid = SimpleNamespace(
        rows=rows, aggregation=lambda *a: (None, sp.csr_array([[0.5], [0.5]]))
    )  # fmt: skip
    variance = data_only_variance(
        np.array([10.0, 10.0]), grid, ("area",), None, None, Poisson(), 1000.0
    )
    assert variance == pytest.approx([10.0])


def test_a_stratum_without_people_and_without_weight_adds_no_variance():
    # Pennsylvania's map-wide non-white rate had no data share: strata with no population get a
    # stored weight 0, and 0 × an infinite variance was nan. Weight 0: no contribution; a weighted
    # stratum without exposure: no data (infinite variance)
    from types import SimpleNamespace

    import scipy.sparse as sp

    from sae.family import Poisson
    from sae.posterior import data_only_variance

    rows = pd.DataFrame({"area": ["a", "a"], "exposure": [500.0, 0.0]})
    weights = sp.csr_array((np.array([1.0, 0.0]), np.array([0, 0]), np.array([0, 1, 2])))
    assert weights.nnz == 2  # the zero is stored, as the aggregation stores it
    grid = SimpleNamespace(rows=rows, aggregation=lambda *a: (None, weights))
    mean = np.array([10.0, 10.0])
    assert data_only_variance(mean, grid, ("area",), None, None, Poisson(), 1000.0) == (
        pytest.approx([20.0])
    )
    both = SimpleNamespace(rows=rows, aggregation=lambda *a: (None, sp.csr_array([[0.5], [0.5]])))
    assert np.isinf(data_only_variance(mean, both, ("area",), None, None, Poisson(), 1000.0)[0])


def test_rse_uses_the_size_of_a_negative_mean():
    # identity-scale Fay–Herriot estimates can be negative: RSE = sd / |mean|
    assert flag(mean=-5.0, sd=3.0, lower=-11.0, upper=1.0)["flag"] == "unreliable"


@pytest.mark.parametrize(
    ("mean", "sd", "lower", "upper", "expected"),
    [
        (0.40, 0.02, 0.36, 0.44, "reliable"),  # n_eff 600, width 0.08, relative 20%
        (0.40, 0.10, 0.22, 0.60, "unreliable"),  # n_eff 24 < 30
        (0.50, 0.05, 0.34, 0.66, "unreliable"),  # width 0.32 ≥ 0.30
        (0.05, 0.02, 0.02, 0.10, "unreliable"),  # width 0.08 > 0.05 and relative 160% > 130%
        (0.95, 0.02, 0.90, 0.98, "unreliable"),  # the same judged on 1 − p: symmetric
    ],
)
def test_proportions_follow_parker_2017(mean, sd, lower, upper, expected):
    table_ = table(mean=100 * mean, median=100 * mean, sd=100 * sd, lower=100 * lower,
                   upper=100 * upper)  # fmt: skip
    result = flag_estimates(table_, DEFAULT_FLAGS, 0, proportion_scale=100.0).iloc[0]
    assert result["flag"] == expected, result["flag_reason"]


def test_rule_sets_quick2024_and_uscs():
    quick = FlagSpec(rules="quick2024")
    assert flag(flags=quick, median=100.0, lower=60.0, upper=140.0)["flag"] == "reliable"
    assert flag(flags=quick, median=100.0, lower=40.0, upper=141.0)["flag"] == "unreliable"
    uscs = FlagSpec(rules="uscs")
    assert flag(flags=uscs, observed=15)["flag"] == "unreliable"
    assert flag(flags=uscs, observed=16)["flag"] == "reliable"
