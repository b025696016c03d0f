"""The hyperparameters θ of a Laplace fit: their posterior mode, its curvature, and the
importance-sampling points over which the latent field is integrated.

The mode of log p̃(θ | y) is found over unconstrained θ (log σ, logit ρ) by L-BFGS-B with
forward-difference gradients, its Hessian by finite differences; the points come from two
proposals (a skewed Student-t at the mode, `SplitStudentT`, then a Student-t fitted to the first
stage's weighted points), weighted against their equal mixture and Pareto-smoothed (PSIS: the k̂
measures the integration's reliability; Vehtari et al. 2024, JMLR 25:72).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import scipy.optimize
from scipy import stats
from scipy.stats import qmc

from sae.laplace import NEWTON_TOLERANCE, LaplaceEngine, Mode

GRADIENT_STEP = 1e-5  # forward differences on the unconstrained θ scale
THETA_GRADIENT_TOLERANCE = 0.05  # largest |∂ log p̃(θ | y) / ∂θ| at the mode
POINT_TOLERANCE = 1e-4  # Newton decrement at the integration points: weights to within 0.01%
HESSIAN_STEP = 0.02
PROPOSAL_DF = 5  # Student-t proposals over θ
PROPOSAL_SCALE = 1.3  # widens the Gaussian fit at the mode, so the proposal's tails cover p(θ | y)
AXIS_STEP = np.sqrt(2.0)  # where each axis's scales are read: a Gaussian drops by 1 there
AXIS_SCALE_RANGE = (0.5, 4.0)  # each side's scale, relative to the Hessian's
# log σ from 1e-4 to 50, logit ρ from 1e-5 to 1 − 1e-5, a partial correlation up to ±0.999:
# beyond nearly all posterior mass
THETA_BOUNDS = {"log": (np.log(1e-4), np.log(50.0)), "logit": (-11.5, 11.5), "atanh": (-3.8, 3.8)}
# 64 points + 8 per hyperparameter (measured: on Pennsylvania 32 points left 2-3% of interval
# ends outside the agreement band with long NUTS runs, 128 none)
MAX_AUTOMATIC_POINTS = 160
CORRELATED_POINT_BUDGET = 1_000_000  # points × latent size (`automatic_points`)
KEPT_MODES_LIMIT = 5_000_000  # points × latent size: the US counties × 5 groups (2.7M) keep theirs


def automatic_points(dimension: int, correlated: bool = False, latent_size: int = 0) -> int:
    """How many θ points to integrate over. Partial correlations between group fields (MCAR)
    are weakly identified: their posterior stays near the prior and has heavy tails where a group's
    σ nears 0. Those models get 50 points per hyperparameter while points × latent size stays
    within `CORRELATED_POINT_BUDGET` (measured on the MCAR test grid, 5 hyperparameters: 104 points
    gave the correlation's 95% interval as [−0.42, 0.84], 250 points [−0.80, 0.90] and 400 points
    [−0.78, 0.88], against [−0.68, 0.89] from 4 × 1000 NUTS draws)."""
    points = min(64 + 8 * dimension, MAX_AUTOMATIC_POINTS)
    if correlated:
        points = max(points, min(50 * dimension, CORRELATED_POINT_BUDGET // max(latent_size, 1)))
    return points


def theta_mode(engine: LaplaceEngine, start: np.ndarray) -> np.ndarray:
    """The mode of log p̃(θ | y) over unconstrained θ (L-BFGS-B with forward-difference gradients,
    within bounds that keep the precision well conditioned). It runs to `THETA_GRADIENT_TOLERANCE`:
    stopping once two iterations gained under 0.02 in log density saved at most 4% of the
    evaluations on the tract maps, but left the US counties × 5 groups' θ proposal off (the
    integration's Pareto k̂ 0.39 → 0.88, measured)."""
    cache = {}

    def objective(t):
        key = tuple(t)
        if key not in cache:
            cache[key] = -engine.log_posterior(t)
        return cache[key]

    def gradient(t):
        base = objective(t)
        steps = t + np.eye(len(t)) * GRADIENT_STEP  # each predicted from the mode at t
        return (-np.array(engine.evaluate(steps, None, engine.mode_at(t))) - base) / GRADIENT_STEP

    # L-BFGS-B's first step is the whole negative gradient, projected on the bounds: at the start
    # it is often in the thousands and lands in a corner (σ at 1e-4, ρ at 1) that takes a dozen
    # iterations to leave. Dividing the objective by the start's largest gradient makes that step
    # at most 1 on the unconstrained scale; the gradient tolerance is divided alike.
    scale = max(1.0, float(np.abs(gradient(start)).max()))
    bounds = theta_bounds(engine)
    result = scipy.optimize.minimize(lambda t: objective(t) / scale, start,
                                     jac=lambda t: gradient(t) / scale, method="L-BFGS-B",
                                     bounds=bounds, options={"maxiter": 200, "maxcor": 30, "ftol": 1e-12, "gtol": THETA_GRADIENT_TOLERANCE / scale})  # fmt: skip
    return result.x


