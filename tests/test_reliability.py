import pandas as pd
import pytest

from sae.reliability import flag_estimates
from sae.spec import FlagSpec


def table(**columns):
    base = {
        "mean": 100.0,
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
