"""Model checks for a fit: posterior predictive checks, spatial autocorrelation of residuals, LOO.

- Posterior predictive: replicated data y_rep ~ p(y | θ^(s)) for each draw s, and the posterior
  predictive p-value P(T(y_rep, θ) ≥ T(y, θ)) (Gelman, Meng & Stern 1996) of discrepancies that can
  fail: the dispersion (Pearson's χ² = Σ_r (y_r − μ_r)² / Var(y_r | θ), realised against each
  draw's μ), the number of zero counts and the largest count, overall and per group; and the totals
  per group and per group × stratum. The overall and group totals alone cannot fail: the intercept
  and group effects fit them by construction. p-values near 0 or 1 mean the model does not
  reproduce that feature of the data.
- Moran's I of each group's posterior mean deviations c_ig over the graph: spatial structure left
  in iid group effects says `group_effects = "bym2"` may fit better.
- LOO-PIT: for each data row, P(y_rep ≤ y_r | y_−r), randomised for counts (Czado, Gneiting &
  Held 2009: P(y_rep < y_r) + U P(y_rep = y_r), U ~ U(0, 1)), with the leave-one-out posterior
  from PSIS weights (Vehtari, Gelman & Gabry 2017); uniform when the model is calibrated.
- Moran's I of the area-level Pearson residuals (observed − fitted)/√fitted over the graph, with a
  permutation p-value (Moran 1950; Cliff & Ord 1981): leftover spatial structure the model missed.
- PSIS-LOO (Vehtari, Gelman & Gabry 2017, via ArviZ) from pointwise log-likelihoods of the data
  rows, for comparing models on the same data (e.g. `group_effects` choices).
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from sae.posterior import data_row_predictor

PERMUTATIONS = 999


def predictor_draws(fit) -> np.ndarray:
    """η of every likelihood row (keyed by `fit.design.keys`), per draw: (chain, draw, row)."""
    return fit._cached(("row eta",), lambda: data_row_predictor(fit.idata.posterior, fit.design))


def observed_rows(design):
    """The likelihood's rows as their data were observed: with events of unknown group, each
    known count's mean is thinned by its block's share of events without a group
    (`sae.unknown_group`)."""
    rows, unknown = design.rows, design.unknown
    if unknown is None:
        return rows
    return dataclasses.replace(rows, offset=unknown.thinned_offset(rows.offset))


def row_log_likelihood(fit) -> np.ndarray:
    """log p(y_r | η_r^(s)) for every likelihood row r and draw s: array (chain, draw, row), on
    the data's scale (standardised Fay–Herriot estimates carry the Jacobian −log scale)."""
    design = fit.design
    return fit.spec.family.log_density(observed_rows(design), predictor_draws(fit)) - np.log(
        design.response_scale
    )


def pointwise_log_likelihood(fit) -> np.ndarray:
    """The rows' log-likelihoods, followed, when some events have no group, by each block's
    log Poisson(u_b | π̂_b Σ μ): (chain, draw, row [+ block])."""
    values = row_log_likelihood(fit)
    unknown = fit.design.unknown
    if unknown is None:
        return values
    mu = np.exp(predictor_draws(fit) + fit.design.rows.offset)
    blocks = stats.poisson.logpmf(unknown.count, unknown.missing_share * unknown.block_sums(mu))
    return np.concatenate([values, blocks], axis=-1)


def loo(fit) -> az.ELPDData:
    """PSIS-LOO of the fit (ArviZ)."""
    values = pointwise_log_likelihood(fit)
    dataset = xr.Dataset({"y": (("chain", "draw", "row"), values)})
    idata = az.InferenceData(posterior=fit.idata.posterior, log_likelihood=dataset)
    return az.loo(idata)