def theta_bounds(engine: LaplaceEngine) -> list[tuple[float, float]]:
    """Each unconstrained hyperparameter's (low, high) from `THETA_BOUNDS`."""
    return [THETA_BOUNDS[h.scale] for h in engine.model.hyperparameters]


def bounded_evaluations(engine: LaplaceEngine, points: np.ndarray, result) -> list:
    """`LaplaceEngine.evaluate` at the integration points from the anchor, to `POINT_TOLERANCE`;
    (None, −∞) for a point beyond `theta_bounds`, which hold nearly all posterior mass and where
    the θ search stays too (`result` gives a (kept, log p̃) pair)."""
    low, high = np.array(theta_bounds(engine)).T
    inside = ((points >= low) & (points <= high)).all(axis=1)
    found = iter(engine.evaluate(points[inside], POINT_TOLERANCE, engine.anchor, result))
    return [next(found) if within else (None, -np.inf) for within in inside]


def theta_hessian(engine: LaplaceEngine, mode: np.ndarray) -> np.ndarray:
    """−∇² log p̃(θ | y) at the mode by finite differences: central on the diagonal, one-sided
    for the cross terms (d(d + 3)/2 + 1 evaluations); made positive definite."""
    d, h = len(mode), HESSIAN_STEP
    centre = engine.mode_at(mode)
    shift = np.eye(d) * h
    pairs = [(i, j) for i in range(d) for j in range(i)]
    crossed = np.reshape([mode + shift[i] + shift[j] for i, j in pairs], (-1, d))
    points = np.vstack([mode + shift, mode - shift, crossed])
    values = np.array(engine.evaluate(points, NEWTON_TOLERANCE, centre))
    plus, minus, both = values[:d], values[d : 2 * d], values[2 * d :]
    at_mode = centre.log_posterior
    hessian = np.diag(-(plus - 2 * at_mode + minus) / h**2)
    for (i, j), value in zip(pairs, both, strict=True):
        hessian[i, j] = hessian[j, i] = -(value - plus[i] - plus[j] + at_mode) / h**2
    values, vectors = np.linalg.eigh(hessian)
    return vectors @ np.diag(np.maximum(values, 1e-2 * values.max())) @ vectors.T


