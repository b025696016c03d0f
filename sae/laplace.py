"""The Laplace approximation of a latent Gaussian model at fixed hyperparameters θ.

For a latent Gaussian model (`sae.latent`): x ~ N(m, Q⁻¹) with C x = 0, η = level + A(θ) x.
Newton's method finds the mode x* of p(x | y, θ), each step solving (Q + Aᵀ W A) δ = ∇ with a
sparse Cholesky factor and projecting δ onto C δ = 0 by conditioning by kriging; then

    log p̃(θ | y) = Σ_r log p(y_r | η*_r) − ½ (x* − m)ᵀ Q (x* − m) − ½ log |P|_C + log π(θ) + c,
    P = Q + Aᵀ W A,   log |P|_C = log |P| + log |C P⁻¹ Cᵀ|   (the determinant on C x = 0),

and draws come from N(x*, P⁻¹) restricted to C x = 0. The Gaussian approximation is proportional
to p(x | θ) Π_r exp(ℓ̃_r), ℓ̃_r the second-order expansion of row r's log-likelihood at the mode,
so ℓ_r − ℓ̃_r are the log importance weights of a draw against the exact conditional posterior.

References: Rue, Martino & Chopin (2009), JRSS-B 71:319-392, sec. 3; Rue & Held (2005),
Gaussian Markov Random Fields, sec. 2.3 (conditioning by kriging) and 4.4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from sae.errors import SaeError
from sae.latent import LatentModel
from sae.latent_likelihood import Curvature, RowPairs
from sae.sparse_cholesky import BorderedCholesky, FactorPlan, segment_pairs

NEWTON_TOLERANCE = 1e-9  # on the Newton decrement, the predicted gain in log density
MAX_NEWTON_STEPS = 50
TANGENT_RANGE = 2.0  # on the unconstrained θ scale: beyond it the linear prediction is not used
PREDICTION_BATCH = 8  # starting points predicted in one solve (`LaplaceEngine.evaluate`)


@dataclass
class Mode:
    """The Gaussian approximation of p(x | y, θ) at one θ."""

    t: np.ndarray  # θ, unconstrained
    x: np.ndarray
    eta: np.ndarray
    factor: BorderedCholesky  # of P, with Cᵀ as its `also` columns (`kriged`)
    log_posterior: float  # log p̃(θ | y) + const, θ unconstrained (Jacobian included)
    curvature: Curvature  # ℓ, ∇ℓ, −∇²ℓ in η at η*
    scales: np.ndarray  # s(θ)
    precision: sp.csc_array  # Q(θ)


class PrecisionAssembly:
    """P = Q + Aᵀ H A with A = A₀ diag(s), assembled for any (s, H) without sparse products.

    H, the likelihood's negative Hessian in η, is diagonal (weights w_r) but for the `pairs` of rows
    that share a term (`sae.latent_likelihood`), with weights w_k. Entry (a, b) of A₀ᵀ H A₀ is
    Σ_r A₀[r, a] A₀[r, b] w_r + Σ_k A₀[r_k, a] A₀[s_k, b] w_k. The products of non-zeros of each row
    (and each pair) are listed once, as a sparse map M from the weights to P's fixed sparsity
    pattern, and P's values are Q's plus s_a s_b (M [w_r, w_k])_ab: the scales multiply P's entries
    (`set_scales` keeps their products per entry), not M's many more. Where Q depends on θ,
    Q(θ) = Q₀ + Σ_k c_k Q_k (`parts`), Q's values are refilled from the c_k by `set_prior`.
    """

    def __init__(self, precision: sp.csc_array, incidence: sp.csr_array,
                 pairs: RowPairs | None = None, parts: tuple[sp.csc_array, ...] = ()):  # fmt: skip
        incidence = sp.csr_array(incidence)
        pairs = pairs if pairs is not None else RowPairs.none()
        rows = np.arange(incidence.shape[0])
        first_row = np.concatenate([rows, pairs.first])
        second_row = np.concatenate([rows, pairs.second])
        weight_of, first, second = segment_pairs(incidence.indptr[:-1], np.diff(incidence.indptr),
                                                 first_row, second_row)  # fmt: skip
        q = [sp.coo_array(m) for m in (precision, *parts)]
        n = precision.shape[0]
        a, b = incidence.indices[first].astype(np.int64), incidence.indices[second].astype(np.int64)
        keys = np.concatenate([*(m.col.astype(np.int64) * n + m.row for m in q), b * n + a])
        unique, position = np.unique(keys, return_inverse=True)
        entries = sum(m.nnz for m in q)
        self.prior_map = sp.csr_array(
            (np.concatenate([m.data for m in q]),
             (position[:entries], np.repeat(np.arange(len(q)), [m.nnz for m in q]))),
            shape=(len(unique), len(q)),
        )  # fmt: skip
        self.prior = self.prior_map @ np.ones(len(q))
        self.pair_map = sp.csr_array(
            (incidence.data[first] * incidence.data[second], (position[entries:], weight_of)),
            shape=(len(unique), len(first_row)),
        )
        columns, rows = np.divmod(unique, n)
        # int32: `entry_products` streams them for every evaluation (half the bytes of int64)
        self.entry_rows, self.entry_columns = rows.astype(np.int32), columns.astype(np.int32)
        self.scale_products = np.ones(len(unique))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(columns, minlength=n))])
        self.matrix = sp.csc_matrix(
            (self.prior.copy(), rows.astype(np.int32), indptr.astype(np.int32)), shape=(n, n)
        )

    def set_prior(self, coefficients: np.ndarray) -> None:
        """Q's values for Q(θ) = Q₀ + Σ_k c_k Q_k."""
        self.prior = self.prior_map @ np.concatenate([[1.0], coefficients])

    def set_scales(self, scales: np.ndarray) -> None:
        entry_products(scales, self.entry_rows, self.entry_columns, self.scale_products)

    def assemble(self, weight: np.ndarray) -> sp.csc_matrix:
        """P for the current scales and the weights of the rows, then of the pairs (the same
        matrix object, refilled)."""
        data = self.matrix.data
        np.multiply(self.pair_map @ weight, self.scale_products, out=data)
        data += self.prior
        return self.matrix


