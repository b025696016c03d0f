"""The NUTS method: the model in PyMC, sampled with nutpie (numba) or PyMC's own NUTS.

For area i, group g, stratum k:

    y_igk ~ family(η_igk),   η_igk = offset + α + α_g + x_igk β + b_i + c_ig
    b = σ (√(ρ/s) u + √(1 − ρ) v),  v ~ N(0, I),  u ~ ICAR (per component, sum to zero)
    c_ig = 0 | σ_g z_ig (iid) | a BYM2 field per group
    with periods t: + σ_f f_t/√s + σ_g f_gt (/√s) + σ_δ δ_it (`time_effects`, `sae.random_walk`)

The ICAR log density is −½ Σ_(i~j) (u_i − u_j)² over the edge list, with a soft sum-to-zero
constraint Σ_c u ~ N(0, 0.001 n_c) per component (as in Morris et al. 2019): cost O(edges).
Islands have no structured part. The same model, as a latent Gaussian model, is `sae.latent`;
`tests/test_latent.py` checks that both give the same log posterior density.

After sampling, the draws are reduced to the variables every method returns (`sae.posterior`):
the sampler's internal parameters (non-centred z, the ICAR components) are not kept.

References
----------
Besag, York & Mollié (1991). Ann. Inst. Stat. Math. 43:1-20.
Riebler, Sørbye, Simpson & Rue (2016). Stat. Methods Med. Res. 25(4):1145-1165.
Hoffman & Gelman (2014). The No-U-Turn Sampler. JMLR 15:1593-1623.
"""

from __future__ import annotations

import time

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from sae import random_walk
from sae.design import Design
from sae.diagnostics import Diagnostics, mcmc_diagnostics
from sae.family import Family
from sae.graph import AreaGraph
from sae.posterior import without_baseline
from sae.predictor import (
    TIME_EFFECTS,
    bym2_combination,
    iid_combination,
    linear_predictor,
    structure_weights,
)
from sae.priors import PriorSet, icar_spectrum, mixing_rho, prior_set, scale_sigma
from sae.spec import SamplerSpec, Spec
from sae.threads import sampler_cores

SUM_TO_ZERO_SCALE = 0.001
KEPT = ("intercept", "beta", "group_effect", "area_effect", "area_sigma", "area_rho",
        "group_area_sigma", "group_area_rho", *TIME_EFFECTS, "time_sigma", "group_time_sigma",
        "area_time_sigma")  # fmt: skip


def run_nuts(
    spec: Spec, design: Design, graph: AreaGraph, family: Family, progress: bool
) -> tuple[az.InferenceData, Diagnostics, dict[str, float]]:
    """Build, sample, judge: the draws in the common form, their diagnostics and the timings."""
    start = time.perf_counter()
    model = build(design, graph, spec, family)
    seconds = {"build": time.perf_counter() - start}
    idata, sampler_seconds = sample(model, spec.sampler, progress)
    seconds |= sampler_seconds
    start = time.perf_counter()
    common = common_draws(idata, design, graph, spec.model.group_effects)
    diagnostics = mcmc_diagnostics(common, spec.flags)  # of what users see, not the sampler's z
    seconds["diagnostics"] = time.perf_counter() - start
    return common, diagnostics, seconds


