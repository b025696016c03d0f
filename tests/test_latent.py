"""The two methods fit one model: the PyMC model (NUTS) and the latent Gaussian description
(Laplace) give the same log posterior density, up to a constant, at any point that satisfies the
sum-to-zero constraints."""

import numpy as np
import pandas as pd
import pytest
from conftest import grid_areas, simulated_cells

from sae import random_walk
from sae.fit import design_for
from sae.inputs import load_inputs
from sae.latent import latent_model
from sae.nuts import build
from sae.priors import pc_rho_distance, rho_from_distance
from sae.spec_file import spec_from_dict

BASE = {"data": {"area_id": "area", "group": "group", "count": "cases", "population": "population"}}


def models(model: dict, data: dict | None = None, cells=None):
    areas = grid_areas()
    cells = simulated_cells(areas, seed=5)[0] if cells is None else cells
    cells = cells.assign(
        income=np.linspace(1.0, 3.0, len(cells)), region=np.resize(["n", "s", "e"], len(cells))
    )
    spec = spec_from_dict({"data": {**BASE["data"], "covariates": ["income", "region"],
                                    "categorical": ["region"], **(data or {})}, "model": model})  # fmt: skip
    inputs = load_inputs(spec, cells=cells, areas=areas)
    design = design_for(spec, inputs)
    return build(design, inputs.graph, spec, spec.family), latent_model(
        spec, design, inputs.graph, spec.family
    )


def random_point(pymc_model, latent, rng):
    """A point of the PyMC model (transformed space) and the same point as (x, t) of the latent
    model, with every ICAR part summing to zero on each component; and the log Jacobian between
    the two coordinates of the PC prior's ρ (NUTS: log d(ρ); Laplace: logit ρ)."""
    graph = latent.graph
    point, x, t = {}, np.zeros(latent.size), np.zeros(len(latent.hyperparameters))
    jacobian = 0.0
    for variable in pymc_model.free_RVs:
        value = pymc_model.rvs_to_values[variable]
        shape = pymc_model.initial_point()[value.name].shape
        draw = rng.normal(0.0, 0.5, shape)
        if variable.name in ("time_structured", "group_time_structured"):
            block = latent.time_blocks.time if variable.name == "time_structured" else (
                latent.time_blocks.group_time[0])  # fmt: skip
            rows = random_walk.constraint_rows(shape[-1], walk_order(latent, block))
            draw = draw - (draw @ rows.T) @ np.linalg.solve(rows @ rows.T, rows)
        elif variable.name.endswith("_structured"):
            for nodes in graph.component_nodes():
                draw[..., nodes] -= draw[..., nodes].mean(axis=-1, keepdims=True)
        point[value.name] = draw
    k = len(latent.design.terms)
    x[0] = point["intercept_centered"]
    x[1 : 1 + k] = point["beta_std"]
    x[1 + k : latent.n_fixed] = point.get("group_effect_raw", [])
    fields = [(latent.area_field, "area", None)] + [
        (f, "group_area", i) for i, f in enumerate(latent.group_fields)
    ]
    for field, prefix, index in fields:
        n = graph.n_areas
        v_name = (
            "group_area_z"
            if f"{prefix}_z" in [r.name for r in pymc_model.free_RVs]
            else f"{prefix}_unstructured"
        )
        pick = (lambda a: a) if index is None else (lambda a, i=index: a[i])  # noqa: E731
        x[field.v : field.v + n] = pick(point[v_name])
        if field.u is not None:
            x[field.u : field.u + n] = pick(point[f"{prefix}_structured"])
        t[field.sigma] = pick(point[f"{prefix}_sigma_log__"])
        if field.rho is not None:
            name = [n for n in point if n.startswith(f"{prefix}_rho_")][0]
            value = pick(point[name])
            if name.endswith("_distance_log__"):  # π(log d) = π(logit ρ) · |d logit ρ / d log d|
                distance = np.exp(value)
                rho = rho_from_distance(distance, latent.spectrum)
                slope = pc_rho_distance(rho, latent.spectrum)[1]
                jacobian += np.sum(np.log(distance) - np.log(slope * rho * (1 - rho)))
                value = np.log(rho / (1 - rho))
            t[field.rho] = value
    time_latents(point, latent, x, t)
    return point, x, t, jacobian


def walk_order(latent, block) -> int:
    """A random walk's order: the number of constraints on its first column."""
    return int((latent.constraints[:, [block.start]].toarray() != 0).sum())


