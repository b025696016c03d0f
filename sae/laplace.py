"""The Laplace method: a sparse Laplace approximation of the latent field, integrated over the
hyperparameters by importance sampling, checked against the exact posterior on every fit.

For a latent Gaussian model (`sae.latent`): x ~ N(m, Q⁻¹) with C x = 0, η = level + A(θ) x.

Inner step, for given θ (Rue, Martino & Chopin 2009, sec. 3; Rue & Held 2005, sec. 2.3 and 4.4):
Newton's method for the mode x* of p(x | y, θ), each step solving (Q + Aᵀ W A) δ = ∇ and
projecting δ onto C δ = 0 by conditioning by kriging; then

    log p̃(θ | y) = Σ_r log p(y_r | η*_r) − ½ (x* − m)ᵀ Q (x* − m) − ½ log |P|_C + log π(θ) + c,
    P = Q + Aᵀ W A,   log |P|_C = log |P| + log |C P⁻¹ Cᵀ|   (the determinant on C x = 0).

Outer step: the mode of log p̃(θ | y) over unconstrained θ (log σ, logit ρ), its Hessian by finite
differences, then importance sampling: points from a Student-t at the mode, weights p̃(θ | y) / q(θ),
Pareto-smoothed (PSIS; the k̂ measures the integration's reliability). Draws of x come from the
Gaussian approximation at each point, in proportion to its weight, with the constraints imposed
exactly.

Accuracy check: the Gaussian approximation at each point is proportional to p(x | θ) Π_r exp(ℓ̃_r),
ℓ̃_r the second-order expansion of row r's log-likelihood at the mode. So the log importance weight
of a draw against the exact conditional posterior is Σ_r [ℓ_r(η_r) − ℓ̃_r(η_r)]. PSIS on the sum
gives the joint k̂; when it is below 0.7 the draws are resampled by those weights (a correction
of the Gaussian approximation). Each row's own term gives that row's k̂: cells whose rows exceed
0.7 are flagged, and NUTS is the method to use for them (Vehtari et al. 2024, JMLR 25:72).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import arviz as az
import numpy as np
import scipy.optimize
import scipy.sparse as sp
import xarray as xr
from scipy import stats
from scipy.stats import qmc

from sae.design import Design
from sae.diagnostics import PARETO_K_LIMIT, Diagnostics
from sae.errors import SaeError
from sae.family import Family
from sae.graph import AreaGraph
from sae.latent import LatentModel, latent_model
from sae.sparse_cholesky import BorderedCholesky
from sae.spec import Spec

NEWTON_TOLERANCE = 1e-9  # on the Newton decrement, the predicted gain in log density
MAX_NEWTON_STEPS = 50
GRADIENT_STEP = 1e-5  # forward differences on the unconstrained θ scale
POINT_TOLERANCE = 1e-4  # Newton decrement at the integration points: weights to within 0.01%
HESSIAN_STEP = 0.02
PROPOSAL_DF = 5  # Student-t proposal over θ
PROPOSAL_SCALE = 1.3  # widens the Gaussian fit at the mode, so the proposal's tails cover p(θ | y)
DRAW_BATCH = 250
NEGLIGIBLE_WEIGHT_SD = 0.1
CORRECTION_MIN_ESS = 0.25
# integration points over θ: 64 + 8 per hyperparameter (measured: on Pennsylvania 32 points left
# 2-3% of interval ends outside the agreement band with long NUTS runs, 128 none)
MAX_AUTOMATIC_POINTS = 160  # share of the draws the reweighted sample must keep
# log σ from 1e-4 to 50, logit ρ from 1e-5 to 1 − 1e-5: far beyond any posterior mass sae meets
TANGENT_RANGE = 0.5  # on the unconstrained θ scale: beyond it the linear prediction is not used
THETA_BOUNDS = {"sigma": (np.log(1e-4), np.log(50.0)), "rho": (-11.5, 11.5)}


@dataclass
class Mode:
    """The Gaussian approximation of p(x | y, θ) at one θ."""

    t: np.ndarray  # θ, unconstrained
    x: np.ndarray
    eta: np.ndarray
    factor: BorderedCholesky
    kriging: np.ndarray | None  # P⁻¹ Cᵀ (C P⁻¹ Cᵀ)⁻¹, to impose C x = 0
    constrained: np.ndarray | None  # P⁻¹ Cᵀ
    log_posterior: float  # log p̃(θ | y) + const, θ unconstrained (Jacobian included)
    curvature: tuple[np.ndarray, np.ndarray, np.ndarray]  # ℓ, ∇ℓ, −∇²ℓ per row at η*
    scales: np.ndarray  # s(θ)


class PrecisionAssembly:
    """P = Q + Aᵀ W A with A = A₀ diag(s), assembled for any (s, w) without sparse products.

    Entry (a, b) of A₀ᵀ W A₀ is Σ_r A₀[r, a] A₀[r, b] w_r. The pairs of non-zeros within each row
    are listed once, as a sparse map M from the data rows to P's fixed sparsity pattern: for given
    scales M's values are A₀[r, a] A₀[r, b] s_a s_b, and then P's values are Q's plus M w.
    """

    def __init__(self, precision: sp.csc_array, incidence: sp.csr_array, classes: np.ndarray):
        """`classes` labels the latent columns whose scales are always equal (same block, same
        component), so that the scale products are looked up per pair of classes."""
        incidence = sp.csr_array(incidence)
        counts = np.diff(incidence.indptr)
        row_of = np.repeat(np.arange(incidence.shape[0]), counts)
        starts = np.repeat(incidence.indptr[:-1], counts)
        # all (i, j) pairs of non-zeros of the same row: repeat each entry by its row's count
        repeats = counts[row_of]
        first = np.repeat(np.arange(incidence.nnz), repeats)
        second = (
            starts[first] + np.arange(len(first)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        )
        q = sp.coo_array(precision)
        n = precision.shape[0]
        a, b = incidence.indices[first].astype(np.int64), incidence.indices[second].astype(np.int64)
        keys = np.concatenate([q.col.astype(np.int64) * n + q.row, b * n + a])
        unique, position = np.unique(keys, return_inverse=True)
        prior = np.bincount(position[: q.nnz], weights=q.data, minlength=len(unique))
        pair_map = sp.csr_array(
            (incidence.data[first] * incidence.data[second], (position[q.nnz :], row_of[first])),
            shape=(len(unique), incidence.shape[0]),
        )
        order = np.argsort(position[q.nnz :], kind="stable")  # the csr's order of the pairs
        _, self.representative, class_index = np.unique(
            classes, return_index=True, return_inverse=True
        )
        self.pair_class = class_index[a[order]] * len(self.representative) + class_index[b[order]]
        self.coefficient = pair_map.data.copy()
        self.pair_map, self.prior = pair_map, prior
        columns, rows = np.divmod(unique, n)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(columns, minlength=n))])
        self.matrix = sp.csc_matrix(
            (prior.copy(), rows.astype(np.int32), indptr.astype(np.int32)), shape=(n, n)
        )

    def set_scales(self, scales: np.ndarray) -> None:
        per_class = scales[self.representative]
        self.pair_map.data[:] = (
            self.coefficient * np.outer(per_class, per_class).ravel()[self.pair_class]
        )

    def assemble(self, weight: np.ndarray) -> sp.csc_matrix:
        """P for the current scales and these weights (the same matrix object, refilled)."""
        np.add(self.pair_map @ weight, self.prior, out=self.matrix.data)
        return self.matrix


class LaplaceEngine:
    """Evaluates the Laplace approximation of a latent model at any θ, warm-starting Newton."""

    def __init__(self, model: LatentModel):
        self.model = model
        self.assembly = PrecisionAssembly(model.precision, model.incidence, scale_classes(model))
        self.last: Mode | None = None
        self.constraints_t = np.asfortranarray(model.constraints.T.toarray())
        self.evaluations = 0

    def mode(self, t: np.ndarray, tolerance: float = NEWTON_TOLERANCE) -> Mode:
        """The Gaussian approximation at θ (unconstrained `t`): Newton's method until the Newton
        decrement, the predicted gain in log density, is below `tolerance`."""
        model = self.model
        theta = model.natural(t)
        scales = model.scales(theta)
        A = model.design_matrix(theta)
        x = self.warm_start(t, scales)
        self.assembly.set_scales(scales)
        for _ in range(MAX_NEWTON_STEPS):
            eta = model.level + A @ x
            loglik, gradient, weight = model.family.newton_terms(model.design.rows, eta)
            deviation = x - model.mean
            factor = BorderedCholesky(self.assembly.assemble(weight), self.model.n_fixed)
            kriging, constrained = kriging_terms(factor, model.constraints, self.constraints_t)
            ascent = A.T @ gradient - model.precision @ deviation
            step = factor.solve(ascent)
            if kriging is not None:
                step = step - kriging @ (model.constraints @ step)
            if 0.5 * ascent @ step < tolerance:
                break
            current = loglik.sum() - 0.5 * deviation @ (model.precision @ deviation)
            x = line_search(model, A, x, step, current)
        else:
            raise SaeError(
                "the Laplace approximation's inner Newton iterations did not converge at "
                f"θ = {dict(zip([h.label for h in model.hyperparameters], theta, strict=True))}; "
                'use method = "nuts" for this model.'
            )
        self.evaluations += 1
        log_det = factor.logdet()
        if constrained is not None:
            log_det += np.linalg.slogdet(model.constraints @ constrained)[1]
        log_posterior = (loglik.sum() - 0.5 * deviation @ (model.precision @ deviation)
                         - 0.5 * log_det + model.log_prior(t))  # fmt: skip
        self.last = Mode(t, x, eta, factor, kriging, constrained, float(log_posterior),
                         (loglik, gradient, weight), scales)  # fmt: skip
        return self.last

    def warm_start(self, t: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Where Newton starts: near the last mode, its first-order prediction x* + P⁻¹ ∂F/∂θ Δθ
        (implicit differentiation of the mode condition F(x*, θ) = Aᵀ ∇ℓ − Q (x* − m) = 0);
        further away, the last mode rescaled so that the effects s·x, and so η, stay put."""
        last = self.last
        if last is None:
            return self.model.mean.copy()
        if np.abs(t - last.t).max() > TANGENT_RANGE:
            ratio = np.divide(last.scales, scales, out=np.ones_like(scales), where=scales > 0)
            return last.x * ratio
        incidence = self.model.incidence
        change = scales - last.scales
        _, gradient, weight = last.curvature
        shift = incidence @ (change * last.x)
        force = change * (incidence.T @ gradient) - last.scales * (incidence.T @ (weight * shift))
        step = last.factor.solve(force)
        if last.kriging is not None:
            step = step - last.kriging @ (self.model.constraints @ step)
        return last.x + step

    def log_posterior(self, t: np.ndarray) -> float:
        return self.mode(np.asarray(t, float)).log_posterior