@njit(cache=True)
def entry_products(scales, rows, columns, out):  # pragma: no cover - compiled
    """out_e = s[rows_e] s[columns_e], in one pass (numpy's two gathers and a product took 3 passes
    and 2 temporaries: 4.0 ms for P's 1.7 million entries at 20,000 areas × 6 groups)."""
    for e in range(len(out)):
        out[e] = scales[rows[e]] * scales[columns[e]]


class LaplaceEngine:
    """Evaluates the Laplace approximation of a latent model at any θ, warm-starting Newton."""

    def __init__(self, model: LatentModel):
        self.model = model
        parts = model.correlated.parts if model.correlated is not None else ()
        self.assembly = PrecisionAssembly(model.precision, model.incidence,
                                          model.likelihood.pairs, parts)  # fmt: skip
        self.plan = FactorPlan(self.assembly.matrix, model.n_fixed)
        self.last: Mode | None = None
        self.anchor: Mode | None = None  # the approximation at θ's mode, once known
        self.constraints_t = np.asfortranarray(model.constraints.T.toarray())
        self.evaluations = 0

    def evaluate(self, ts: np.ndarray, tolerance: float | None, start: Mode | None,
                 result: Callable[[Mode], object] = lambda mode: mode.log_posterior) -> list:  # fmt: skip
        """result(mode at t) for each row t of `ts`. Every Newton starts from `start` (default:
        the anchor, else the last mode), never from another row's mode, so each value depends on
        its row alone, not on the order or the company it is computed in; `last` is left as it
        was, and no row's factor is held past its `result`. The rows' starting points are
        predicted `PREDICTION_BATCH` at a time, in one solve with `start`'s factor."""
        start, last = start or self.anchor or self.last, self.last
        ts, values = np.asarray(ts, float), []
        for batch in range(0, len(ts), PREDICTION_BATCH):
            rows = ts[batch : batch + PREDICTION_BATCH]
            starts = self.warm_starts(rows, start) if start is not None else [None] * len(rows)
            for t, x in zip(rows, starts, strict=True):
                values.append(result(self.mode(t, tolerance, start, x)))
        self.last = last
        return values

    def mode(self, t: np.ndarray, tolerance: float | None = NEWTON_TOLERANCE,
             start: Mode | None = None, at: np.ndarray | None = None) -> Mode:  # fmt: skip
        """The Gaussian approximation at θ (unconstrained `t`): Newton's method, from x = `at`
        when given, else from near `start`'s mode (default: the last or the anchor, whichever is
        nearer), until the Newton decrement, the predicted gain in log density, is below
        `tolerance`. With `tolerance` None no step is taken: the first-order prediction from a
        converged `start` a small Δθ away is the mode (for finite differences: its error, O(Δθ²),
        changes log p̃ by O(Δθ²), as little as the differences' own error, and a solve is saved)."""
        model = self.model
        theta = model.natural(t)
        scales = model.scales(theta)
        A = model.design_matrix(theta)
        Q = model.prior_precision(theta)
        x = self.warm_start(t, start) if at is None else np.asarray(at, float)
        self.assembly.set_scales(scales)
        if model.correlated is not None:
            self.assembly.set_prior(model.correlated.coefficients(theta))
        for _ in range(MAX_NEWTON_STEPS):
            eta = model.level + A @ x
            terms = model.likelihood.curvature(eta)
            deviation = x - model.mean
            weights = np.concatenate([terms.weight, terms.cross])
            factor = self.plan.factorise(self.assembly.assemble(weights), self.constraints_t)
            if tolerance is None:
                break
            ascent = A.T @ terms.gradient - Q @ deviation
            step = kriged(factor, model.constraints, factor.solve(ascent))
            if 0.5 * ascent @ step < tolerance:
                break
            current = terms.value.sum() - 0.5 * deviation @ (Q @ deviation)
            x = line_search(model, A, Q, x, step, current)
        else:
            raise SaeError(
                "the Laplace approximation's inner Newton iterations did not converge at "
                f"θ = {dict(zip([h.label for h in model.hyperparameters], theta, strict=True))}; "
                'use method = "nuts" for this model.'
            )
        self.evaluations += 1
        log_det = factor.logdet()
        if model.constraints.shape[0]:
            log_det += np.linalg.slogdet(factor.also_gram())[1]  # log |C P⁻¹ Cᵀ|
        log_posterior = (terms.value.sum() - 0.5 * deviation @ (Q @ deviation)
                         - 0.5 * log_det + model.log_prior(t))  # fmt: skip
        self.last = Mode(t, x, eta, factor, float(log_posterior), terms, scales, Q)
        return self.last

    def warm_start(self, t: np.ndarray, start: Mode | None = None) -> np.ndarray:
        """Where Newton starts: near `start` (default: the last mode or the anchor at θ's mode,
        whichever is nearer), see `warm_starts`."""
        known = (
            [start] if start is not None else [m for m in (self.last, self.anchor) if m is not None]
        )
        if not known:
            return self.model.mean.copy()
        return self.warm_starts(t[None, :], min(known, key=lambda m: np.abs(t - m.t).max()))[0]

    def warm_starts(self, ts: np.ndarray, base: Mode) -> list[np.ndarray]:
        """Newton's starting point at each row of `ts` from the mode `base`: within
        `TANGENT_RANGE`, its first-order prediction x* + P⁻¹ ∂F/∂θ Δθ (implicit differentiation
        of the mode condition F(x*, θ) = Aᵀ ∇ℓ − Q (x* − m) = 0; all rows in one solve); further
        away, that mode rescaled so that the effects s·x, and so η, stay put."""
        model = self.model
        starts, forces, near = [], [], []
        for k, t in enumerate(ts):
            theta = model.natural(t)
            scales = model.scales(theta)
            if np.abs(t - base.t).max() > TANGENT_RANGE:
                ratio = np.divide(base.scales, scales, out=np.ones_like(scales), where=scales > 0)
                starts.append(base.x * ratio)
                continue
            starts.append(None)
            forces.append(self.mode_shift(base, theta, scales))
            near.append(k)
        if forces:
            steps = base.factor.solve(np.column_stack(forces))
            steps = kriged(base.factor, model.constraints, steps)
            for column, k in enumerate(near):
                starts[k] = base.x + steps[:, column]
        return starts

    def mode_shift(self, base: Mode, theta: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """∂F/∂θ Δθ from `base` to θ (natural scale, with its scales s(θ)): the change of the
        mode condition's left side at x* as the scales (and Q, where it depends on θ) change."""
        model, curvature = self.model, base.curvature
        change = scales - base.scales
        shift = model.incidence @ (change * base.x)
        force = (change * (model.incidence.T @ curvature.gradient)
                 - base.scales * (model.incidence.T @ curvature.hessian_times(shift)))  # fmt: skip
        precision = model.prior_precision(theta)
        if precision is not base.precision:  # Q depends on θ
            force -= (precision - base.precision) @ (base.x - model.mean)
        return force

    def mode_at(self, t: np.ndarray) -> Mode:
        """The approximation at θ = `t`: the last one when it is there, else computed."""
        last = self.last
        return last if last is not None and np.array_equal(last.t, t) else self.mode(t)

    def log_posterior(self, t: np.ndarray) -> float:
        return self.mode(np.asarray(t, float)).log_posterior


def kriged(factor: BorderedCholesky, constraints: sp.csr_array, x: np.ndarray) -> np.ndarray:
    """x − V (C V)⁻¹ C x, V = P⁻¹ Cᵀ (`BorderedCholesky.solved`, C V its `also_gram`): x (a
    vector, or draws as columns) conditioned on C x = 0 by kriging."""
    if constraints.shape[0] == 0:
        return x
    return x - factor.solved @ np.linalg.solve(factor.also_gram(), constraints @ x)


def line_search(model: LatentModel, A, Q, x, step, current: float) -> np.ndarray:
    """x + λ step with λ halved until the log density of x does not decrease."""
    for halvings in range(30):
        proposal = x + 0.5**halvings * step
        value = model.log_joint(proposal, A=A, precision=Q)
        if np.isfinite(value) and value >= current - 1e-10 * abs(current):
            return proposal
    return x


def draw_latent(model: LatentModel, mode: Mode, count: int, rng) -> np.ndarray:
    """`count` draws of x from N(x*, P⁻¹) restricted to C x = 0: draws × latent."""
    deviation = mode.factor.sample(rng.standard_normal((model.size, count)))
    return (mode.x[:, None] + kriged(mode.factor, model.constraints, deviation)).T


def row_log_weights(model: LatentModel, mode: Mode, x: np.ndarray) -> np.ndarray:
    """ℓ_r(η) − ℓ̃_r(η) per draw and data row: the exact row likelihood against its quadratic
    expansion at the mode, which is what the Gaussian approximation uses (draws × rows)."""
    A = model.design_matrix(model.natural(mode.t))
    eta = model.level + (A @ x.T).T
    return model.likelihood.log_density(eta) - mode.curvature.expansion(eta - mode.eta)
