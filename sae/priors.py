"""Prior families, named and documented.

The default set ``pc`` uses penalised-complexity priors (Simpson et al. 2017):

- σ (a field's standard deviation): P(σ > U) = α, i.e. σ ~ Exponential(−ln α / U);
  `[model] pc_sigma = [U, α]`. Count models: σ on the log-rate / logit scale, default U = 1,
  α = 0.01 (INLA's `pc.prec` (1, 0.01)). Fay–Herriot models are fitted to standardised direct
  estimates, so σ is in units of their standard deviation and the prior does not depend on the
  data's units: default U = 3, α = 0.01.
- ρ (BYM2 mixing): the PC prior of Riebler et al. (2016, sec. 4) as R-INLA computes it
  (`inla.pc.bym.phi`): the distance from the base model ρ = 0 is d(ρ) = √(2 KLD(ρ)) with the
  Kullback–Leibler divergence taken over all n dimensions of the field,

      2 KLD(ρ) = Σ_k [ρ(γ_k − 1) − log(1 + ρ(γ_k − 1))] + c (−ρ − log(1 − ρ)),

  γ_k the non-zero eigenvalues of the scaled ICAR covariance (1 / (s λ_k) for the non-zero
  Laplacian eigenvalues λ_k of each component) and c the number of components with more than one
  area (each contributes one zero eigenvalue of the precision). d(ρ) → ∞ as ρ → 1, so the prior
  is an untruncated exponential on d: π(ρ) = λ e^(−λ d(ρ)) d′(ρ), λ = −ln(1 − α) / d(U), which
  gives P(ρ < U) = α. Default U = 0.5, α = 2/3 (the choice of SUMMER; INLA's own default for
  `bym2` is α = 0.5); `[model] pc_rho = [U, α]`. Islands contribute nothing: their effect does
  not depend on ρ.
- Fixed effects: weakly informative normals on the standardised design the model sees: the
  intercept (centred on the crude level) N(0, 2²), each standardised covariate and each centred
  dummy contrast (strata, categorical covariates, groups) N(0, 1).

``morris2019`` reproduces Morris et al. (2019) and the Stan case study: β ~ N(0, 1) for the
intercept and covariates on their original scale, σ ~ N⁺(0, 1), ρ ~ Beta(½, ½). Its N(0, 1) on
the intercept only makes sense when rates are relative risks (expected counts), so sae refuses it
with a population exposure.

References
----------
Simpson, Rue, Riebler, Martins & Sørbye (2017). Penalising model component complexity.
Statistical Science 32(1):1-28.
Riebler, Sørbye, Simpson & Rue (2016). Stat. Methods Med. Res. 25(4):1145-1165.
Morris, Wheeler-Martin, Simpson, Mooney, Gelman & DiMaggio (2019). Bayesian hierarchical spatial
models: implementing the Besag York Mollié model in Stan. Spat. Spatio-temporal Epidemiol. 31:100301.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.sparse as sp
from scipy.interpolate import CubicSpline
from scipy.special import expit

from sae.graph import AreaGraph

PC_SIGMA = (1.0, 0.01)  # (U, α): P(σ > 1) = 0.01 on the log-rate or logit scale
# Fay–Herriot models: σ in units of the direct estimates' standard deviation, P(σ > 3 sd) = 0.01,
# weak enough that σ near one sd (milk: REML σ_u = 0.136, sd 0.13) is not pulled down
PC_SIGMA_STANDARDISED = (3.0, 0.01)
PC_RHO = (0.5, 2.0 / 3.0)  # (U, α): P(ρ < 0.5) = 2/3


@dataclass(frozen=True)
class PriorSet:
    """Which priors a fit uses.

    fixed_scale: "internal" puts the normal priors on the centred, standardised coefficients the
    sampler sees (scale-free); "original" puts them on the reported coefficients.
    """

    name: str
    fixed_scale: str
    intercept_sd: float
    beta_sd: float
    categorical_sd: float
    sigma: str
    rho: str
    pc_sigma: tuple[float, float] = PC_SIGMA
    pc_rho: tuple[float, float] = PC_RHO

    @property
    def sigma_rate(self) -> float:
        """λ of the PC prior σ ~ Exponential(λ), from P(σ > U) = α."""
        upper, alpha = self.pc_sigma
        return -np.log(alpha) / upper


PRIOR_SETS = {
    "pc": PriorSet("pc", "internal", 2.0, 1.0, 1.0, sigma="pc", rho="pc"),
    "morris2019": PriorSet("morris2019", "original", 1.0, 1.0, 5.0, sigma="halfnormal", rho="beta"),
}


def prior_set(spec) -> PriorSet:
    """The spec's prior set, with its PC prior parameters ([model] pc_sigma, pc_rho)."""
    default = PC_SIGMA_STANDARDISED if spec.model.family == "gaussian" else PC_SIGMA
    return dataclasses.replace(
        PRIOR_SETS[spec.model.priors], pc_sigma=tuple(spec.model.pc_sigma or default),
        pc_rho=tuple(spec.model.pc_rho),
    )  # fmt: skip


