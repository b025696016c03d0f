"""sae.convergence computes ArviZ's rank-normalised R-hat, bulk and tail ESS for many series."""

import arviz as az
import numpy as np
import pytest
import xarray as xr

from sae import convergence


def ar1_chains(chains=4, draws=301, series=40, seed=2):
    """AR(1) chains with autocorrelations 0 to 0.95, one chain shifted and one scaled (so R-hat
    is far from 1 for some series), a series with ties and a constant series (simulated, seed)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(chains, draws, series))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0]
    phi = np.linspace(0.0, 0.95, series)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    x[1] += 0.4
    x[2] *= 1.7
    x[:, :, 0] = np.round(x[:, :, 0])
    x[:, :, 1] = 3.0
    return x


def test_rhat_and_ess_equal_arviz():
    x = ar1_chains()
    dataset = xr.Dataset({"x": (("chain", "draw", "series"), x)})
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat, bulk = convergence.rhat_and_ess(x)
    with pytest.warns(RuntimeWarning):  # ArviZ warns on the constant series, then gives nan
        reference = az.rhat(dataset)["x"].to_numpy()
    assert np.isnan(rhat[1]) and np.isnan(reference[1])
    assert rhat[2:] == pytest.approx(reference[2:], rel=1e-10)
    assert rhat[0] == pytest.approx(reference[0], rel=1e-10)
    assert bulk == pytest.approx(az.ess(dataset, method="bulk")["x"].to_numpy(), rel=1e-10)
    assert convergence.ess_tail(x) == pytest.approx(
        az.ess(dataset, method="tail")["x"].to_numpy(), rel=1e-10
    )
    assert rhat[-1] > 1.05 and bulk[-1] < bulk[2]  # the shifted, slowly mixing series is caught