def scale_classes(model: LatentModel) -> np.ndarray:
    """Labels of the latent columns whose scales are equal at any θ: columns whose scales agree at
    two unrelated values of θ belong to the same block and component."""
    rng = np.random.default_rng(0)
    probes = [model.scales(model.natural(rng.normal(0.0, 1.0, len(model.hyperparameters))))
              for _ in range(2)]  # fmt: skip
    return np.unique(np.column_stack(probes), axis=0, return_inverse=True)[1].ravel()


def kriging_terms(factor: BorderedCholesky, constraints: sp.csr_array, transposed: np.ndarray):
    """V = P⁻¹ Cᵀ and V (C V)⁻¹: x − V (C V)⁻¹ C x is the kriged (constrained) version of x.
    `transposed` is Cᵀ as a dense array."""
    if constraints.shape[0] == 0:
        return None, None
    constrained = factor.solve(transposed)
    return constrained @ np.linalg.inv(constraints @ constrained), constrained


def line_search(model: LatentModel, A, x, step, current: float) -> np.ndarray:
    """x + λ step with λ halved until the log density of x does not decrease."""
    for halvings in range(30):
        proposal = x + 0.5**halvings * step
        value = model.log_joint(proposal, A=A)
        if np.isfinite(value) and value >= current - 1e-10 * abs(current):
            return proposal
    return x