def build(design: Design, graph: AreaGraph, spec: Spec, family: Family) -> pm.Model:
    """The PyMC model, with dims ``area``, ``group`` and ``term``."""
    prior = prior_set(spec)
    needs_spectrum = spec.model.spatial == "bym2" or spec.model.group_effects in ("bym2", "mcar")
    spectrum = icar_spectrum(graph) if prior.rho == "pc" and needs_spectrum else None
    coords = {
        "area": list(graph.ids),
        "group": list(design.groups),
        "other_group": list(design.groups),
        "term": list(design.terms),
        "row": np.arange(len(design.area)),
        **({"period": list(design.periods)} if design.periods else {}),
    }
    with pm.Model(coords=coords) as model:
        params = fixed_effects(design, prior)
        if spec.model.spatial == "bym2":
            field = bym2_field("area", graph, prior, spectrum)
        else:  # independent area effects: the plain Fay–Herriot (or Poisson-lognormal) model
            sigma = scale_sigma("area_sigma", prior)
            field = iid_combination(sigma, pm.Normal("area_unstructured", 0.0, 1.0, dims="area"))
        params["area_effect"] = pm.Deterministic("area_effect", field, dims="area")
        if spec.model.group_effects == "iid":
            sigma = scale_sigma("group_area_sigma", prior, dims="group")
            z = pm.Normal("group_area_z", 0.0, 1.0, dims=("group", "area"))
            params["group_area_effect"] = iid_combination(sigma, z)
        elif spec.model.group_effects == "bym2":
            params["group_area_effect"] = bym2_field("group_area", graph, prior, spectrum, "group")
        elif spec.model.group_effects == "mcar":
            params["group_area_effect"] = mcar_field(graph, prior, spectrum, len(design.groups))
        if design.periods:
            params |= time_effects(design, graph, spec, prior)
        eta = linear_predictor(params, design.area, design.group, design.X, design.period)
        family.pymc_likelihood(eta, design.rows)
        if design.unknown is not None:
            unknown_group_term(design, spec, pt.exp(eta + design.rows.offset))
    return model


def time_effects(design: Design, graph: AreaGraph, spec: Spec, prior: PriorSet) -> dict:
    """f_t, f_gt and δ_it as [model] trend, group_trend and interaction name them, recorded as
    Deterministics (time_effect, group_time_effect, area_time_effect)."""
    model, effects = spec.model, {}
    if model.trend != "none":
        effects["time_effect"] = pm.Deterministic(
            "time_effect", time_series("time", model.trend, prior, design), dims="period"
        )
    if model.group_trend != "none":
        effects["group_time_effect"] = pm.Deterministic(
            "group_time_effect", time_series("group_time", model.group_trend, prior, design, "group"),
            dims=("group", "period"),
        )  # fmt: skip
    if model.interaction == "iid":
        sigma = scale_sigma("area_time_sigma", prior)
        z = pm.Normal("area_time_z", 0.0, 1.0, dims=("area", "period"))
        effects["area_time_effect"] = pm.Deterministic(
            "area_time_effect", sigma * z, dims=("area", "period")
        )
    return effects


def time_series(prefix: str, kind: str, prior: PriorSet, design: Design, group_dim=None):
    """σ z (iid), or σ u/√s with u a random walk of the kind's order (`sae.random_walk`): its
    kernel −½‖D u‖² and a soft version of each constraint, as the ICAR's sum-to-zero (O(T))."""
    dims = (group_dim, "period") if group_dim else "period"
    sigma = scale_sigma(f"{prefix}_sigma", prior, dims=group_dim)
    sigma = sigma[:, None] if group_dim else sigma
    if kind == "iid":
        return sigma * pm.Normal(f"{prefix}_z", 0.0, 1.0, dims=dims)
    periods, order = len(design.periods), random_walk.order_of(kind)
    walk = pm.Flat(f"{prefix}_structured", dims=dims)
    rows = random_walk.constraint_rows(periods, order)
    soft = -0.5 * (pt.dot(walk, rows.T) ** 2).sum() / (SUM_TO_ZERO_SCALE * periods)
    pm.Potential(f"{prefix}_walk", random_walk.log_density(walk, periods, order) + soft)
    return sigma * walk / np.sqrt(random_walk.scaling_factor(periods, order))


def unknown_group_term(design: Design, spec: Spec, mu) -> None:
    """Events of unknown group (`sae.unknown_group`): missing at random, or with the spec's odds."""
    odds = spec.model.unknown_group_odds
    if odds is None:
        design.unknown.pymc_potential(mu)
        return
    in_group = design.group == list(design.groups).index(odds.group)
    design.unknown.pymc_potential(mu, design.rows.response, float(np.log(odds.odds)), in_group)