DENSE_SPECTRUM_LIMIT = 1500  # components larger than this use sparse log-determinants


@dataclass(frozen=True, eq=False)
class IcarSpectrum:
    """What the PC prior on ρ needs of a graph: 2 KLD(ρ) as a function of ρ.

    Per component of n_c > 1 areas, with s its scaling factor and λ_k its non-zero Laplacian
    eigenvalues (γ_k = 1 / (s λ_k)):

        Σ_k [ρ(γ_k − 1) − log(1 + ρ(γ_k − 1))] = ρ (tr L⁺ / s − (n_c − 1))
            − [log |(1 − ρ) s L + ρ I| − log ρ] + [(n_c − 1) log s + log n_c + log |L_g|]

    (L_g: L without one row and column; Π λ_k = n_c |L_g|, the matrix-tree theorem). Small
    components use their eigenvalues (`gamma`); larger ones the sparse log-determinants on a grid
    of ρ, interpolated (`table`), as R-INLA does for large graphs.
    """

    gamma: np.ndarray
    components: int
    table: tuple[np.ndarray, np.ndarray] | None = None  # (logit ρ, log Σ over large components)

    def twice_kld(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """2 KLD(ρ) and its derivative in ρ."""
        rho = np.asarray(rho, float)
        shifted = self.gamma - 1.0
        ratio = rho[..., None] * shifted
        total = (ratio - np.log1p(ratio)).sum(axis=-1) - self.components * (rho + np.log1p(-rho))
        slope = (ratio * shifted / (1.0 + ratio)).sum(axis=-1) + self.components * rho / (1 - rho)
        if self.table is not None:  # a cubic spline on the log scale: near-linear in logit ρ
            logit = self.table[0]
            position = np.log(rho / (1 - rho))
            inside = np.clip(position, logit[0], logit[-1])
            below = np.minimum(np.log(rho) - np.log(expit(logit[0])), 0.0)  # 2 KLD ~ ρ² near 0
            value = np.exp(self.table_spline(inside) + 2.0 * below)
            derivative = np.where(position < logit[0], 2.0 * (1 - rho),
                                  self.table_spline(inside, 1))  # fmt: skip
            total = total + value
            slope = slope + value * derivative / (rho * (1 - rho))
        return total, slope

    @cached_property
    def table_spline(self) -> CubicSpline:
        """The table interpolated smoothly: linear interpolation's kinks in d(ρ) tripled the
        length of NUTS trajectories on a 3,600-area grid (2 KLD within 1e-6 of the eigenvalues'
        there, its slope within 1e-4, against 2e-3 and 2e-2 linearly)."""
        return CubicSpline(*self.table)

    @cached_property
    def distance_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(d(ρ), logit ρ) on a fine logit grid, d strictly increasing: for inverting d."""
        logit = np.linspace(-18.0, 36.0, 20_001)
        distance = pc_rho_distance(expit(logit), self)[0]
        keep = np.concatenate([[True], np.diff(distance) > 0]) & np.isfinite(distance)
        return distance[keep], logit[keep]


def icar_spectrum(graph: AreaGraph) -> IcarSpectrum:
    """The PC prior's view of a graph: eigenvalues of its small components, a log-determinant table
    of its large ones (`IcarSpectrum`)."""
    components = [(nodes, variances) for nodes, variances in graph.marginal_variances]
    small = [nodes for nodes, _ in components if len(nodes) <= DENSE_SPECTRUM_LIMIT]
    gamma = [1.0 / (graph.scaling_factor[nodes[0]]
                    * np.linalg.eigvalsh(graph.laplacian(nodes))[1:]) for nodes in small]  # fmt: skip
    large = [(nodes, v) for nodes, v in components if len(nodes) > DENSE_SPECTRUM_LIMIT]
    table = large_component_table(graph, large) if large else None
    return IcarSpectrum(np.concatenate(gamma) if gamma else np.zeros(0), len(components), table)


# logit ρ from −8 (below it 2 KLD is ~ρ², extrapolated on the log scale) to 30, densest where the
# cubic spline's slope errs most (logit 2–8). Against a 180-point table (spacing 0.13 below 0, 0.25
# above) on the 3,000- and 20,000-area tract graphs these 76 points keep 2 KLD within 2e-5 and its
# slope within 1e-3 (relative; about 0.001 in log π(ρ)), and the table is 2.4× cheaper: 180
# factorisations took 35 s at 85,000 areas (measured).
LOGIT_TABLE = np.concatenate([np.linspace(-8.0, 0.0, 24), np.linspace(0.4, 12.0, 30),
                              np.linspace(12.8, 30.0, 22)])  # fmt: skip


def large_component_table(graph: AreaGraph, components) -> tuple[np.ndarray, np.ndarray]:
    """Σ_k [ρ(γ_k − 1) − log(1 + ρ(γ_k − 1))] over large components, on `LOGIT_TABLE`, from
    sparse log-determinants (see `IcarSpectrum`)."""
    from sae.sparse_cholesky import Refactorisation, SparseCholesky

    rho = expit(LOGIT_TABLE)
    total = np.zeros(len(rho))
    for nodes, variances in components:
        n, scale = len(nodes), graph.scaling_factor[nodes[0]]
        laplacian = graph.sparse_laplacian(nodes)
        pseudo_log_det = (n - 1) * np.log(scale) + np.log(n) + SparseCholesky(
            sp.csc_matrix(laplacian[: n - 1, : n - 1])).logdet()  # fmt: skip
        trace = variances.sum() / scale
        # one pattern for every ρ in (0, 1): ordered and analysed once
        upper, identity = sp.triu(laplacian, format="csc"), sp.eye_array(n, format="csc")
        factors = Refactorisation()
        for i, r in enumerate(rho):
            log_det = factors.factorise(
                sp.csc_matrix((1 - r) * scale * upper + r * identity)
            ).logdet()
            total[i] += r * (trace - (n - 1)) - (log_det - np.log(r)) + pseudo_log_det
    return LOGIT_TABLE, np.log(np.maximum(total, 1e-300))


def scale_sigma(name: str, prior: PriorSet, dims: str | None = None):
    """A standard-deviation hyperparameter under the prior set (PyMC)."""
    if prior.sigma == "pc":
        return pm.Exponential(name, lam=prior.sigma_rate, dims=dims)
    return pm.HalfNormal(name, sigma=1.0, dims=dims)


def mixing_rho(name: str, prior: PriorSet, spectrum: IcarSpectrum | None, dims: str | None = None):
    """The BYM2 mixing parameter ρ under the prior set (PyMC).

    The PC prior is sampled as what it is, an exponential on the distance d(ρ) (`{name}_distance`),
    and ρ = d⁻¹(d): on the logit scale its tail towards ρ = 1 is so heavy that NUTS diverges
    there, while d's exponential tail is light.

    d(ρ) grows only like √(−log(1 − ρ)), so beyond d(1 − 10⁻¹⁶) (the end of `distance_grid`) ρ is 1
    in floating point and the likelihood is flat in d: on a 3,600-area grid the prior puts 14% of
    its mass there. A chain started there (the samplers jitter the start by e^{±1} on log d)
    stayed for 180 draws at a log density 220 below the mode's. Chains start at d(0.99)/e instead:
    jittered, ρ starts below 0.99."""
    if prior.rho == "beta":
        return pm.Beta(name, alpha=0.5, beta=0.5, dims=dims)
    start = float(pc_rho_distance(np.array(0.99), spectrum)[0]) / np.e
    if dims is not None:
        start = np.full(len(pm.modelcontext(None).coords[dims]), start)
    distance = pm.Exponential(f"{name}_distance", lam=pc_rho_rate(prior, spectrum), dims=dims,
                              initval=start)  # fmt: skip
    return pm.Deterministic(name, rho_from_distance(distance, spectrum), dims=dims)


def rho_from_distance(distance, spectrum: IcarSpectrum):
    """ρ = d⁻¹(d) by linear interpolation of logit ρ on `IcarSpectrum.distance_grid` (numpy or
    pytensor); beyond the grid, its ends."""
    grid, logit = spectrum.distance_grid
    if isinstance(distance, pt.TensorVariable):
        from pytensor.tensor.extra_ops import searchsorted

        upper = pt.clip(searchsorted(grid, distance), 1, len(grid) - 1)
        grid, logit = pt.as_tensor_variable(grid), pt.as_tensor_variable(logit)
        clip, sigmoid = pt.clip, pt.sigmoid
    else:
        upper = np.clip(np.searchsorted(grid, distance), 1, len(grid) - 1)
        clip, sigmoid = np.clip, expit
    lower = upper - 1
    slope = (logit[upper] - logit[lower]) / (grid[upper] - grid[lower])
    position = logit[lower] + (clip(distance, grid[0], grid[-1]) - grid[lower]) * slope
    return sigmoid(position)


def pc_rho_distance(rho, spectrum: IcarSpectrum):
    """d(ρ) = √(2 KLD(ρ)) and its derivative d′(ρ) (numpy)."""
    twice_kld, slope = spectrum.twice_kld(rho)
    distance = np.sqrt(np.maximum(twice_kld, 0.0))
    return distance, slope / (2.0 * distance)


def pc_rho_rate(prior: PriorSet, spectrum: IcarSpectrum) -> float:
    """λ with P(ρ < U) = 1 − exp(−λ d(U)) = α."""
    upper, alpha = prior.pc_rho
    distance, _ = pc_rho_distance(np.array(upper), spectrum)
    return float(-np.log1p(-alpha) / distance)


def pc_rho_logp(rho, prior: PriorSet, spectrum: IcarSpectrum):
    """log π(ρ) = log λ − λ d(ρ) + log d′(ρ) (numpy)."""
    rate = pc_rho_rate(prior, spectrum)
    distance, derivative = pc_rho_distance(rho, spectrum)
    return np.log(rate) - rate * distance + np.log(derivative)


def sigma_log_prior(prior: PriorSet, sigma: np.ndarray) -> np.ndarray:
    """log π(σ) on σ > 0 (numpy): the PC prior's exponential, or the half-normal N⁺(0, 1)."""
    if prior.sigma == "pc":
        return np.log(prior.sigma_rate) - prior.sigma_rate * sigma
    return 0.5 * np.log(2.0 / np.pi) - 0.5 * sigma**2


def rho_log_prior(prior: PriorSet, rho: np.ndarray) -> np.ndarray:
    """log π(ρ) of Beta(½, ½) on 0 < ρ < 1 (numpy); the PC prior is handled on its distance."""
    return -0.5 * np.log(rho) - 0.5 * np.log1p(-rho) - np.log(np.pi)
