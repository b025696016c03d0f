"""Every sae model as a latent Gaussian model: what the Laplace engine factorises.

The latent vector x stacks, in the non-centred form the NUTS model also samples:

    fixed   a (intercept, centred on the crude level), β (standardised), α_g (non-baseline groups)
    area    v ~ N(0, I), and for BYM2 u ~ ICAR (Laplacian per component, islands N(0, 1))
    group   per group g: z_g ~ N(0, I) (iid), or v_g and u_g (a BYM2 field per group)

    time    with periods (`sae.random_walk`): f_t (a random walk, or nothing), per group f_gt (iid or
            a random walk), and δ_it ~ N(0, 1) per area × period (Knorr-Held's type I interaction)

and the linear predictor of data row r (area i, group g, period t) is

    η_r = offset_r + level + a + α_g + x_r β + b_i + c_ig (+ σ_f f_t/√s + σ_g f_gt/√s + σ_δ δ_it),
    b_i = σ (√(1 − ρ) v_i + √(ρ/s) u_i)   (b_i = σ v_i on islands; σ v_i for iid area effects)
    c_ig = σ_g z_gi, or the same BYM2 combination with σ_g, ρ_g.

So η = offset + A(θ) x with A(θ) = A₀ diag(s(θ)): the hyperparameters θ (σ's, ρ's) only scale the
columns of a fixed incidence matrix A₀, and the prior x ~ N(m, Q⁻¹) does not depend on θ. Each ICAR
block carries one exact linear constraint per connected component (its u sums to zero), and each
random walk one per dimension of its null space, C x = 0.
The hyperparameters' priors come from `sae.priors`, the same functions the NUTS model uses.

References: Rue, Martino & Chopin (2009), JRSS-B 71:319-392; Riebler et al. (2016).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sae import random_walk
from sae.correlated_fields import (
    CorrelatedFields,
    kronecker_parts,
    pairs_below_diagonal,
    partial_correlation_shape,
)
from sae.design import Design
from sae.family import Family
from sae.graph import AreaGraph
from sae.latent_likelihood import LatentLikelihood
from sae.predictor import bym2_combination, iid_combination, structure_weights
from sae.priors import (
    IcarSpectrum,
    PriorSet,
    icar_spectrum,
    pc_rho_logp,
    prior_set,
    rho_log_prior,
    sigma_log_prior,
)
from sae.spec import Spec

ICAR_JITTER = 1e-6  # added to the ICAR precision's diagonal; the constraints make it immaterial


@dataclass(frozen=True)
class Hyperparameter:
    """One σ or ρ: its posterior variable name, its group (for per-group ones), and the
    unconstrained coordinate t the Laplace method works on: log σ, logit ρ. (NUTS samples the PC
    prior's ρ through its distance d(ρ), `sae.priors.mixing_rho`; on the logit scale, within the
    Laplace method's bounds, the integration over θ is better behaved near ρ = 1.)"""

    name: str
    group: str | None
    kind: str  # "sigma" | "rho" | "correlation" (a partial correlation, `sae.correlated_fields`)
    prior: PriorSet
    spectrum: IcarSpectrum | None = dataclasses.field(default=None, compare=False, repr=False)
    beta_shape: float = 0.0  # a partial correlation's Beta(β, β) prior on (−1, 1)

    @property
    def label(self) -> str:
        return self.name if self.group is None else f"{self.name}[{self.group}]"

    @property
    def scale(self) -> str:
        return {"sigma": "log", "rho": "logit", "correlation": "atanh"}[self.kind]

    @property
    def start(self) -> float:
        """Where the search for the mode starts: σ = 0.5, ρ = 0.5, no correlation."""
        return 0.0 if self.kind == "correlation" else self.unconstrained(0.5)

    def natural(self, t: np.ndarray) -> np.ndarray:
        if self.kind == "correlation":
            return np.tanh(t)
        return np.exp(t) if self.kind == "sigma" else 1.0 / (1.0 + np.exp(-t))

    def unconstrained(self, value: float) -> float:
        if self.kind == "correlation":
            return float(np.arctanh(value))
        return float(np.log(value) if self.kind == "sigma" else np.log(value / (1.0 - value)))

    def log_prior(self, t: np.ndarray) -> np.ndarray:
        """log π of t: the prior density of the natural value times the Jacobian."""
        value = self.natural(t)
        if self.kind == "sigma":
            return sigma_log_prior(self.prior, value) + t
        if self.kind == "correlation":  # β log(1 − tanh² t), up to a constant
            return 2.0 * self.beta_shape * (np.log(2.0) - np.logaddexp(t, -t))
        density = (rho_log_prior(self.prior, value) if self.prior.rho == "beta"
                   else pc_rho_logp(value, self.prior, self.spectrum))  # fmt: skip
        return density + np.log(value) + np.log1p(-value)


@dataclass(frozen=True)
class Field:
    """A block of area effects: `sigma` and `rho` index θ (rho None for iid); `v` and `u` are the
    first columns of its iid and ICAR parts (u None for iid)."""

    sigma: int
    rho: int | None
    v: int
    u: int | None


@dataclass(frozen=True)
class ScaledBlock:
    """A block of latents whose effect is σ × `factor` × x (a random walk's 1/√s, or 1): `sigma`
    indexes θ, `start` is its first column, `shape` the effect's shape (periods, or areas ×
    periods)."""

    sigma: int
    start: int
    shape: tuple[int, ...]
    factor: float

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def effect(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        values = x[:, self.start : self.start + self.size].reshape(len(x), *self.shape)
        sigma = theta[:, self.sigma].reshape(-1, *[1] * len(self.shape))
        return sigma * self.factor * values


@dataclass(frozen=True)
class TimeBlocks:
    """The blocks of a space–time model: f_t, f_gt (one per group) and δ_it, each optional."""

    time: ScaledBlock | None = None
    group_time: tuple[ScaledBlock, ...] = ()
    area_time: ScaledBlock | None = None

    @property
    def all(self) -> tuple[ScaledBlock, ...]:
        return tuple(b for b in (self.time, *self.group_time, self.area_time) if b is not None)

    def effects(self, x: np.ndarray, theta: np.ndarray) -> dict[str, np.ndarray]:
        """time_effect (draws × periods), group_time_effect (draws × groups × periods) and
        area_time_effect (draws × areas × periods), those the model has."""
        effects = {}
        if self.time is not None:
            effects["time_effect"] = self.time.effect(x, theta)
        if self.group_time:
            effects["group_time_effect"] = np.stack(
                [b.effect(x, theta) for b in self.group_time], axis=1
            )
        if self.area_time is not None:
            effects["area_time_effect"] = self.area_time.effect(x, theta)
        return effects


@dataclass(frozen=True, eq=False)
class LatentModel:
    """x ~ N(mean, Q⁻¹) subject to C x = 0; η = level + A₀ diag(scales(θ)) x for the data rows."""

    family: Family
    design: Design
    graph: AreaGraph
    hyperparameters: tuple[Hyperparameter, ...]
    prior: PriorSet
    spectrum: IcarSpectrum | None
    incidence: sp.csr_array  # A₀: data rows × latent
    precision: sp.csc_array  # Q
    mean: np.ndarray
    constraints: sp.csr_array  # C
    level: float  # added to every row's η (the crude level); the family adds its own offset
    n_fixed: int
    area_field: Field
    group_fields: tuple[Field, ...]
    time_blocks: TimeBlocks = TimeBlocks()
    correlated: CorrelatedFields | None = None  # group fields correlated across groups (MCAR)

    @property
    def size(self) -> int:
        return self.precision.shape[0]

    @functools.cached_property
    def likelihood(self) -> LatentLikelihood:
        return LatentLikelihood(self.family, self.design.rows, self.design.unknown)

    def log_prior(self, t: np.ndarray) -> float:
        """log π(θ) on the unconstrained scale, with the θ-dependent part of the latent prior's
        normalising constant where Q depends on θ (correlated group fields)."""
        value = float(sum(h.log_prior(t[k]) for k, h in enumerate(self.hyperparameters)))
        if self.correlated is not None:
            value += self.correlated.log_normaliser(self.natural(t))
        return value

    def prior_precision(self, theta: np.ndarray) -> sp.csc_array:
        """Q(θ): Q itself, plus the correlated group fields' Σ (R⁻¹)_{gh} Q_{gh}."""
        if self.correlated is None:
            return self.precision
        weights = self.correlated.coefficients(theta)
        return sp.csc_array(self.precision + sum(w * q for w, q in zip(weights, self.correlated.parts,
                                                                       strict=True)))  # fmt: skip

    def log_joint(self, x: np.ndarray, t: np.ndarray | None = None, A=None,
                  precision=None) -> float:  # fmt: skip
        """log p(y | x, θ) + log p(x) (+ log π(θ) on the unconstrained scale when `t` is given),
        up to a constant; `A` and `precision` are the design matrix and Q at θ when already built."""
        theta = None if t is None else self.natural(t)
        A = self.design_matrix(theta) if A is None else A
        precision = self.prior_precision(theta) if precision is None else precision
        loglik = self.likelihood.log_density(self.level + A @ x).sum()
        deviation = x - self.mean
        value = loglik - 0.5 * deviation @ (precision @ deviation)
        return float(value if t is None else value + self.log_prior(t))

    def natural(self, t: np.ndarray) -> np.ndarray:
        return np.array([h.natural(t[k]) for k, h in enumerate(self.hyperparameters)])

    def scales(self, theta: np.ndarray) -> np.ndarray:
        """s(θ): the factor on each latent column (θ on the natural scale)."""
        scales = np.ones(self.size)
        for field in (self.area_field, *self.group_fields):
            field_scales(scales, field, theta, self.graph)
        for block in self.time_blocks.all:
            scales[block.start : block.start + block.size] = theta[block.sigma] * block.factor
        return scales

    def design_matrix(self, theta: np.ndarray) -> sp.csr_array:
        """A(θ) = A₀ diag(s(θ)): A₀'s entries times their column's scale, on A₀'s pattern."""
        incidence = self.incidence
        return sp.csr_array(
            (incidence.data * self.scales(theta)[incidence.indices], incidence.indices,
             incidence.indptr), shape=incidence.shape,
        )  # fmt: skip

    def effects(self, x: np.ndarray, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The linear predictor's parts from latent draws x (draws × latent) and their θ (draws ×
        hyperparameters): intercept_std, beta_std, group_effect, area_effect, group_area_effect."""
        design = self.design
        k = len(design.terms)
        raw = x[:, 1 + k : self.n_fixed]
        b = design.baseline_group
        group_effect = np.concatenate([raw[:, :b], np.zeros((len(x), 1)), raw[:, b:]], axis=1)
        effects = {
            "intercept_std": design.base_level + x[:, 0],
            "beta_std": x[:, 1 : 1 + k],
            "group_effect": group_effect,
            "area_effect": field_effect(x, theta, self.area_field, self.graph),
        }
        if self.group_fields:
            effects["group_area_effect"] = np.stack(
                [field_effect(x, theta, f, self.graph) for f in self.group_fields], axis=1
            )
        return effects | self.time_blocks.effects(x, theta)


def field_scales(scales: np.ndarray, field: Field, theta: np.ndarray, graph: AreaGraph) -> None:
    n = graph.n_areas
    sigma = theta[field.sigma]
    if field.u is None:
        scales[field.v : field.v + n] = sigma
        return
    rho = theta[field.rho]
    structured = (~graph.is_island).astype(float)
    scales[field.v : field.v + n] = sigma * np.sqrt(1.0 - rho * structured)
    scales[field.u : field.u + n] = (
        sigma * np.sqrt(rho) * structured / np.sqrt(graph.scaling_factor)
    )


def field_effect(x: np.ndarray, theta: np.ndarray, field: Field, graph: AreaGraph) -> np.ndarray:
    """b = σ(√(1 − ρ) v + √(ρ/s) u) per draw (σ v for iid): draws × areas, by the same function
    the NUTS model uses."""
    n = graph.n_areas
    sigma, v = theta[:, field.sigma], x[:, field.v : field.v + n]
    if field.u is None:
        return iid_combination(sigma, v)
    u = x[:, field.u : field.u + n]
    return bym2_combination(sigma, theta[:, field.rho], u, v, *structure_weights(graph))


def latent_model(spec: Spec, design: Design, graph: AreaGraph, family: Family) -> LatentModel:
    """The latent Gaussian description of the model the spec names."""
    prior = prior_set(spec)
    spatial = spec.model.spatial == "bym2" or spec.model.group_effects in ("bym2", "mcar")
    spectrum = icar_spectrum(graph) if prior.rho == "pc" and spatial else None
    fixed_columns, fixed_precision, fixed_mean = fixed_block(design, prior)
    blocks = Blocks(graph, design, fixed_columns.shape[1], prior, spectrum)
    area_field = blocks.add_field("area", None, spec.model.spatial == "bym2")
    correlated_layout = None
    if spec.model.group_effects == "mcar":
        group_fields, correlated_layout = blocks.add_correlated_fields()
    else:
        group_fields = tuple(
            blocks.add_field("group_area", g, spec.model.group_effects == "bym2")
            for g in (design.groups if spec.model.group_effects != "none" else ())
        )
    time_blocks = blocks.add_time_blocks(spec) if design.periods else TimeBlocks()
    incidence = sp.hstack([fixed_columns, *blocks.columns], format="csr")
    precision = sp.block_diag([fixed_precision, *blocks.precisions], format="csc")
    n_latent = fixed_columns.shape[1] + blocks.size
    correlated = None
    if correlated_layout is not None:
        v_start, u_start, partials = correlated_layout
        parts = kronecker_parts(len(design.groups), v_start, u_start, icar_precision(graph),
                                n_latent)  # fmt: skip
        constrained = sum(len(nodes) > 1 for nodes in graph.component_nodes())
        correlated = CorrelatedFields(len(design.groups), partials, parts,
                                      2 * graph.n_areas - constrained)  # fmt: skip
    columns = [c for c, _ in blocks.constraints]
    constraints = sp.csr_array(
        (np.concatenate([[], *(v for _, v in blocks.constraints)]),
         np.concatenate([[], *columns]).astype(np.int64), np.cumsum([0, *map(len, columns)])),
        shape=(len(columns), n_latent),
    )  # fmt: skip
    return LatentModel(
        family=family,
        design=design,
        graph=graph,
        hyperparameters=tuple(blocks.hyperparameters),
        prior=prior,
        spectrum=spectrum,
        incidence=sp.csr_array(incidence),
        precision=sp.csc_array(precision),
        mean=np.concatenate([fixed_mean, np.zeros(blocks.size)]),
        constraints=sp.csr_array(constraints),
        level=design.base_level,
        n_fixed=fixed_columns.shape[1],
        area_field=area_field,
        group_fields=group_fields,
        time_blocks=time_blocks,
        correlated=correlated,
    )


def fixed_block(design: Design, prior: PriorSet):
    """Columns, prior precision and prior mean of (a, β, α_g).

    Priors are normal on z = M x + c: on (a, β) themselves ("internal"), or on the reported
    intercept and coefficients ("original", `Design.reported_coefficients`); α_g ~ N(0,
    categorical_sd²) either way.
    """
    k, groups = len(design.terms), len(design.groups)
    rows = len(design.area)
    others = [g for g in range(groups) if g != design.baseline_group]
    member = np.flatnonzero(design.group != design.baseline_group)
    group_columns = sp.csr_array(
        (np.ones(len(member)), (member, np.searchsorted(others, design.group[member]))),
        shape=(rows, len(others)),
    )
    columns = sp.hstack([np.ones((rows, 1)), sp.csr_array(design.X), group_columns], format="csr")
    slope_sd = np.where(design.numeric_terms, prior.beta_sd, prior.categorical_sd)
    sd = np.concatenate(
        [[prior.intercept_sd], slope_sd, np.full(len(others), prior.categorical_sd)]
    )
    transform = np.eye(1 + k + len(others))
    shift = np.zeros(1 + k + len(others))
    if (
        prior.fixed_scale == "original"
    ):  # z = the reported coefficients (Design.reported_coefficients)
        y_scale = design.response_scale
        transform[0, 0] = y_scale
        transform[1 : 1 + k, 1 : 1 + k] = np.diag(y_scale / design.scale)
        transform[0, 1 : 1 + k] = -y_scale * design.center / design.scale
        shift[0] = design.original_scale(design.base_level)
    precision = transform.T @ np.diag(1.0 / sd**2) @ transform
    mean = -np.linalg.solve(transform, shift)
    return columns, sp.csc_array(precision), mean


class Blocks:
    """Accumulates the area blocks: their columns, precisions, constraints and hyperparameters."""

    def __init__(self, graph: AreaGraph, design: Design, start: int, prior: PriorSet, spectrum):
        self.graph, self.design, self.start = graph, design, start
        self.prior, self.spectrum = prior, spectrum
        self.size = 0
        self.columns: list[sp.csr_array] = []
        self.precisions: list[sp.csc_array] = []
        self.constraints: list[tuple[np.ndarray, np.ndarray]] = []  # (columns, coefficients)
        self.hyperparameters: list[Hyperparameter] = []

    def add_field(self, name: str, group: str | None, bym2: bool) -> Field:
        sigma = self.add_hyperparameter(f"{name}_sigma", group, "sigma")
        rho = self.add_hyperparameter(f"{name}_rho", group, "rho") if bym2 else None
        n = self.graph.n_areas
        v = self.add_part(group, sp.eye_array(n, format="csc"), self.design.area, n)
        u = self.add_part(group, icar_precision(self.graph), self.design.area, n) if bym2 else None
        if bym2:  # Σ u = 0 on every component of more than one area
            self.constraints += [(u + nodes, np.ones(len(nodes)))
                                 for nodes in self.graph.component_nodes() if len(nodes) > 1]  # fmt: skip
        return Field(sigma, rho, v, u)

    def add_correlated_fields(self) -> tuple[tuple[Field, ...], tuple[int, int, tuple[int, ...]]]:
        """MCAR group fields (`sae.correlated_fields`): σ_g per group, one ρ, V_g and U_g per
        group (their prior, which holds R, comes as separate parts), and the partial correlations.
        Returns the fields and (first V column, first U column, the partials' θ indices)."""
        groups, n = self.design.groups, self.graph.n_areas
        sigmas = [self.add_hyperparameter("group_area_sigma", g, "sigma") for g in groups]
        rho = self.add_hyperparameter("group_area_rho", None, "rho")
        empty = sp.csc_array((n, n))
        v = [self.add_part(g, empty, self.design.area, n) for g in groups]
        u = [self.add_part(g, empty, self.design.area, n) for g in groups]
        for start in u:
            self.constraints += [(start + nodes, np.ones(len(nodes)))
                                 for nodes in self.graph.component_nodes() if len(nodes) > 1]  # fmt: skip
        partials = tuple(
            self.add_hyperparameter("group_area_correlation", f"{groups[i]}~{groups[j]}",
                                    "correlation", partial_correlation_shape(len(groups), j))
            for i, j in pairs_below_diagonal(len(groups))
        )  # fmt: skip
        fields = tuple(Field(s, rho, vg, ug) for s, vg, ug in zip(sigmas, v, u, strict=True))
        return fields, (v[0], u[0], partials)

    def add_time_blocks(self, spec: Spec) -> TimeBlocks:
        """f_t, f_gt per group and δ_it, as the spec's [model] trend, group_trend and interaction
        name them."""
        design, model = self.design, spec.model
        periods = len(design.periods)
        time = group_time = area_time = None
        if model.trend != "none":
            time = self.add_time_block("time", None, model.trend)
        if model.group_trend != "none":
            group_time = tuple(self.add_time_block("group_time", g, model.group_trend)
                               for g in design.groups)  # fmt: skip
        if model.interaction == "iid":
            sigma = self.add_hyperparameter("area_time_sigma", None, "sigma")
            size = self.graph.n_areas * periods
            start = self.add_part(None, sp.eye_array(size, format="csc"),
                                  design.area * periods + design.period, size)  # fmt: skip
            area_time = ScaledBlock(sigma, start, (self.graph.n_areas, periods), 1.0)
        return TimeBlocks(time, group_time or (), area_time)

    def add_time_block(self, name: str, group: str | None, kind: str) -> ScaledBlock:
        """One series over the periods: iid N(0, 1), or a scaled random walk with its
        constraints (`sae.random_walk`)."""
        periods = len(self.design.periods)
        sigma = self.add_hyperparameter(f"{name}_sigma", group, "sigma")
        if kind == "iid":
            start = self.add_part(group, sp.eye_array(periods, format="csc"), self.design.period,
                                  periods)  # fmt: skip
            return ScaledBlock(sigma, start, (periods,), 1.0)
        order = random_walk.order_of(kind)
        factor = 1.0 / np.sqrt(random_walk.scaling_factor(periods, order))
        walk = random_walk.precision(periods, order) + ICAR_JITTER * sp.eye_array(periods)
        start = self.add_part(group, sp.csc_array(walk), self.design.period, periods)
        self.constraints += [(start + np.arange(periods), row)
                             for row in random_walk.constraint_rows(periods, order)]  # fmt: skip
        return ScaledBlock(sigma, start, (periods,), factor)

    def add_hyperparameter(self, name: str, group: str | None, kind: str,
                           beta_shape: float = 0.0) -> int:  # fmt: skip
        self.hyperparameters.append(
            Hyperparameter(name, group, kind, self.prior, self.spectrum, beta_shape)
        )
        return len(self.hyperparameters) - 1

    def add_part(self, group: str | None, precision: sp.csc_array, column_of_row: np.ndarray,
                 size: int) -> int:  # fmt: skip
        """A block of `size` latents, row r entering through latent `column_of_row[r]` (its area,
        period, or area × period), in the rows of its group (all rows if None)."""
        design = self.design
        rows = len(design.area)
        member = np.arange(rows) if group is None else np.flatnonzero(
            design.group == design.groups.index(group))  # fmt: skip
        columns = sp.csr_array(
            (np.ones(len(member)), (member, column_of_row[member])), shape=(rows, size)
        )  # only the group's rows: an explicit zero would join P's pattern and its factor's
        first = self.start + self.size
        self.columns.append(columns)
        self.precisions.append(precision)
        self.size += size
        return first


def icar_precision(graph: AreaGraph) -> sp.csc_array:
    """The ICAR precision: the graph Laplacian D − W, with N(0, 1) on islands and a small jitter."""
    adjacency = graph.adjacency
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    diagonal = degree + graph.is_island + ICAR_JITTER
    return sp.csc_array(sp.diags_array(diagonal) - adjacency)