def fixed_effects(design: Design, prior: PriorSet) -> dict:
    """Intercept, group effects (0 for the baseline group) and coefficients, with their priors.

    The sampler sees a centred intercept (around the overall crude log rate) and standardised
    coefficients; `intercept` and `beta` are recorded on the original scale.
    """
    centred = pm.Flat("intercept_centered")
    intercept = design.base_level + centred
    beta_std = pm.Flat("beta_std", dims="term") if design.terms else pt.zeros(0)
    original_intercept, beta = design.reported_coefficients(intercept, beta_std)
    pm.Deterministic("intercept", original_intercept)
    pm.Deterministic("beta", beta, dims="term")
    if prior.fixed_scale == "original":
        pm.Potential("intercept_prior", normal_logp(original_intercept, prior.intercept_sd))
        slopes = beta
    else:
        pm.Potential("intercept_prior", normal_logp(centred, prior.intercept_sd))
        slopes = beta_std
    sd = np.where(design.numeric_terms, prior.beta_sd, prior.categorical_sd)
    pm.Potential("beta_prior", normal_logp(slopes, sd).sum())
    others = len(design.groups) - 1
    raw = pm.Normal("group_effect_raw", 0.0, prior.categorical_sd, shape=others) if others else None
    b = design.baseline_group
    parts = [raw[:b], pt.zeros(1), raw[b:]] if raw is not None else [pt.zeros(1)]
    group_effect = pm.Deterministic("group_effect", pt.concatenate(parts), dims="group")
    return {"intercept": intercept, "beta": beta_std, "group_effect": group_effect}


def normal_logp(x, sd):
    return -0.5 * (x / sd) ** 2


def bym2_field(
    prefix: str, graph: AreaGraph, prior: PriorSet, spectrum, group_dim: str | None = None
):
    """A BYM2 field over areas (one per group when `group_dim` is given), non-centred."""
    dims = (group_dim, "area") if group_dim else "area"
    sigma = scale_sigma(f"{prefix}_sigma", prior, dims=group_dim)
    rho = mixing_rho(f"{prefix}_rho", prior, spectrum, dims=group_dim)
    structured = pm.Flat(f"{prefix}_structured", dims=dims)
    pm.Potential(f"{prefix}_icar", icar_logp(structured, graph))
    unstructured = pm.Normal(f"{prefix}_unstructured", 0.0, 1.0, dims=dims)
    return bym2_combination(sigma, rho, structured, unstructured, *structure_weights(graph))


def mcar_field(graph: AreaGraph, prior: PriorSet, spectrum, groups: int):
    """Group × area deviations correlated across groups: c = diag(σ) L f, where f holds one
    unit-scale BYM2 field per group, all with the same ρ, and L L' = R is the groups' correlation
    matrix with an LKJ(2) prior (Lewandowski, Kurowicka & Joe 2009). Then Cov(c) = diag(σ) R diag(σ)
    ⊗ the BYM2 correlation: the separable multivariate CAR of Jin, Carlin & Banerjee (2005) with
    BYM2 fields (Riebler et al. 2016), so a small group borrows the spatial pattern of the others.
    σ_g and ρ keep the PC priors of the other group effects."""
    sigma = scale_sigma("group_area_sigma", prior, dims="group")
    rho = mixing_rho("group_area_rho", prior, spectrum)
    structured = pm.Flat("group_area_structured", dims=("group", "area"))
    pm.Potential("group_area_icar", icar_logp(structured, graph))
    unstructured = pm.Normal("group_area_unstructured", 0.0, 1.0, dims=("group", "area"))
    unit = bym2_combination(pt.ones(groups), rho, structured, unstructured,
                            *structure_weights(graph))  # fmt: skip
    correlation = pm.LKJCorr("group_area_correlation_raw", n=groups, eta=2.0, return_matrix=True)
    pm.Deterministic("group_area_correlation", correlation, dims=("group", "other_group"))
    return sigma[:, None] * pt.dot(pt.linalg.cholesky(correlation), unit)


