"""Model checks for a fit: posterior predictive checks, spatial autocorrelation of residuals, LOO.

- Posterior predictive: replicated data y_rep ~ p(y | θ^(s)) for each draw s; for the total and for
  each group, the posterior predictive p-value P(T(y_rep) ≥ T(y)) (Gelman, Meng & Stern 1996).
  Values near 0 or 1 mean the model does not reproduce that feature of the data.
- Moran's I of the area-level Pearson residuals (observed − fitted)/√fitted over the graph, with a
  permutation p-value (Moran 1950; Cliff & Ord 1981): leftover spatial structure the model missed.
- PSIS-LOO (Vehtari, Gelman & Gabry 2017, via ArviZ) from pointwise log-likelihoods of the data
  rows, for comparing models on the same data (e.g. `group_effects` choices).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from sae.posterior import data_row_predictor

PERMUTATIONS = 999


def predictor_draws(fit) -> np.ndarray:
    """η of every likelihood row (keyed by `fit.design.keys`), per draw: (chain, draw, row)."""
    return fit._cached(("row eta",), lambda: data_row_predictor(fit.idata.posterior, fit.design))


def pointwise_log_likelihood(fit) -> np.ndarray:
    """log p(y_r | η_r^(s)) for every likelihood row r and draw s: array (chain, draw, row), on
    the data's scale (standardised Fay–Herriot estimates carry the Jacobian −log scale)."""
    design = fit.design
    return fit.spec.family.log_density(design.rows, predictor_draws(fit)) - np.log(
        design.response_scale
    )


def loo(fit) -> az.ELPDData:
    """PSIS-LOO of the fit (ArviZ)."""
    values = pointwise_log_likelihood(fit)
    dataset = xr.Dataset({"y": (("chain", "draw", "row"), values)})
    idata = az.InferenceData(posterior=fit.idata.posterior, log_likelihood=dataset)
    return az.loo(idata)


def posterior_predictive(fit, seed: int = 0) -> pd.DataFrame:
    """Observed and replicated totals (overall and per group) with posterior predictive p-values."""
    if fit.spec.model.family == "gaussian":
        raise ValueError("posterior predictive totals are defined for count models")
    rng = np.random.default_rng(seed)
    eta = predictor_draws(fit)
    replicated = fit.spec.family.replicate(rng, fit.design.rows, eta.reshape(-1, eta.shape[-1]))
    observed = fit.design.rows.response
    table = [summary_row("all groups", observed, replicated)]
    for group, members in fit.design.keys.groupby("group").indices.items():
        table.append(summary_row(group, observed[members], replicated[:, members]))
    return pd.DataFrame(table)


def summary_row(label: str, observed: np.ndarray, replicated: np.ndarray) -> dict:
    total = replicated.sum(axis=1)
    lower, upper = np.quantile(total, [0.025, 0.975])
    return {"group": label, "observed": int(observed.sum()), "replicated_mean": float(total.mean()),
            "replicated_lower": float(lower), "replicated_upper": float(upper),
            "p_value": float((total >= observed.sum()).mean())}  # fmt: skip


def morans_i(
    values: np.ndarray, edges: np.ndarray, permutations: int = PERMUTATIONS, seed: int = 0
) -> dict:
    """Moran's I with binary weights over `edges` (each undirected edge once), and the one-sided
    permutation p-value for positive autocorrelation."""
    z = values - values.mean()
    i, j = edges.T
    n, weight_sum = len(values), 2.0 * len(edges)

    def statistic(x):
        return n / weight_sum * 2.0 * np.sum(x[i] * x[j]) / np.sum(x**2)

    observed = statistic(z)
    rng = np.random.default_rng(seed)
    null = np.array([statistic(rng.permutation(z)) for _ in range(permutations)])
    return {"morans_i": float(observed), "expected_under_null": -1.0 / (n - 1),
            "p_value": float((1 + np.sum(null >= observed)) / (permutations + 1))}  # fmt: skip


def residual_morans_i(fit) -> dict:
    """Moran's I of area-level Pearson residuals (counts summed over groups and strata)."""
    keys = fit.design.keys
    mean = fit.spec.family.expected(fit.design.rows, predictor_draws(fit))
    fitted = pd.Series(mean.mean(axis=(0, 1))).groupby(keys["area"].to_numpy()).sum()
    observed = pd.Series(fit.design.rows.response).groupby(keys["area"].to_numpy()).sum()
    graph = fit.inputs.graph
    residual = ((observed - fitted) / np.sqrt(fitted)).reindex(list(graph.ids))
    keep = residual.notna().to_numpy()
    index = np.cumsum(keep) - 1
    edges = graph.edges[keep[graph.edges[:, 0]] & keep[graph.edges[:, 1]]]
    return morans_i(residual.to_numpy()[keep], index[edges])
