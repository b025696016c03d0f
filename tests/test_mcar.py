"""Correlated group fields (`group_effects = "mcar"`, #12): the draws are what the model says,
the correlations are reported with intervals, and the Laplace method refuses the model."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas

import sae
from sae.errors import SaeInputError
from sae.spec_file import spec_from_dict

DATA = {"area_id": "area", "group": "group", "count": "cases", "population": "population"}


def shared_pattern_cells(seed: int = 0, ratio: int = 30):
    """Group B is `ratio` times smaller than A, and both deviate in the same spatial pattern
    (B twice as strongly): simulated truth with seed `seed` on a 5 × 6 grid."""
    rng = np.random.default_rng(seed)
    areas = grid_areas(nrow=5, ncol=6, island=False)
    centroids = areas.geometry.centroid
    pattern = 0.5 * np.cos(centroids.y.to_numpy() / 1500.0)
    rows = []
    for i, area in enumerate(areas["area"]):
        for group, base, population, strength in (("A", 1e-3, 60_000, 0.3),
                                                  ("B", 2e-3, 60_000 // ratio, 0.6)):  # fmt: skip
            rate = base * np.exp(strength * pattern[i] + rng.normal(0, 0.03))
            rows.append({"area": area, "group": group, "population": population,
                         "cases": rng.poisson(rate * population)})  # fmt: skip
    return pd.DataFrame(rows), areas


@pytest.fixture(scope="module")
def mcar_fit():
    cells, areas = shared_pattern_cells()
    spec = spec_from_dict({"data": DATA, "model": {"group_effects": "mcar", "spatial": "none"},
                           "sampler": {"method": "nuts", "chains": 2, "draws": 300, "tune": 300,
                                       "seed": 2}})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, cells=cells, areas=areas, progress=False)


@pytest.mark.slow
def test_mcar_draws_are_sigma_times_the_correlation_factor_times_unit_fields(mcar_fit):
    posterior = mcar_fit.idata.posterior
    correlation = posterior["group_area_correlation"].to_numpy()
    assert np.allclose(np.diagonal(correlation, axis1=-2, axis2=-1), 1.0)
    assert (np.abs(correlation) <= 1.0).all() and np.ptp(correlation[..., 0, 1]) > 0.5
    effect = posterior["group_area_effect"]
    # the empirical correlation of the two groups' deviations follows the drawn correlation
    ordered = np.argsort(correlation[..., 0, 1].ravel())
    a = effect.sel(group="A").to_numpy().reshape(-1, 30)
    b = effect.sel(group="B").to_numpy().reshape(-1, 30)
    low, high = ordered[:100], ordered[-100:]

    def mean_corr(rows):
        return np.mean([np.corrcoef(a[r], b[r])[0, 1] for r in rows])

    assert mean_corr(high) > mean_corr(low) + 0.3
    assert (
        posterior["group_area_rho"].sel(group="A") == posterior["group_area_rho"].sel(group="B")
    ).all()


@pytest.mark.slow
def test_mcar_reports_the_group_correlation_with_its_interval(mcar_fit, tmp_path):
    table = mcar_fit.group_correlations()
    assert list(table[["group", "other_group"]].iloc[0]) == ["A", "B"]
    row = table.iloc[0]
    assert -1 < row["lower"] < row["median"] < row["upper"] < 1
    # simulated truth: the deviations share their pattern; measured P(positive) 0.75 at this seed
    assert row["prob_positive"] > 0.6
    assert "group correlations: A ~ B" in mcar_fit.summary()
    saved = mcar_fit.save(tmp_path / "out")
    assert pd.read_csv(saved / "group_correlations.csv")["median"].iloc[0] == pytest.approx(
        row["median"]
    )


def test_mcar_needs_nuts():
    with pytest.raises(SaeInputError, match='"mcar" needs \\[sampler\\] method = "nuts"'):
        spec_from_dict({"data": DATA, "model": {"group_effects": "mcar"}})


@pytest.mark.slow
def test_the_prior_predictive_draws_mcar_fields(mcar_fit):
    from sae.prior_predictive import draw_parameters

    params = draw_parameters(mcar_fit, 2000, np.random.default_rng(0))
    effect = params["group_area_effect"]  # draws × groups × areas
    assert effect.shape == (2000, 2, 30)
    correlation = np.mean([np.corrcoef(e)[0, 1] for e in effect])
    # LKJ(2) on two groups is symmetric about 0: so is the average empirical correlation
    assert abs(correlation) < 0.05