def mcar_draws(raw: xr.Dataset, graph: AreaGraph):
    """The MCAR deviations of every draw, and ρ repeated for each group (the common draws' form)."""
    rho = raw["group_area_rho"].to_numpy()
    sigma = raw["group_area_sigma"].to_numpy()
    unit = bym2_combination(np.ones_like(sigma), rho[..., None], raw["group_area_structured"].to_numpy(),
                            raw["group_area_unstructured"].to_numpy(), *structure_weights(graph))  # fmt: skip
    cholesky = np.linalg.cholesky(raw["group_area_correlation"].to_numpy())
    effect = sigma[..., None] * np.einsum("cdgh,cdha->cdga", cholesky, unit)
    repeated = raw["group_area_sigma"].copy(
        data=np.broadcast_to(rho[..., None], sigma.shape).copy()
    )
    return effect, repeated


def icar_logp(u, graph: AreaGraph):
    """−½ Σ_(i~j) (u_i − u_j)², a soft sum-to-zero per component, and N(0, 1) on islands.

    An island's u does not enter the field; its N(0, 1) only keeps the density proper.
    """
    i, j = graph.edges.T
    logp = -0.5 * ((u[..., i] - u[..., j]) ** 2).sum()
    components = [nodes for nodes in graph.component_nodes() if len(nodes) > 1]
    membership = np.zeros((graph.n_areas, len(components)))
    for c, nodes in enumerate(components):
        membership[nodes, c] = 1.0 / (SUM_TO_ZERO_SCALE * len(nodes))
    logp += -0.5 * (pt.dot(u, membership) ** 2).sum()
    islands = np.flatnonzero(graph.is_island)
    if len(islands):
        logp += -0.5 * (u[..., islands] ** 2).sum()
    return logp


def sample(
    model: pm.Model, sampler: SamplerSpec, progress: bool = True
) -> tuple[az.InferenceData, dict[str, float]]:
    """Draw from the posterior of `model` with the spec's backend, chains, draws, tune and seed.

    Returns the draws and the seconds spent compiling and sampling (PyMC's NUTS compiles inside
    its sampling call, so there the two are one figure, under "sample").
    """
    start = time.perf_counter()
    if sampler.backend == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        compiled_at = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            seed=sampler.seed,
            target_accept=sampler.target_accept,
            progress_bar=progress,
            save_warmup=False,
            low_rank_modified_mass_matrix=sampler.low_rank_mass_matrix,
            **sampler_cores(),
        )
        end = time.perf_counter()
        return idata, {"compile": compiled_at - start, "sample": end - compiled_at}
    with model:
        idata = pm.sample(
            draws=sampler.draws,
            tune=sampler.tune,
            chains=sampler.chains,
            random_seed=sampler.seed,
            target_accept=sampler.target_accept,
            progressbar=progress,
            compute_convergence_checks=False,
            **sampler_cores(),
        )
    return idata, {"sample": time.perf_counter() - start}


def common_draws(
    idata: az.InferenceData, design: Design, graph: AreaGraph, group_effects: str
) -> az.InferenceData:
    """The draws as every method returns them (see `sae.posterior`), with the sample stats."""
    raw = idata.posterior
    values = {name: raw[name] for name in KEPT if name in raw}
    dims, group_effect, compared = without_baseline(raw["group_effect"].to_numpy(), design)
    values["group_effect"] = (dims, group_effect)
    if group_effects == "iid":
        effect = iid_combination(raw["group_area_sigma"].to_numpy(), raw["group_area_z"].to_numpy())
    elif group_effects == "bym2":
        effect = bym2_combination(
            raw["group_area_sigma"].to_numpy(), raw["group_area_rho"].to_numpy(),
            raw["group_area_structured"].to_numpy(), raw["group_area_unstructured"].to_numpy(),
            *structure_weights(graph),
        )  # fmt: skip
    elif group_effects == "mcar":
        effect, values["group_area_rho"] = mcar_draws(raw, graph)
        values["group_area_correlation"] = raw["group_area_correlation"]
    if group_effects != "none":
        values["group_area_effect"] = (("chain", "draw", "group", "area"), effect)
    posterior = xr.Dataset(values).assign_coords(
        group=list(design.groups),
        area=list(graph.ids),
        term=list(design.terms),
        compared_group=compared,
    )
    if design.periods:
        posterior = posterior.assign_coords(period=list(design.periods))
    return az.InferenceData(posterior=posterior, sample_stats=idata.sample_stats)
