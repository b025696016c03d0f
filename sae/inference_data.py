"""A fit's complete ArviZ InferenceData: the draws with the data they were conditioned on.

`Fit.inference_data()` (and `posterior.nc` in a results folder) holds the groups ArviZ needs for
`az.loo`, `az.plot_ppc`, `az.plot_trace` and friends:

    posterior              the draws every method returns (`sae.posterior`)
    sample_stats           the sampler's statistics (NUTS), when it has them
    laplace_check          the Laplace method's importance-sampling check, when it ran
    observed_data          y (row): each likelihood row's count, or its survey estimate; NaN for a
                           censored count, whose range is in constant_data
    constant_data          offset (row: log exposure for Poisson, 0 otherwise), trials, variance
                           (Fay–Herriot sampling variances), y_lower / y_upper (the range of a
                           censored count), X (row, term): the design on the covariates' scale
    log_likelihood         y (chain, draw, row): log p(y_r | draw), the range's probability for a
                           censored count (`sae.checks.row_log_likelihood`)
    posterior_predictive   y (chain, draw, row): data replicated from each draw

Log-likelihoods are stored in float32 and replicated counts as int32 (half the size; the LOO
estimate moves by far less than its standard error). Rows are labelled by their keys (area, group, strata, period) as coordinates of `row`. The last
two groups hold draws × rows values; beyond `MAX_ROW_DRAWS` values they keep the first draws only
(attribute `draws_kept`), so the file stays a bounded size on national maps.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from sae.checks import observed_rows, predictor_draws, row_log_likelihood

MAX_ROW_DRAWS = 20_000_000


def complete_inference_data(fit, seed: int = 0) -> az.InferenceData:
    design, idata = fit.design, fit.idata
    row_coords = {name: ("row", design.keys[name].astype(str).to_numpy())
                  for name in design.keys.columns}  # fmt: skip
    rows = observed_rows(design)
    observed = np.where(rows.censored, np.nan, on_data_scale(rows.response, design))
    observed_data = xr.Dataset({"y": ("row", observed)}, coords=row_coords)
    per_row = {"offset": rows.offset, "trials": rows.trials,
               "variance": rows.variance * design.response_scale**2}  # fmt: skip
    constant = {name: ("row", values) for name, values in per_row.items()
                if np.size(values) == len(observed)}  # what the family uses  # fmt: skip
    constant["X"] = (("row", "term"), design.X * design.scale + design.center)
    if rows.censored.any():
        constant |= {"y_lower": ("row", rows.response.astype(float)),
                     "y_upper": ("row", rows.upper.astype(float))}  # fmt: skip
    constant_data = xr.Dataset(constant, coords=row_coords | {"term": list(design.terms)})
    groups = {name: idata[name] for name in idata.groups()}
    groups |= {"observed_data": observed_data, "constant_data": constant_data}
    groups |= row_draws(fit, row_coords, seed)
    return az.InferenceData(**groups)


def on_data_scale(values: np.ndarray, design) -> np.ndarray:
    """Survey estimates from the standardised scale they were fitted on (counts unchanged)."""
    return values * design.response_scale + design.response_center


def row_draws(fit, row_coords: dict, seed: int) -> dict[str, xr.Dataset]:
    """log_likelihood and posterior_predictive, with at most `MAX_ROW_DRAWS` values each."""
    chains, draws, n_rows = predictor_draws(fit).shape
    kept = max(1, min(draws, MAX_ROW_DRAWS // max(1, chains * n_rows)))
    eta = predictor_draws(fit)[:, :kept]
    log_lik = row_log_likelihood(fit)[:, :kept].astype(np.float32)
    rng = np.random.default_rng(seed)
    rows = observed_rows(fit.design)
    replicated = fit.spec.family.replicate(rng, rows, eta.reshape(-1, n_rows)).reshape(eta.shape)
    replicated = on_data_scale(replicated, fit.design)
    replicated = replicated.astype(np.float32 if fit.spec.model.family == "gaussian" else np.int32)
    coords = row_coords | {"chain": np.arange(chains), "draw": np.arange(kept)}
    attrs = {"draws_kept": kept, "draws_total": draws}
    dims = ("chain", "draw", "row")
    return {"log_likelihood": xr.Dataset({"y": (dims, log_lik)}, coords=coords, attrs=attrs),
            "posterior_predictive": xr.Dataset({"y": (dims, replicated)}, coords=coords,
                                               attrs=attrs)}  # fmt: skip
