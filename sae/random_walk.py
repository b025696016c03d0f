"""Random walks in time: the structure of f_t and f_gt in a space–time model.

A random walk of order d on periods t = 1…T has the intrinsic Gaussian density

    p(u) ∝ exp(−½ ‖D_d u‖²),   D_1 u = (u_t − u_{t−1}),   D_2 u = (u_t − 2u_{t−1} + u_{t−2}),

so its precision Q = D_dᵀ D_d has rank T − d. Its null space (constants; constants and lines for
order 2) belongs to the intercept and the linear trend terms, so u is constrained to be orthogonal
to it: Σ_t u_t = 0, and for order 2 also Σ_t (t − t̄) u_t = 0.

Scaling (Sørbye & Rue 2014): the effect is u / √s, where s is the geometric mean of the marginal
variances of u under the constraints (the diagonal of the generalised inverse Q⁻). Then σ has the
same meaning, a typical deviation of a period from the trend line, whatever T and the order, and
the PC prior on σ means the same thing for a 5-year and a 30-year series.

References: Rue & Held (2005), Gaussian Markov Random Fields, ch. 3; Sørbye & Rue (2014),
Spatial Statistics 8:39-51.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sae.errors import SaeInputError

ORDERS = {"rw1": 1, "rw2": 2}


def order_of(kind: str) -> int:
    return ORDERS[kind]


def difference_matrix(periods: int, order: int) -> sp.csr_array:
    """D_d: the (T − d) × T matrix of d-th differences."""
    difference = sp.eye_array(periods, format="csr")
    for _ in range(order):
        difference = sp.csr_array(difference[1:] - difference[:-1])
    return difference


def precision(periods: int, order: int) -> sp.csc_array:
    """Q = D_dᵀ D_d (unscaled)."""
    difference = difference_matrix(periods, order)
    return sp.csc_array(difference.T @ difference)


def constraint_rows(periods: int, order: int) -> np.ndarray:
    """The d × T constraints C u = 0 that remove the walk's null space: a row of ones, and for
    order 2 the centred period positions (scaled to unit length, so both are on one footing)."""
    rows = [np.ones(periods)]
    if order == 2:
        position = np.arange(periods) - (periods - 1) / 2.0
        rows.append(position / np.linalg.norm(position) * np.sqrt(periods))
    return np.array(rows)


def scaling_factor(periods: int, order: int) -> float:
    """s: the geometric mean of diag(Q⁻) under the constraints (Sørbye & Rue 2014)."""
    check_length(periods, order)
    dense = precision(periods, order).toarray()
    values, vectors = np.linalg.eigh(dense)
    keep = values > 1e-9 * values.max()
    variances = (vectors[:, keep] ** 2 / values[keep]).sum(axis=1)
    return float(np.exp(np.mean(np.log(variances))))


def check_length(periods: int, order: int) -> None:
    if periods <= order:
        raise SaeInputError(
            f"a random walk of order {order} needs at least {order + 1} periods; the data have "
            f"{periods}. Use more periods, "
            + ("a first-order walk (rw1), " if order > 1 else "")
            + 'or no trend ([model] trend = "none", group_trend = "none").'
        )


def log_density(u, periods: int, order: int):
    """−½ ‖D_d u‖² over the last axis (numpy or pytensor): the walk's kernel, O(T)."""
    value = u
    for _ in range(order):
        value = value[..., 1:] - value[..., :-1]
    return -0.5 * (value**2).sum()