def sobol_points(sobol: qmc.Sobol, count: int) -> np.ndarray:
    """The next `count` points of a scrambled Sobol' sequence. Counts that are not powers of two
    lose the sequence's balance properties (SciPy warns), not its low discrepancy: the points feed
    importance weights, which stay unbiased either way, so the warning is not passed to users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The balance properties of Sobol", UserWarning)
        return sobol.random(count)


def integration_points(engine, mode, hessian, count, seed):
    """Importance sampling over θ in two stages: the points (unconstrained θ, points × d), their
    Laplace modes, their Pareto-smoothed, normalised weights and the weights' k̂. The modes are
    kept only while points × latent size ≤ `KEPT_MODES_LIMIT` (each holds a sparse factor: 12 GB
    at 20,000 areas × 6 groups); else only their x* (float32: 350 MB at 85,000 areas × 6 groups),
    from which `sae.laplace_method` recomputes those it draws from in one factorisation.

    Stage one draws from a skewed Student-t at the mode (`axis_scales`: the Hessian's axes, each
    side scaled to where log p̃ drops); the 2d evaluations that set its scales come out of this
    stage's half of the points (a quarter of them at least stay). Stage two draws the other half
    from a Student-t fitted to the weighted stage-one points, which follows what the axes miss.
    All points are then weighted against the equal mixture of both proposals (defensive
    importance sampling; Owen & Zhou 2000, JASA 95:135-143), so neither stage's tails can make
    the weights explode.
    """
    d = len(mode)
    sobol = qmc.Sobol(d + 1, scramble=True, seed=seed)
    keep, modes = count * engine.model.size <= KEPT_MODES_LIMIT, []

    def kept_and_value(mode: Mode) -> tuple:
        return mode if keep else mode.x.astype(np.float32), mode.log_posterior

    def evaluate(points: np.ndarray) -> np.ndarray:
        """log p̃(θ | y) at the points (−∞, weight 0, beyond the bounds), keeping their modes."""
        found = bounded_evaluations(engine, points, kept_and_value)
        modes.extend(kept for kept, _ in found)
        return np.array([value for _, value in found])

    engine.anchor = engine.mode(mode, POINT_TOLERANCE)  # every point's Newton starts near it
    first = axis_scales(engine, mode, hessian)
    points = first.points(sobol_points(sobol, max(count // 2 - 2 * d, count // 4)))
    log_posterior = evaluate(points)
    first_weights = log_posterior - first.logpdf(points)
    weights = np.exp(first_weights - first_weights.max())
    weights /= weights.sum()
    centre = weights @ points
    spread = (points - centre).T @ ((points - centre) * weights[:, None]) + 1e-6 * np.eye(d)
    second = student_t(centre, spread * PROPOSAL_SCALE**2)
    extra = second.points(sobol_points(sobol, count - count // 2))
    log_posterior = np.concatenate([log_posterior, evaluate(extra)])
    points = np.vstack([points, extra])
    mixture = np.logaddexp(first.logpdf(points), second.logpdf(points)) - np.log(2.0)
    log_weights = log_posterior - mixture
    weights, inside = np.zeros(len(points)), np.isfinite(log_weights)
    smoothed, k_hat = az.psislw(log_weights[inside] - log_weights[inside].max())
    weights[inside] = np.exp(smoothed)
    return points, modes, weights, float(k_hat)


def axis_scales(engine: LaplaceEngine, mode: np.ndarray, hessian: np.ndarray) -> SplitStudentT:
    """The stage-one proposal: along each eigenvector of the Hessian, log p̃ is evaluated
    `AXIS_STEP` Gaussian sds either side of the mode, and each side's scale is set so that a
    Gaussian would drop as much there, σ± = AXIS_STEP / √(2 Δ±) (1 for a Gaussian), within
    `AXIS_SCALE_RANGE`. The axes are INLA's z-parametrisation of θ (Rue, Martino & Chopin 2009,
    sec. 3.1), the two-sided scales its asymmetric correction for skewed θ posteriors (Martins,
    Simpson, Lindgren & Rue 2013, CSDA 67:68-83); a posterior of logit ρ with a long tail towards
    ρ = 1 is the common case here (the minimal Scotland spec with its polygon graph: the
    integration's k̂ 1.07 → 0.47, measured)."""
    values, vectors = np.linalg.eigh(hessian)
    axes = vectors / np.sqrt(values)  # columns: one Gaussian sd along each eigenvector
    steps = AXIS_STEP * np.vstack([axes.T, -axes.T])
    found = bounded_evaluations(engine, mode + steps, lambda m: (None, m.log_posterior))
    drops = engine.anchor.log_posterior - np.array([value for _, value in found])
    low, high = AXIS_SCALE_RANGE
    sides = np.clip(AXIS_STEP / np.sqrt(2.0 * np.maximum(drops, 1e-12)), low, high)
    d = len(mode)
    return SplitStudentT(mode, axes * PROPOSAL_SCALE, sides[:d], sides[d:])


@dataclass(frozen=True)
class SplitStudentT:
    """θ = centre + axes z with independent coordinates z_i, each a Student-t split at 0: scale
    `upper`_i above, `lower`_i below, density 2 / (σ₊ + σ₋) f(z / σ±) for f the standard t's
    (continuous at 0; mass σ₋ / (σ₊ + σ₋) below it)."""

    centre: np.ndarray
    axes: np.ndarray
    upper: np.ndarray
    lower: np.ndarray

    def points(self, uniform: np.ndarray) -> np.ndarray:
        """Quasi-random points from uniforms (the first d columns), by each coordinate's inverse
        distribution function."""
        u = uniform[:, : len(self.centre)]
        total = self.upper + self.lower
        below = self.lower / total
        z = np.where(
            u < below,
            self.lower * stats.t.ppf(np.minimum(u / below, 1.0) / 2, PROPOSAL_DF),
            self.upper * stats.t.ppf(0.5 + np.maximum(u - below, 0.0) * total / (2 * self.upper),
                                     PROPOSAL_DF),
        )  # fmt: skip
        return self.centre + z @ self.axes.T

    def logpdf(self, points: np.ndarray) -> np.ndarray:
        z = np.linalg.solve(self.axes, (points - self.centre).T).T
        side = np.where(z < 0, self.lower, self.upper)
        per_axis = stats.t.logpdf(z / side, PROPOSAL_DF) + np.log(2.0 / (self.upper + self.lower))
        return per_axis.sum(axis=1) - np.linalg.slogdet(self.axes)[1]


@dataclass(frozen=True)
class StudentT:
    """A multivariate Student-t proposal: centre, scale matrix, degrees of freedom."""

    centre: np.ndarray
    scale: np.ndarray

    def points(self, uniform: np.ndarray) -> np.ndarray:
        """Quasi-random points from (d + 1)-dimensional uniforms (normal part, then radius)."""
        d = len(self.centre)
        normal = stats.norm.ppf(uniform[:, :d])
        radius = np.sqrt(stats.chi2.ppf(uniform[:, d], PROPOSAL_DF) / PROPOSAL_DF)
        return self.centre + (normal / radius[:, None]) @ np.linalg.cholesky(self.scale).T

    def logpdf(self, points: np.ndarray) -> np.ndarray:
        return stats.multivariate_t(self.centre, self.scale, df=PROPOSAL_DF).logpdf(points)


def student_t(centre: np.ndarray, scale: np.ndarray) -> StudentT:
    return StudentT(np.asarray(centre, float), np.atleast_2d(scale))