def theta_mode(engine: LaplaceEngine, start: np.ndarray) -> tuple[np.ndarray, float]:
    """The mode of log p̃(θ | y) over unconstrained θ and the value there (L-BFGS-B with
    forward-difference gradients, within bounds that keep the precision well conditioned)."""
    cache = {}

    def objective(t):
        key = tuple(t)
        if key not in cache:
            cache[key] = -engine.log_posterior(t)
        return cache[key]

    def gradient(t):
        base = objective(t)
        return np.array([(objective(t + h) - base) / GRADIENT_STEP
                         for h in np.eye(len(t)) * GRADIENT_STEP])  # fmt: skip

    bounds = [THETA_BOUNDS[h.kind] for h in engine.model.hyperparameters]
    result = scipy.optimize.minimize(objective, start, jac=gradient, method="L-BFGS-B",
                                     bounds=bounds, options={"maxiter": 200, "maxcor": 30, "ftol": 1e-12, "gtol": 0.05})  # fmt: skip
    return result.x, -float(result.fun)


def theta_hessian(engine: LaplaceEngine, mode: np.ndarray, at_mode: float) -> np.ndarray:
    """−∇² log p̃(θ | y) at the mode by finite differences: central on the diagonal, one-sided
    for the cross terms (d(d + 3)/2 evaluations); made positive definite."""
    d, h = len(mode), HESSIAN_STEP
    shift = np.eye(d) * h
    plus = [engine.log_posterior(mode + shift[i]) for i in range(d)]
    minus = [engine.log_posterior(mode - shift[i]) for i in range(d)]
    hessian = np.diag([-(plus[i] - 2 * at_mode + minus[i]) / h**2 for i in range(d)])
    for i in range(d):
        for j in range(i):
            both = engine.log_posterior(mode + shift[i] + shift[j])
            hessian[i, j] = hessian[j, i] = -(both - plus[i] - plus[j] + at_mode) / h**2
    values, vectors = np.linalg.eigh(hessian)
    return vectors @ np.diag(np.maximum(values, 1e-2 * values.max())) @ vectors.T


