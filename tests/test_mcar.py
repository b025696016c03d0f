"""Correlated group fields (`group_effects = "mcar"`, #12): the draws are what the model says,
the correlations are reported with intervals, and the Laplace method's version of the model (a
correlated prior precision) agrees with it."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas

import sae
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


def test_partial_correlations_under_their_beta_priors_give_the_lkj_prior():
    from sae.correlated_fields import (
        correlation_matrix,
        pairs_below_diagonal,
        partial_correlation_shape,
    )

    rng = np.random.default_rng(0)
    groups = 3
    shapes = [partial_correlation_shape(groups, j) for _, j in pairs_below_diagonal(groups)]
    partials = np.column_stack([2 * rng.beta(b, b, 40_000) - 1 for b in shapes])
    r = correlation_matrix(partials, groups)
    assert np.allclose(np.diagonal(r, axis1=1, axis2=2), 1.0)
    assert (np.linalg.eigvalsh(r) > 0).all()
    # LKJ(η): every correlation is Beta(η − 1 + G/2) on (−1, 1), variance 1 / (2η − 1 + G) = 1/6
    for i, j in pairs_below_diagonal(groups):
        assert r[:, i, j].var() == pytest.approx(1 / 6, abs=0.006)
        assert abs(r[:, i, j].mean()) < 0.01


def test_the_laplace_prior_of_correlated_fields_is_normalised_in_the_correlation():
    """½ log |Q(θ)| + ½ log |C Q(θ)⁻¹ Cᵀ| (dense, on a small grid) changes with R exactly as
    `CorrelatedFields.log_normaliser` says, and Q(θ)'s group blocks are R⁻¹ ⊗ (I, Q_ICAR)."""
    from sae.fit import design_for
    from sae.inputs import load_inputs
    from sae.latent import latent_model

    cells, areas = shared_pattern_cells()
    spec = spec_from_dict({"data": DATA, "model": {"group_effects": "mcar", "spatial": "none"},
                           "sampler": {"method": "laplace"}})  # fmt: skip
    inputs = load_inputs(spec, cells=cells, areas=areas)
    design = design_for(spec, inputs)
    model = latent_model(spec, design, inputs.graph, spec.family)
    correlated = model.correlated
    index = [k for k, h in enumerate(model.hyperparameters) if h.kind == "correlation"]
    assert len(index) == 1
    values = {}
    for z in (-0.6, 0.0, 0.8):
        theta = model.natural(np.array([h.start for h in model.hyperparameters]))
        theta[index[0]] = z
        q = model.prior_precision(theta).toarray()
        c = model.constraints.toarray()
        dense = 0.5 * (np.linalg.slogdet(q)[1]
                       + np.linalg.slogdet(c @ np.linalg.solve(q, c.T))[1])  # fmt: skip
        values[z] = (dense, correlated.log_normaliser(theta))
        v = model.group_fields[0].v
        n = inputs.graph.n_areas
        assert q[v, v + n] == pytest.approx(-z / (1 - z**2))  # (R⁻¹)_AB on the V blocks
    for z in (-0.6, 0.8):
        assert values[z][0] - values[0.0][0] == pytest.approx(values[z][1] - values[0.0][1],
                                                              rel=1e-6)  # fmt: skip


def test_the_laplace_method_agrees_with_nuts_on_correlated_group_fields(mcar_fit):
    cells, areas = shared_pattern_cells()
    spec = mcar_fit.spec.replace(sampler={"method": "laplace"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        laplace = sae.fit(spec, cells=cells, areas=areas, progress=False)
    assert laplace.diagnostics.method == "laplace"
    nuts_r, laplace_r = mcar_fit.group_correlations(), laplace.group_correlations()
    # measured against 4 × 1000 NUTS draws: median 0.31 vs 0.22, interval [−0.68, 0.89] vs
    # [−0.80, 0.90]; the correlation is weakly identified here, so the margins are wide
    for column in ("median", "lower", "upper"):
        assert abs(laplace_r[column].iloc[0] - nuts_r[column].iloc[0]) < 0.3, column
    nuts, approx = (f.estimates().set_index(["area", "group"]) for f in (mcar_fit, laplace))
    # measured against these 2 × 300 NUTS draws: means within 0.18 sd, interval ends within
    # 0.67 sd (group B has about 4 events per cell); against 4 × 1000 draws, within 7.5%
    for column, margin in (("mean", 0.35), ("lower", 1.0), ("upper", 1.0)):
        assert np.median(np.abs(approx[column] / nuts[column] - 1)) < 0.03, column
        assert (np.abs(approx[column] - nuts[column]) / nuts["sd"]).max() < margin, column


@pytest.mark.slow
def test_the_prior_predictive_draws_mcar_fields(mcar_fit):
    from sae.prior_predictive import draw_parameters

    params = draw_parameters(mcar_fit, 2000, np.random.default_rng(0))
    effect = params["group_area_effect"]  # draws × groups × areas
    assert effect.shape == (2000, 2, 30)
    correlation = np.mean([np.corrcoef(e)[0, 1] for e in effect])
    # LKJ(2) on two groups is symmetric about 0: so is the average empirical correlation
    assert abs(correlation) < 0.05
