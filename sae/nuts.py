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

import contextlib
import tempfile
import time
from collections.abc import Iterator

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
from sae.memory import release_free_memory
from sae.posterior import AREA_EFFECTS, RATE_DTYPE, without_baseline
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
TRACE_MEMORY_LIMIT = 2**30  # bytes of nutpie trace kept in memory; a larger one goes to disk
KEPT = ("intercept", "beta", "group_effect", "area_effect", "area_sigma", "area_rho",
        "group_area_sigma", "group_area_rho", *TIME_EFFECTS, "time_sigma", "group_time_sigma",
        "area_time_sigma", "group_area_effect", "group_area_correlation")  # fmt: skip


def run_nuts(
    spec: Spec, design: Design, graph: AreaGraph, family: Family, progress: bool
) -> tuple[az.InferenceData, Diagnostics, dict[str, float]]:
    """Build, sample, judge: the draws in the common form, their diagnostics and the timings."""
    start = time.perf_counter()
    model = build(design, graph, spec, family)
    seconds = {"build": time.perf_counter() - start}
    with sampled(model, spec.sampler, progress, seconds) as idata:
        start = time.perf_counter()
        common = common_draws(idata, design, graph, spec.model.group_effects)
        seconds["draws"] = time.perf_counter() - start
    del model, idata
    release_free_memory()
    start = time.perf_counter()
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
        if spec.model.group_effects != "none":
            params["group_area_effect"] = pm.Deterministic(
                "group_area_effect", group_area_field(spec.model.group_effects, graph, prior,
                                                      spectrum, len(design.groups)),
                dims=("group", "area"),
            )  # fmt: skip
        if design.periods:
            params |= time_effects(design, graph, spec, prior)
        eta = linear_predictor(params, design.area, design.group, design.X, design.period)
        family.pymc_likelihood(eta, design.rows)
        if design.unknown is not None:
            unknown_group_term(design, spec, pt.exp(eta + design.rows.offset))
    return model


def group_area_field(kind: str, graph: AreaGraph, prior: PriorSet, spectrum, groups: int):
    """c_ig of `[model] group_effects` (iid, bym2 or mcar), each group's deviation by area."""
    if kind == "iid":
        sigma = scale_sigma("group_area_sigma", prior, dims="group")
        return iid_combination(sigma, pm.Normal("group_area_z", 0.0, 1.0, dims=("group", "area")))
    if kind == "bym2":
        return bym2_field("group_area", graph, prior, spectrum, "group")
    return mcar_field(graph, prior, spectrum, groups)


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


@contextlib.contextmanager
def sampled(
    model: pm.Model, sampler: SamplerSpec, progress: bool, seconds: dict[str, float]
) -> Iterator[az.InferenceData]:
    """Draw from the posterior of `model` with the spec's backend, chains, draws, tune and seed;
    the seconds spent compiling and sampling go into `seconds` (PyMC's NUTS compiles inside its
    sampling call, so there the two are one figure, under "sample").

    nutpie keeps, at every warm-up and kept draw, each free parameter, its gradient and its
    unconstrained value besides the stored variables, whatever its `store_*` settings say
    (nutpie 0.16.8), and the conversion to InferenceData copies the draws: on US counties × 5
    groups that is about 4 GB. A trace above `TRACE_MEMORY_LIMIT` is written to a zarr store in a
    temporary folder instead and read from it lazily, so what the caller reads must be loaded
    before the block ends and the folder is deleted. (The store is slower to write, which is why
    small traces stay in memory: 4.8 → 12–15 s of sampling on Scotland.)
    """
    start = time.perf_counter()
    if sampler.backend != "nutpie":
        with model:
            yield pm.sample(
                draws=sampler.draws, tune=sampler.tune, chains=sampler.chains,
                random_seed=sampler.seed, target_accept=sampler.target_accept,
                progressbar=progress, compute_convergence_checks=False, **sampler_cores(),
            )  # fmt: skip
        seconds["sample"] = time.perf_counter() - start
        return
    import nutpie

    stored = [name for name in KEPT if name in model.named_vars]
    compiled = nutpie.compile_pymc_model(model, var_names=stored)
    seconds["compile"] = time.perf_counter() - start
    with contextlib.ExitStack() as stack:
        if trace_bytes(compiled, sampler) > TRACE_MEMORY_LIMIT:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="sae-nuts-"))
            store = {"zarr_store": nutpie.zarr_store.LocalStore(folder)}
        else:
            store = {}
        start = time.perf_counter()
        yield nutpie.sample(
            compiled, draws=sampler.draws, tune=sampler.tune, chains=sampler.chains,
            seed=sampler.seed, target_accept=sampler.target_accept, progress_bar=progress,
            save_warmup=False, low_rank_modified_mass_matrix=sampler.low_rank_mass_matrix,
            **store, **sampler_cores(),
        )  # fmt: skip
        seconds["sample"] = time.perf_counter() - start


def trace_bytes(compiled, sampler: SamplerSpec) -> int:
    """Memory an in-memory nutpie trace and its conversion take: per warm-up or kept draw, the
    stored values twice, the gradient and the unconstrained draw, in float64."""
    rows = sampler.chains * (sampler.tune + sampler.draws)
    return 8 * rows * (2 * compiled.n_expanded + 2 * compiled.n_dim)


def common_draws(
    idata: az.InferenceData, design: Design, graph: AreaGraph, group_effects: str
) -> az.InferenceData:
    """The draws as every method returns them (see `sae.posterior`), loaded into memory, with the
    sampler's statistics of each draw (not the per-parameter ones: gradients, mass matrix)."""
    raw = idata.posterior
    values = {name: loaded(raw[name], RATE_DTYPE) if name in AREA_EFFECTS else raw[name]
              for name in KEPT if name in raw}  # fmt: skip
    dims, group_effect, compared = without_baseline(raw["group_effect"].to_numpy(), design)
    values["group_effect"] = (dims, group_effect)
    if group_effects == "mcar":  # one ρ for every group, repeated in the common form
        values["group_area_rho"] = raw["group_area_rho"].broadcast_like(raw["group_area_sigma"])
    posterior = xr.Dataset(values).assign_coords(
        group=list(design.groups),
        area=list(graph.ids),
        term=list(design.terms),
        compared_group=compared,
    )
    if design.periods:
        posterior = posterior.assign_coords(period=list(design.periods))
    stats = idata.sample_stats
    per_draw = [name for name, value in stats.data_vars.items() if value.dims == ("chain", "draw")]
    return az.InferenceData(posterior=posterior.load(), sample_stats=stats[per_draw].load())


def loaded(draws: xr.DataArray, dtype) -> xr.DataArray:
    """`draws` in memory as `dtype`, read one chain at a time (so a lazily read float64 trace is
    never held whole)."""
    values = np.empty(draws.shape, dtype)
    for chain in range(draws.sizes["chain"]):
        values[chain] = draws.isel(chain=chain).to_numpy()
    return draws.copy(data=values)