def integration_points(engine, mode, hessian, count, seed):
    """Importance sampling over θ in two stages, with its Laplace modes and the Pareto-smoothed,
    normalised weights and their k̂.

    Stage one draws half the points from a Student-t at the mode (scale from the Hessian). Stage
    two draws the other half from a Student-t fitted to the weighted stage-one points, which
    follows a skewed posterior (σ near 0, ρ near 1) that the Hessian misses. All points are then
    weighted against the equal mixture of both proposals (defensive importance sampling; Owen &
    Zhou 2000, JASA 95:135-143), so neither stage's tails can make the weights explode.
    """
    d = len(mode)
    sobol = qmc.Sobol(d + 1, scramble=True, seed=seed)
    first = student_t(mode, np.linalg.inv(hessian) * PROPOSAL_SCALE**2)
    points = first.points(sobol.random(count // 2))
    modes = [engine.mode(t, POINT_TOLERANCE) for t in points]
    log_posterior = np.array([m.log_posterior for m in modes])
    weights = np.exp(
        log_posterior - first.logpdf(points) - (log_posterior - first.logpdf(points)).max()
    )
    weights /= weights.sum()
    centre = weights @ points
    spread = (points - centre).T @ ((points - centre) * weights[:, None]) + 1e-6 * np.eye(d)
    second = student_t(centre, spread * PROPOSAL_SCALE**2)
    extra = second.points(sobol.random(count - count // 2))
    modes += [engine.mode(t, POINT_TOLERANCE) for t in extra]
    points = np.vstack([points, extra])
    log_posterior = np.array([m.log_posterior for m in modes])
    mixture = np.logaddexp(first.logpdf(points), second.logpdf(points)) - np.log(2.0)
    log_weights = log_posterior - mixture
    smoothed, k_hat = az.psislw(log_weights - log_weights.max())
    return modes, np.exp(smoothed), float(k_hat)


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


def draw_latent(model: LatentModel, mode: Mode, count: int, rng) -> np.ndarray:
    """`count` draws of x from N(x*, P⁻¹) restricted to C x = 0: draws × latent."""
    deviation = mode.factor.sample(rng.standard_normal((model.size, count)))
    if mode.kriging is not None:
        deviation = deviation - mode.kriging @ (model.constraints @ deviation)
    return (mode.x[:, None] + deviation).T


def row_log_weights(model: LatentModel, mode: Mode, x: np.ndarray) -> np.ndarray:
    """ℓ_r(η) − ℓ̃_r(η) per draw and data row: the exact row likelihood against its quadratic
    expansion at the mode, which is what the Gaussian approximation uses (draws × rows)."""
    A = model.design_matrix(model.natural(mode.t))
    eta = model.level + (A @ x.T).T
    loglik = model.family.newton_terms(model.design.rows, eta)[0]
    value, gradient, weight = mode.curvature
    shift = eta - mode.eta
    return loglik - (value + gradient * shift - 0.5 * weight * shift**2)


def run_laplace(
    spec: Spec, design: Design, graph: AreaGraph, family: Family, progress: bool
) -> tuple[az.InferenceData, Diagnostics, dict[str, float]]:
    """The Laplace method end to end: draws in the common form, diagnostics, timings."""
    clock = time.perf_counter()
    seconds = {}
    model = latent_model(spec, design, graph, family)
    engine = LaplaceEngine(model)
    start = np.array([h.unconstrained(0.5) for h in model.hyperparameters])
    mode, at_mode = theta_mode(engine, start)
    hessian = theta_hessian(engine, mode, at_mode)
    seconds["mode"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rng = np.random.default_rng(spec.sampler.seed)
    points = spec.sampler.integration_points or min(64 + 8 * len(mode), MAX_AUTOMATIC_POINTS)
    modes, weights, theta_k = integration_points(engine, mode, hessian, points, spec.sampler.seed)
    seconds["integration"] = time.perf_counter() - clock
    clock = time.perf_counter()
    total = spec.sampler.draws * spec.sampler.chains
    counts = rng.multinomial(total, weights / weights.sum())
    draws, row_weights = sample_mixture(model, modes, counts, rng)
    correction = correct(row_weights, design, graph, rng)
    seconds["draws"] = time.perf_counter() - clock
    if correction.order is not None:
        draws = {name: np.take(values, correction.order, axis=0) for name, values in draws.items()}
    posterior = common_posterior(draws, model, design, graph)
    check = xr.Dataset(
        {"draw_index": (("draw", "area"), correction.area_order),
         "pareto_k": ("area", correction.area_pareto_k)},
        coords={"area": list(graph.ids)},
    )  # fmt: skip
    diagnostics = Diagnostics(
        method="laplace", chains=1, draws=total, theta_pareto_k=theta_k, theta_points=points,
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


def sample_mixture(model: LatentModel, modes: list[Mode], counts: np.ndarray, rng):
    """Draws of the linear predictor's parts and of θ from the mixture over the points, with each
    draw's per-row log weights against the exact posterior (float32: they feed k̂ and weights)."""
    total, filled = int(counts.sum()), 0
    parts: dict[str, np.ndarray] = {}
    weights = np.empty((total, len(model.design.area)), dtype=np.float32)
    for mode, count in zip(modes, counts, strict=True):
        for start in range(0, count, DRAW_BATCH):
            size = min(DRAW_BATCH, count - start)
            x = draw_latent(model, mode, size, rng)
            theta = np.tile(model.natural(mode.t), (size, 1))
            for name, value in {**model.effects(x, theta), "theta": theta}.items():
                if name not in parts:
                    parts[name] = np.empty((total, *value.shape[1:]))
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
    values = {
        "intercept_std": (("chain", "draw"), one_chain(draws["intercept_std"])),
        "beta_std": (("chain", "draw", "term"), one_chain(draws["beta_std"])),
        "intercept": (("chain", "draw"), one_chain(intercept)),
        "beta": (("chain", "draw", "term"), one_chain(beta)),
        "group_effect": (("chain", "draw", "group"), one_chain(draws["group_effect"])),
        "area_effect": (("chain", "draw", "area"), one_chain(draws["area_effect"])),
    }  # fmt: skip
    if "group_area_effect" in draws:
        values["group_area_effect"] = (("chain", "draw", "group", "area"),
                                       one_chain(draws["group_area_effect"]))  # fmt: skip
    for name in dict.fromkeys(h.name for h in model.hyperparameters):
        columns = [k for k, h in enumerate(model.hyperparameters) if h.name == name]
        theta = draws["theta"][:, columns]
        if model.hyperparameters[columns[0]].group is None:
            values[name] = (("chain", "draw"), one_chain(theta[:, 0]))
        else:
            values[name] = (("chain", "draw", "group"), one_chain(theta))
    return xr.Dataset(values).assign_coords(
        chain=[0], draw=np.arange(len(draws["theta"])), group=list(design.groups),
        area=list(graph.ids), term=list(design.terms),
    )  # fmt: skip
