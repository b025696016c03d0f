"""The Laplace method: a sparse Laplace approximation of the latent field (`sae.laplace`),
integrated over the hyperparameters by importance sampling (`sae.hyperparameter_integration`),
checked against the exact posterior and corrected on every fit.

Draws of x come from the Gaussian approximation at each integration point, in proportion to its
weight. Their log importance weights against the exact posterior, Σ_r [ℓ_r(η_r) − ℓ̃_r(η_r)],
give the correction (`Correction`): jointly when they are reliable and keep enough draws, else
area by area over each area's neighbourhood. Where even that is unreliable (Pareto k̂ > 0.7),
the area's numbers are flagged and NUTS is the method to use for them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import arviz as az
import numpy as np
import scipy.sparse as sp
import xarray as xr

from sae.design import Design
from sae.diagnostics import PARETO_K_LIMIT, Diagnostics
from sae.family import Family
from sae.graph import AreaGraph
from sae.hyperparameter_integration import (
    automatic_points,
    integration_points,
    theta_hessian,
    theta_mode,
)
from sae.laplace import LaplaceEngine, Mode, draw_latent, row_log_weights
from sae.latent import LatentModel, latent_model
from sae.memory import release_free_memory
from sae.posterior import AREA_EFFECTS, RATE_DTYPE, without_baseline
from sae.spec import Spec

log = logging.getLogger("sae.laplace")
DRAW_BATCH = 250
NEGLIGIBLE_WEIGHT_SD = 0.1  # log weights varying less than this cannot move a number noticeably
CORRECTION_MIN_ESS = 0.25  # share of the draws a joint reweighting must keep
RELEASE_EVERY = 16  # integration points between giving freed memory back (`sae.memory`)


def run_laplace(
    spec: Spec, design: Design, graph: AreaGraph, family: Family, progress: bool
) -> tuple[az.InferenceData, Diagnostics, dict[str, float]]:
    """The Laplace method end to end: draws in the common form, diagnostics, timings."""
    clock = time.perf_counter()
    seconds = {}
    model = latent_model(spec, design, graph, family)
    engine = LaplaceEngine(model)
    start = np.array([h.start for h in model.hyperparameters])
    report = log.info if progress else log.debug
    report("laplace: finding the mode of %d hyperparameters (latent field of %d)",
           len(model.hyperparameters), model.size)  # fmt: skip
    mode = theta_mode(engine, start)
    hessian = theta_hessian(engine, mode)
    seconds["mode"] = time.perf_counter() - clock
    report("laplace: mode after %d evaluations in %.1f s", engine.evaluations, seconds["mode"])
    clock = time.perf_counter()
    rng = np.random.default_rng(spec.sampler.seed)
    points = spec.sampler.integration_points or automatic_points(
        len(mode), model.correlated is not None, model.size
    )
    thetas, modes, weights, theta_k = integration_points(engine, mode, hessian, points,
                                                         spec.sampler.seed)  # fmt: skip
    seconds["integration"] = time.perf_counter() - clock
    report("laplace: %d integration points in %.1f s (Pareto k̂ %.2f)", len(thetas),
           seconds["integration"], theta_k)  # fmt: skip
    clock = time.perf_counter()
    total = spec.sampler.draws * spec.sampler.chains
    counts = rng.multinomial(total, weights / weights.sum())
    draws, row_weights = sample_mixture(engine, thetas, modes, counts, rng)
    correction = correct(row_weights, design, graph, rng)
    del row_weights
    release_free_memory()
    seconds["draws"] = time.perf_counter() - clock
    report("laplace: %d draws, corrected %s, in %.1f s", total,
           "jointly" if correction.order is not None else "area by area", seconds["draws"])  # fmt: skip
    if correction.order is not None:
        draws = {name: np.take(values, correction.order, axis=0) for name, values in draws.items()}
    posterior = common_posterior(draws, model, design, graph)
    check = xr.Dataset(
        {"draw_index": (("draw", "area"), correction.area_order),
         "pareto_k": ("area", correction.area_pareto_k)},
        coords={"area": list(graph.ids)},
    )  # fmt: skip
    diagnostics = Diagnostics(
        method="laplace", chains=1, draws=total, theta_pareto_k=theta_k, theta_points=len(thetas),
        latent_pareto_k=correction.joint_pareto_k, latent_ess=correction.joint_ess,
        areas_off=int((correction.area_pareto_k > PARETO_K_LIMIT).sum()),
        correction="joint" if correction.order is not None else "local",
        hyperparameters={h.label: {"mode": float(h.natural(mode[k])),
                                   "sd_unconstrained": float(np.sqrt(np.linalg.inv(hessian)[k, k]))}
                         for k, h in enumerate(model.hyperparameters)},
    )  # fmt: skip
    seconds["evaluations"] = engine.evaluations
    return az.InferenceData(posterior=posterior, laplace_check=check), diagnostics, seconds


@dataclass
class Correction:
    """How the Gaussian draws are corrected towards the exact posterior.

    joint: when the importance weights of the whole field are reliable (k̂ < 0.7) and keep at
    least a quarter of the draws (ESS), the draws are resampled by them (`order`). Otherwise,
    local: each area's numbers are resampled by the weights of the rows of its neighbourhood (the
    area and the areas that touch it), which stay reliable in any dimension. `area_order` holds,
    per area, the draws its numbers use (draws × areas; the identity where no correction is
    needed, or where it is unreliable, which `area_pareto_k` > 0.7 records).
    """

    order: np.ndarray | None
    area_order: np.ndarray
    area_pareto_k: np.ndarray
    joint_pareto_k: float
    joint_ess: float


def correct(row_weights: np.ndarray, design: Design, graph: AreaGraph, rng) -> Correction:
    """Joint or local importance correction of the draws (see `Correction`)."""
    total = len(row_weights)
    joint = row_weights.sum(axis=1, dtype=float)
    smoothed, joint_k = az.psislw(joint - joint.max())
    weights = np.exp(smoothed)
    ess = float(weights.sum() ** 2 / (weights**2).sum())
    area_k = np.zeros(graph.n_areas)
    area_order = np.repeat(np.arange(total, dtype=np.int32)[:, None], graph.n_areas, axis=1)
    if joint_k < PARETO_K_LIMIT and ess >= CORRECTION_MIN_ESS * total:
        return Correction(resample(weights, rng), area_order, area_k, float(joint_k), ess)
    rows_of_area = sp.csr_array(
        (np.ones(len(design.area)), (design.area, np.arange(len(design.area)))),
        shape=(graph.n_areas, len(design.area)),
    )
    neighbourhood = sp.csr_array((sp.eye_array(graph.n_areas) + graph.adjacency) > 0, dtype=float)
    area_log = row_weights @ sp.csr_array(neighbourhood @ rows_of_area).T.astype(np.float32)
    for area in np.flatnonzero(area_log.std(axis=0) > NEGLIGIBLE_WEIGHT_SD):
        log_weights, k_hat = az.psislw(area_log[:, area] - area_log[:, area].max())
        area_k[area] = k_hat
        if k_hat <= PARETO_K_LIMIT:
            area_order[:, area] = resample(np.exp(log_weights), rng)
    return Correction(None, area_order, area_k, float(joint_k), ess)


def sample_mixture(engine: LaplaceEngine, thetas: np.ndarray, modes: list[Mode | np.ndarray],
                   counts: np.ndarray, rng):  # fmt: skip
    """Draws of the linear predictor's parts and of θ from the mixture over the points θ_j, with
    each draw's per-row log weights against the exact posterior (float32: they feed k̂ and
    weights). Where `modes` holds only a point's x* (`integration_points`), its Gaussian
    approximation is recomputed from there when it gets draws, so only one factor is held at a
    time; kept ones are let go once drawn from, and freed memory is given back every
    `RELEASE_EVERY` points, so the draws fill what the factors leave."""
    model = engine.model
    total, filled = int(counts.sum()), 0
    parts: dict[str, np.ndarray] = {}
    # column-major: `correct` sums them over neighbourhoods with a sparse product, which reads
    # them by row (of the transpose) without a copy of its own
    weights = np.empty((total, len(model.design.area)), dtype=np.float32, order="F")
    for j, (t, count) in enumerate(zip(thetas, counts, strict=True)):
        kept, modes[j] = modes[j], None
        if j % RELEASE_EVERY == 0:
            release_free_memory()
        if count == 0:
            continue
        # x* kept in float32 is within Newton's tolerance of the mode: factorised there, no step
        mode = kept if isinstance(kept, Mode) else engine.mode(t, None, at=kept)
        del kept
        for start in range(0, count, DRAW_BATCH):
            size = min(DRAW_BATCH, count - start)
            x = draw_latent(model, mode, size, rng)
            theta = np.tile(model.natural(mode.t), (size, 1))
            for name, value in {**model.effects(x, theta), "theta": theta}.items():
                if name not in parts:
                    dtype = RATE_DTYPE if name in AREA_EFFECTS else float
                    parts[name] = np.empty((total, *value.shape[1:]), dtype=dtype)
                parts[name][filled : filled + size] = value
            weights[filled : filled + size] = row_log_weights(model, mode, x)
            filled += size
    return parts, weights


def resample(weights: np.ndarray, rng) -> np.ndarray:
    """Systematic resampling: indices of len(weights) draws with probabilities ∝ weights."""
    n = len(weights)
    positions = (rng.uniform() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights / weights.sum()), positions), n - 1)


def common_posterior(
    draws: dict, model: LatentModel, design: Design, graph: AreaGraph
) -> xr.Dataset:
    """The draws as every method returns them (`sae.posterior`), one chain."""

    def one_chain(values):
        return values[None, ...]

    intercept, beta = design.reported_coefficients(draws["intercept_std"], draws["beta_std"])
    group_dims, group_effect, compared = without_baseline(one_chain(draws["group_effect"]), design)
    values = {
        "intercept": (("chain", "draw"), one_chain(intercept)),
        "beta": (("chain", "draw", "term"), one_chain(beta)),
        "group_effect": (group_dims, group_effect),
        "area_effect": (("chain", "draw", "area"), one_chain(draws["area_effect"])),
    }  # fmt: skip
    for name, dims in (("group_area_effect", ("group", "area")), ("time_effect", ("period",)),
                       ("group_time_effect", ("group", "period")),
                       ("area_time_effect", ("area", "period"))):  # fmt: skip
        if name in draws:
            values[name] = (("chain", "draw", *dims), one_chain(draws[name]))
    correlated = model.correlated
    for name in dict.fromkeys(h.name for h in model.hyperparameters if h.kind != "correlation"):
        columns = [k for k, h in enumerate(model.hyperparameters) if h.name == name]
        theta = draws["theta"][:, columns]
        if correlated is not None and name == "group_area_rho":  # shared: repeated per group
            theta = np.repeat(theta, len(design.groups), axis=1)
        if theta.shape[1] == 1 and model.hyperparameters[columns[0]].group is None:
            values[name] = (("chain", "draw"), one_chain(theta[:, 0]))
        else:
            values[name] = (("chain", "draw", "group"), one_chain(theta))
    if correlated is not None:
        values["group_area_correlation"] = (("chain", "draw", "group", "other_group"),
                                            one_chain(correlated.correlation(draws["theta"])))  # fmt: skip
    posterior = xr.Dataset(values).assign_coords(
        chain=[0], draw=np.arange(len(draws["theta"])), group=list(design.groups),
        area=list(graph.ids), term=list(design.terms), compared_group=compared,
    )  # fmt: skip
    if design.periods:
        posterior = posterior.assign_coords(period=list(design.periods))
    if correlated is not None:
        posterior = posterior.assign_coords(other_group=list(design.groups))
    return posterior