def posterior_predictive(fit, seed: int = 0) -> pd.DataFrame:
    """Posterior predictive p-values (see the module docstring): one row per statistic and subset
    of the likelihood's rows, with the observed value and the replicated mean and 95% range."""
    if fit.spec.model.family == "gaussian":
        raise ValueError("posterior predictive checks are defined for count models")
    rng = np.random.default_rng(seed)
    eta = predictor_draws(fit)
    eta = eta.reshape(-1, eta.shape[-1])
    rows = observed_rows(fit.design)
    replicated = fit.spec.family.replicate(rng, rows, eta)
    mean = fit.spec.family.expected(rows, eta)
    # for these canonical links the negative Hessian of log p(y | η) is Var(y | η)
    variance = np.maximum(fit.spec.family.newton_terms(rows, eta)[2], 1e-12)
    observed = np.broadcast_to(rows.response, replicated.shape)
    exact = ~rows.censored  # a censored count has no observed value to compare: left out
    keys = fit.design.keys[exact]
    where = np.flatnonzero(exact)
    subsets = [("all rows" if exact.all() else "all exact rows", where)]
    subsets += [(f"group {g}", where[m]) for g, m in keys.groupby("group").indices.items()]
    table = []
    for label, members in subsets:
        sub = np.s_[:, members]
        statistics = {
            "total": (observed[sub].sum(1), replicated[sub].sum(1)),
            "dispersion (Pearson χ²)": (
                ((observed[sub] - mean[sub]) ** 2 / variance[sub]).sum(1),
                ((replicated[sub] - mean[sub]) ** 2 / variance[sub]).sum(1)),
            "zero counts": ((observed[sub] == 0).sum(1), (replicated[sub] == 0).sum(1)),
            "largest count": (observed[sub].max(1), replicated[sub].max(1)),
        }  # fmt: skip
        table += [summary_row(name, label, *pair) for name, pair in statistics.items()]
    strata = [c for c in keys.columns if c not in ("area", "group")]
    if strata:
        for cell, members in keys.groupby(["group", *strata]).indices.items():
            label = " × ".join(f"{k} {v}" for k, v in zip(["group", *strata], cell, strict=True))
            table.append(summary_row("total", label, observed[:, where[members]].sum(1),
                                     replicated[:, where[members]].sum(1)))  # fmt: skip
    return pd.DataFrame(table)


def loo_pit(fit, seed: int = 0) -> dict:
    """Randomised LOO-PIT values of every data row, the Kolmogorov–Smirnov test of their uniformity,
    and how many rows' PSIS weights are unreliable (k̂ > 0.7: their PIT values are too)."""
    if fit.spec.model.family == "gaussian":
        raise ValueError("the randomised LOO-PIT is defined for count models")
    rng = np.random.default_rng(seed)
    rows, family = observed_rows(fit.design), fit.spec.family
    eta = predictor_draws(fit)
    eta = eta.reshape(-1, eta.shape[-1])
    log_lik = row_log_likelihood(fit).reshape(eta.shape)
    log_weights, k_hat = az.psislw(-log_lik.T)  # rows × draws, normalised per row
    weights = np.exp(log_weights).T
    below = (weights * family.below(rows, eta)).sum(axis=0)
    at = (weights * np.exp(log_lik)).sum(axis=0)
    pit = below + rng.uniform(size=len(below)) * at
    test = stats.kstest(pit, "uniform")
    return {"pit": pit, "ks_statistic": float(test.statistic), "p_value": float(test.pvalue),
            "pareto_k_over_0.7": int((k_hat > 0.7).sum())}  # fmt: skip


def summary_row(statistic: str, rows: str, observed: np.ndarray, replicated: np.ndarray) -> dict:
    """One statistic: T(y) (its mean over draws when it depends on θ), the replicated mean and
    95% range, and the mid-p-value P(T(y_rep, θ) > T(y, θ)) + ½ P(T(y_rep, θ) = T(y, θ)) over the
    draws (counts tie: with no zeros anywhere, the zero-count check says 0.5, not 1)."""
    lower, upper = np.quantile(replicated, [0.025, 0.975])
    return {"statistic": statistic, "rows": rows, "observed": float(np.mean(observed)),
            "replicated_mean": float(replicated.mean()), "replicated_lower": float(lower),
            "replicated_upper": float(upper),
            "p_value": float((replicated > observed).mean() + 0.5 * (replicated == observed).mean())}  # fmt: skip


def group_deviation_morans_i(fit) -> pd.DataFrame:
    """Moran's I of each group's posterior mean group × area deviations (none without them)."""
    posterior = fit.idata.posterior
    if "group_area_effect" not in posterior:
        return pd.DataFrame(columns=["group", "morans_i", "expected_under_null", "p_value"])
    deviations = posterior["group_area_effect"].mean(("chain", "draw"))
    edges = fit.inputs.graph.edges
    return pd.DataFrame([
        {"group": group, **morans_i(deviations.sel(group=group).to_numpy(), edges)}
        for group in deviations["group"].to_numpy()
    ])  # fmt: skip


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
    exact = ~fit.design.rows.censored  # censored counts have no observed value: left out
    area = fit.design.keys["area"].to_numpy()[exact]
    mean = fit.spec.family.expected(observed_rows(fit.design), predictor_draws(fit))[..., exact]
    fitted = pd.Series(mean.mean(axis=(0, 1))).groupby(area).sum()
    observed = pd.Series(fit.design.rows.response[exact]).groupby(area).sum()
    graph = fit.inputs.graph
    residual = ((observed - fitted) / np.sqrt(fitted)).reindex(list(graph.ids))
    keep = residual.notna().to_numpy()
    index = np.cumsum(keep) - 1
    edges = graph.edges[keep[graph.edges[:, 0]] & keep[graph.edges[:, 1]]]
    return morans_i(residual.to_numpy()[keep], index[edges])
