"""Prior predictive sampling for sae's models.

PyMC cannot sample the model's prior itself (the ICAR field is a flat variable with a potential),
so the prior is drawn directly, matching `sae.priors` and `sae.bym2`:

- σ ~ Exponential(λ) (PC) or N⁺(0, 1); ρ ~ the PC prior (exactly, through its distance) or
  Beta(½, ½); u ~ N(0, L⁺) on each connected component (eigenvectors of the Laplacian), v ~ N(0, I),
  combined as b = σ(√(ρ/s) u + √(1 − ρ) v), with b = σ v on islands;
- fixed effects from their normal priors on the scale the model puts them (`PriorSet.fixed_scale`);
- with periods, f_t, f_gt and δ_it: σ from the same σ prior, random walks u ~ N(0, Q⁻) under their
  constraints (eigenvectors of Q), scaled by 1/√s (`sae.random_walk`), iid parts N(0, 1);
- replicated data: Poisson(E θ), Binomial(n, p) or N(η, ψ) for Fay–Herriot models.

`prior_predictive(fit, draws)` returns a DataFrame per draw with the hyperparameters and the
replicated total, and the replicated data rows as an array, for checking that a prior allows
plausible data (Gabry et al. 2019, "Visualization in Bayesian workflow").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sae import random_walk
from sae.predictor import bym2_combination, iid_combination, linear_predictor, structure_weights
from sae.priors import icar_spectrum, pc_rho_rate, prior_set, rho_from_distance


def draw_sigma(prior, rng, size):
    if prior.sigma == "pc":
        return rng.exponential(1.0 / prior.sigma_rate, size)
    return np.abs(rng.normal(0.0, 1.0, size))


def draw_rho(prior, spectrum, rng, size):
    """ρ from its prior: Beta(½, ½), or the PC prior drawn exactly as d(ρ) ~ Exponential(λ) and
    ρ = d⁻¹(d), inverted by interpolation on a fine logit grid."""
    if prior.rho == "beta":
        return rng.beta(0.5, 0.5, size)
    return rho_from_distance(rng.exponential(1.0 / pc_rho_rate(prior, spectrum), size), spectrum)


def draw_icar(graph, rng, shape) -> np.ndarray:
    """u ~ N(0, L⁺) on every component with more than one area (0 on islands); shape + (n_areas,)."""
    u = np.zeros((*shape, graph.n_areas))
    for nodes in graph.component_nodes():
        if len(nodes) > 1:
            values, vectors = np.linalg.eigh(graph.laplacian(nodes))
            z = rng.normal(size=(*shape, len(nodes) - 1))
            u[..., nodes] = (z / np.sqrt(values[1:])) @ vectors[:, 1:].T
    return u


def draw_field(graph, prior, spectrum, rng, shape):
    """A BYM2 field per leading index: returns (σ, ρ, b)."""
    sigma, rho = draw_sigma(prior, rng, shape), draw_rho(prior, spectrum, rng, shape)
    u, v = draw_icar(graph, rng, shape), rng.normal(size=(*shape, graph.n_areas))
    return sigma, rho, bym2_combination(sigma, rho, u, v, *structure_weights(graph))


def draw_parameters(fit, draws: int, rng) -> dict:
    spec, design, graph = fit.spec, fit.design, fit.inputs.graph
    prior = prior_set(spec)
    spectrum = icar_spectrum(graph) if prior.rho == "pc" else None
    k, g = len(design.terms), len(design.groups)
    slopes = rng.normal(0.0, prior.beta_sd, (draws, k))
    intercept = rng.normal(0.0, prior.intercept_sd, draws)
    if (
        prior.fixed_scale == "original"
    ):  # priors on reported coefficients: map to the sampler's scale
        beta = slopes * design.scale
        intercept = intercept + (beta * design.center / design.scale).sum(axis=1)
    else:
        beta, intercept = slopes, design.base_level + intercept
    group_effect = rng.normal(0.0, prior.categorical_sd, (draws, g))
    group_effect[:, design.baseline_group] = 0.0
    if spec.model.spatial == "bym2":
        sigma, rho, area = draw_field(graph, prior, spectrum, rng, (draws,))
    else:
        sigma, rho = draw_sigma(prior, rng, draws), np.full(draws, np.nan)
        area = iid_combination(sigma, rng.normal(size=(draws, graph.n_areas)))
    params = {"intercept": intercept, "group_effect": group_effect, "beta": beta, "area_effect": area,
              "sigma": sigma, "rho": rho}  # fmt: skip
    if spec.model.group_effects == "iid":
        params["group_area_effect"] = iid_combination(
            draw_sigma(prior, rng, (draws, g)), rng.normal(size=(draws, g, graph.n_areas))
        )
    elif spec.model.group_effects == "bym2":
        params["group_area_effect"] = draw_field(graph, prior, spectrum, rng, (draws, g))[2]
    elif spec.model.group_effects == "mcar":
        params["group_area_effect"] = draw_mcar(graph, prior, spectrum, rng, draws, g)
    if design.periods:
        params |= draw_time_effects(spec, prior, len(design.periods), g, graph.n_areas, rng, draws)
    return params


def draw_time_effects(spec, prior, periods: int, groups: int, areas: int, rng, draws: int) -> dict:
    """f_t, f_gt and δ_it from their priors (see the module's docstring)."""
    model, effects = spec.model, {}

    def series(kind: str, shape: tuple) -> np.ndarray:
        sigma = draw_sigma(prior, rng, shape)[..., None]
        if kind == "iid":
            return sigma * rng.normal(size=(*shape, periods))
        return sigma * draw_walk(periods, random_walk.order_of(kind), rng, shape)

    if model.trend != "none":
        effects["time_effect"] = series(model.trend, (draws,))
    if model.group_trend != "none":
        effects["group_time_effect"] = series(model.group_trend, (draws, groups))
    if model.interaction == "iid":
        effects["area_time_effect"] = draw_sigma(prior, rng, draws)[:, None, None] * rng.normal(
            size=(draws, areas, periods)
        )
    return effects


def draw_walk(periods: int, order: int, rng, shape: tuple) -> np.ndarray:
    """Scaled random walks under their constraints: shape + (periods,)."""
    values, vectors = np.linalg.eigh(random_walk.precision(periods, order).toarray())
    keep = values > 1e-9 * values.max()
    z = rng.normal(size=(*shape, int(keep.sum())))
    walk = (z / np.sqrt(values[keep])) @ vectors[:, keep].T
    return walk / np.sqrt(random_walk.scaling_factor(periods, order))


def draw_mcar(graph, prior, spectrum, rng, draws: int, groups: int) -> np.ndarray:
    """MCAR deviations (`sae.nuts.mcar_field`): unit BYM2 fields sharing ρ, mixed by the Cholesky
    factor of an LKJ(2) correlation drawn with PyMC, scaled by each group's σ."""
    import pymc as pm

    rho = draw_rho(prior, spectrum, rng, draws)
    u, v = draw_icar(graph, rng, (draws, groups)), rng.normal(size=(draws, groups, graph.n_areas))
    unit = bym2_combination(np.ones((draws, groups)), rho[:, None], u, v, *structure_weights(graph))
    correlation = pm.draw(pm.LKJCorr.dist(n=groups, eta=2.0, return_matrix=True), draws=draws,
                          random_seed=rng)  # fmt: skip
    mixed = np.einsum(
        "dgh,dha->dga", np.linalg.cholesky(correlation.reshape(draws, groups, groups)), unit
    )
    return draw_sigma(prior, rng, (draws, groups))[..., None] * mixed


def prior_predictive(fit, draws: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Draws from the prior and replicated data for the fit's data rows: (summary, y_rep)."""
    rng = np.random.default_rng(seed)
    params = draw_parameters(fit, draws, rng)
    design = fit.design
    eta = linear_predictor(params, design.area, design.group, design.X, design.period)
    replicated = fit.spec.family.replicate(rng, design.rows, eta)
    summary = pd.DataFrame({"sigma": params["sigma"], "rho": params["rho"],
                            "replicated_total": replicated.sum(axis=1)})  # fmt: skip
    return summary, replicated
