"""Prior families, named and documented.

PC priors (Simpson et al. 2017) are the default, with INLA's default parameters:
- σ (BYM2 standard deviation): P(σ > 1) = 0.01, i.e. σ ~ Exponential(λ = −ln 0.01 / 1).
- ρ (BYM2 mixing): P(ρ < 0.5) = 2/3, the PC prior of Riebler et al. (2016, sec. 4):
  d(ρ) = √(2 KLD(ρ)), KLD(ρ) = ½ Σ_k [ρ(γ_k − 1) − log(1 + ρ(γ_k − 1))], with γ_k the non-zero
  eigenvalues of the scaled ICAR covariance (1 / (s λ_k) for Laplacian eigenvalues λ_k > 0 of each
  component), and π(ρ) ∝ θ exp(−θ d(ρ)) |d′(ρ)| on [0, 1]; d is bounded there, so the
  exponential is truncated at d(1) and θ is solved so that P(ρ < 0.5) = 2/3 holds for the truncated
  prior. Islands contribute nothing: their effect does not depend on ρ.

``morris2019`` reproduces Morris et al. (2019) and the Stan case study: β ~ N(0, 1) for the
intercept and covariates on their original scale, σ ~ N⁺(0, 1), ρ ~ Beta(½, ½).

References
----------
Simpson, Rue, Riebler, Martins & Sørbye (2017). Penalising model component complexity.
Statistical Science 32(1):1-28.
Riebler, Sørbye, Simpson & Rue (2016). Stat. Methods Med. Res. 25(4):1145-1165.
Morris, Wheeler-Martin, Simpson, Mooney, Gelman & DiMaggio (2019). Bayesian hierarchical spatial
models: implementing the Besag York Mollié model in Stan. Spat. Spatio-temporal Epidemiol. 31:100301.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.optimize

from sae.graph import AreaGraph

PC_SIGMA_U, PC_SIGMA_ALPHA = 1.0, 0.01
PC_RHO_U, PC_RHO_ALPHA = 0.5, 2.0 / 3.0


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


PRIOR_SETS = {
    "pc": PriorSet("pc", "internal", 5.0, 5.0, 5.0, sigma="pc", rho="pc"),
    "morris2019": PriorSet("morris2019", "original", 1.0, 1.0, 5.0, sigma="halfnormal", rho="beta"),
}


def scale_sigma(name: str, prior: PriorSet, dims: str | None = None):
    """A standard-deviation hyperparameter under the prior set."""
    if prior.sigma == "pc":
        return pm.Exponential(name, lam=-np.log(PC_SIGMA_ALPHA) / PC_SIGMA_U, dims=dims)
    return pm.HalfNormal(name, sigma=1.0, dims=dims)


def mixing_rho(name: str, prior: PriorSet, eigenvalues: np.ndarray | None, dims: str | None = None):
    """The BYM2 mixing parameter ρ under the prior set."""
    if prior.rho == "beta":
        return pm.Beta(name, alpha=0.5, beta=0.5, dims=dims)
    rho = pm.Uniform(name, lower=0.0, upper=1.0, dims=dims)
    pm.Potential(f"{name}_pc_prior", pc_rho_logp(rho, eigenvalues).sum())
    return rho


def scaled_icar_eigenvalues(graph: AreaGraph) -> np.ndarray:
    """γ_k: the non-zero eigenvalues of the scaled ICAR covariance, over all components."""
    values = [1.0 / (graph.scaling_factor[nodes[0]] * eigenvalues)
              for nodes, eigenvalues in graph.laplacian_spectrum]  # fmt: skip
    return np.concatenate(values) if values else np.ones(1)


def kld(rho, gamma):
    """KLD of BYM2 at ρ from its base model ρ = 0, and its derivative in ρ (numpy or pytensor)."""
    shifted = gamma - 1.0
    ratio = rho[..., None] * shifted
    divergence = 0.5 * (ratio - log1p(ratio)).sum(axis=-1)
    slope = 0.5 * (ratio * shifted / (1.0 + ratio)).sum(axis=-1)
    return divergence, slope


def log1p(x):
    return pt.log1p(x) if isinstance(x, pt.TensorVariable) else np.log1p(x)


def pc_rho_rate(gamma: np.ndarray) -> tuple[float, float]:
    """θ and log normaliser of the PC prior, truncated to ρ ∈ [0, 1] because d(ρ) ≤ d(1).

    θ solves (1 − e^(−θ d(U))) / (1 − e^(−θ d(1))) = α, so that P(ρ < U) = α exactly.
    """
    divergence, _ = kld(np.array([PC_RHO_U, 1.0 - 1e-12]), gamma)
    d_u, d_1 = np.sqrt(2.0 * divergence)
    if d_u / d_1 >= PC_RHO_ALPHA:
        raise ValueError(f"no PC prior on ρ with P(ρ < {PC_RHO_U}) = {PC_RHO_ALPHA} for this graph")

    def excess(theta: float) -> float:
        return -np.expm1(-theta * d_u) / -np.expm1(-theta * d_1) - PC_RHO_ALPHA

    theta = scipy.optimize.brentq(excess, 1e-9, 1e4, xtol=1e-12)
    return float(theta), float(np.log(-np.expm1(-theta * d_1)))


def pc_rho_logp(rho, gamma: np.ndarray):
    """log π(ρ) = log θ − θ d(ρ) + log d′(ρ) − log(1 − e^(−θ d(1))), d = √(2 KLD), d′ = KLD′ / d."""
    theta, log_normaliser = pc_rho_rate(gamma)
    divergence, slope = kld(rho, gamma)
    distance = (2.0 * divergence) ** 0.5
    log = pt.log if isinstance(rho, pt.TensorVariable) else np.log
    return np.log(theta) - log_normaliser - theta * distance + log(slope) - log(distance)


def sigma_log_prior(prior: PriorSet, sigma: np.ndarray) -> np.ndarray:
    """log π(σ) on σ > 0 (numpy): the PC prior's exponential, or the half-normal N⁺(0, 1)."""
    if prior.sigma == "pc":
        rate = -np.log(PC_SIGMA_ALPHA) / PC_SIGMA_U
        return np.log(rate) - rate * sigma
    return 0.5 * np.log(2.0 / np.pi) - 0.5 * sigma**2


def rho_log_prior(prior: PriorSet, rho: np.ndarray, gamma: np.ndarray | None) -> np.ndarray:
    """log π(ρ) on 0 < ρ < 1 (numpy): the PC prior, or Beta(½, ½)."""
    if prior.rho == "beta":
        return -0.5 * np.log(rho) - 0.5 * np.log1p(-rho) - np.log(np.pi)
    return pc_rho_logp(np.asarray(rho, float), gamma)