def time_latents(point: dict, latent, x: np.ndarray, t: np.ndarray) -> None:
    """The PyMC point's f_t, f_gt and δ_it (and their σ) in the latent model's coordinates."""
    blocks = latent.time_blocks
    names = {"time": "time_structured", "area_time": "area_time_z"}
    if blocks.time is not None:
        x[blocks.time.start : blocks.time.start + blocks.time.size] = point[names["time"]]
        t[blocks.time.sigma] = point["time_sigma_log__"]
    for g, block in enumerate(blocks.group_time):
        name = "group_time_structured" if "group_time_structured" in point else "group_time_z"
        x[block.start : block.start + block.size] = point[name][g]
        t[block.sigma] = point["group_time_sigma_log__"][g]
    if blocks.area_time is not None:
        block = blocks.area_time
        x[block.start : block.start + block.size] = point[names["area_time"]].ravel()
        t[block.sigma] = point["area_time_sigma_log__"]


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ({"group_effects": "iid"}, None),
        (
            {"group_effects": "bym2", "priors": "morris2019"},
            {"population": None, "expected": "population"},
        ),
        ({"group_effects": "none", "spatial": "none"}, None),
        (
            {"group_effects": "iid", "family": "binomial"},
            {"population": None, "trials": "population"},
        ),
    ],
)
def test_nuts_and_laplace_models_have_the_same_log_density(model, data):
    assert_same_log_density(*models(model, data), seed=11)


def assert_same_log_density(pymc_model, latent, seed: int) -> None:
    """The two descriptions' log densities differ by the same amount between two random points."""
    logp = pymc_model.compile_logp()
    rng = np.random.default_rng(seed)
    (p1, x1, t1, j1), (p2, x2, t2, j2) = (
        random_point(pymc_model, latent, rng),
        random_point(pymc_model, latent, rng),
    )
    pymc_difference = logp(p1) - logp(p2)
    latent_difference = latent.log_joint(x1, t1) + j1 - latent.log_joint(x2, t2) - j2
    # the latent ICAR carries a 1e-6 jitter on its diagonal: a few 1e-5 at these points
    assert latent_difference == pytest.approx(pymc_difference, abs=1e-3)
    assert abs(pymc_difference) > 1.0  # the points differ enough for the test to mean something


@pytest.mark.parametrize("group_effects", ["iid", "bym2"])
def test_nuts_starts_rho_off_its_floating_point_plateau(group_effects):
    # beyond d(1 - 1e-16) rho is 1 in floating point and the likelihood flat in d: a chain the
    # samplers' e^{+-1} jitter started there stayed 180 draws (3,600-area grid); every jittered
    # start must map to rho <= 0.99, and the starts must still spread rho
    pymc_model, latent = models({"group_effects": group_effects})
    start = pymc_model.initial_point()
    names = [name for name in start if name.endswith("_rho_distance_log__")]
    assert names  # the PC prior is sampled on its distance
    for name in names:
        lowest, highest = np.exp(start[name] - 1.0), np.exp(start[name] + 1.0)
        rho = rho_from_distance(np.concatenate([np.ravel(lowest), np.ravel(highest)]),
                                latent.spectrum)  # fmt: skip
        assert np.all(rho < 0.9901) and np.ptp(rho) > 0.3


def suppressed_cells():
    """The simulated cells with every count from 30 to 45 reported as "Suppressed"."""
    cells = simulated_cells(grid_areas(), seed=5)[0]
    marked = cells["cases"].between(30, 45)
    assert 3 < marked.sum() < len(cells) - 3
    return cells.assign(cases=cells["cases"].astype(object).where(~marked, "Suppressed"))


@pytest.mark.parametrize(
    "data",
    [{}, {"population": None, "trials": "population"}],
)
def test_censored_counts_give_both_methods_the_same_log_density(data):
    family = {"family": "binomial"} if data else {}
    suppressed = {"suppressed": {"marker": "Suppressed", "range": [30, 45]}, **data}
    pymc_model, latent = models({"group_effects": "iid", **family}, suppressed, suppressed_cells())
    assert latent.design.rows.censored.sum() > 3
    assert_same_log_density(pymc_model, latent, seed=12)


def yearly_cells(years: int = 5):
    """The simulated cells repeated over `years` periods with a trend."""
    cells = simulated_cells(grid_areas(), seed=5)[0]
    frames = [cells.assign(year=2010 + k, cases=(cells["cases"] * (1 + 0.05 * k)).round().astype(int))
              for k in range(years)]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    "model",
    [
        {"group_effects": "iid"},
        {"group_effects": "iid", "trend": "rw2", "group_trend": "iid", "interaction": "none"},
        {"group_effects": "bym2", "trend": "none", "group_trend": "rw2"},
        {"group_effects": "none", "trend": "rw1", "group_trend": "none", "interaction": "iid"},
    ],
)
def test_space_time_models_give_both_methods_the_same_log_density(model):
    pymc_model, latent = models(model, {"time": "year"}, yearly_cells())
    assert latent.time_blocks.all  # the time blocks are there
    assert_same_log_density(pymc_model, latent, seed=13)
