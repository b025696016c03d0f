"""Scotland lip cancer BYM2 through the public API reproduces the Stan case study.

Reference values: benchmarks/scotland_lip/reference_results_stan_case_study.csv (Morris, Stan case
study, stan-dev/example-models@2847a61, icar_stan.html, BYM2 rows). Tolerance: 3.5 combined Monte
Carlo standard errors, the reference's sd/√ESS and ours.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

import sae

REFERENCE = ROOT / "benchmarks" / "scotland_lip" / "reference_results_stan_case_study.csv"


@pytest.fixture(scope="module")
def scotland():
    return sae.fit(ROOT / "models" / "scotland_lip_bym2.toml", progress=False)


def stan_bym2(parameter: str) -> pd.Series:
    table = pd.read_csv(REFERENCE)
    rows = table[table["model"].str.startswith("BYM2, bym2") & (table["parameter"] == parameter)]
    return rows.iloc[0]


def mcse(draws: np.ndarray, ess: float) -> float:
    return float(np.std(draws) / np.sqrt(ess))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("parameter", "ours"),
    [("beta0", "intercept"), ("beta1", "beta"), ("sigma", "area_sigma"), ("rho", "area_rho")],
)
def test_posterior_means_match_stan_case_study(scotland, parameter, ours):
    import arviz as az

    reference = stan_bym2(parameter)
    draws = scotland.idata.posterior[ours].to_numpy().ravel()
    ess = float(az.ess(scotland.idata, var_names=[ours])[ours].to_numpy().min())
    tolerance = 3.5 * np.hypot(reference["sd"] / np.sqrt(reference["ess_bulk"]), mcse(draws, ess))
    assert draws.mean() == pytest.approx(reference["mean"], abs=tolerance)
    assert draws.std() == pytest.approx(reference["sd"], rel=0.15)


@pytest.mark.slow
def test_fitted_count_of_district_5_matches(scotland):
    # mu[5] = E_5 × RR_5 (Stan case study: mean 13.8, sd 3.13)
    row = scotland.estimates().set_index("area").loc["5"]
    reference = stan_bym2("mu[5]")
    assert row["mean"] * row["expected"] == pytest.approx(reference["mean"], abs=0.3)
    assert row["flag"] in {"reliable", "caution", "unreliable"}


@pytest.mark.slow
def test_scotland_converges_and_every_district_is_flagged(scotland):
    # Margins, not the flag thresholds: R-hat lands on either side of 1.01 with the seed and the
    # machine's arithmetic (1.003 to 1.015 seen), so the test asserts that nothing is badly off.
    d = scotland.diagnostics
    assert d.max_rhat < 1.05 and d.min_ess_bulk > 100
    assert d.divergences <= 0.01 * d.chains * d.draws
    estimates = scotland.estimates()
    assert len(estimates) == 56 and estimates["flag"].notna().all()
    assert (estimates["lower"] < estimates["mean"]).all() and (
        estimates["mean"] < estimates["upper"]
    ).all()
