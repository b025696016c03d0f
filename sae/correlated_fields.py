"""Group fields correlated across groups (`group_effects = "mcar"`) as part of a latent Gaussian
model (`sae.latent`).

The NUTS model (`sae.nuts.mcar_field`) writes the group × area deviations as c = diag(σ) L f, f_h a
unit-scale BYM2 field per group with one shared ρ, f_h = √(1 − ρ) v_h + √(ρ/s) u_h, and L L' = R
the groups' correlation matrix. With V = L v and U = L u (each G × n),

    c_g = σ_g (√(1 − ρ) V_g + √(ρ/s) U_g),   V ~ N(0, R ⊗ I),   U ~ N(0, R ⊗ Q_ICAR⁻) with Σ_i U_gi = 0,

so the deviations are a column scaling of (V, U), as every other block, and R enters the prior
precision only: Q(θ) = Q₀ + Σ_{g,h} (R⁻¹)_{gh} Q_{gh}, where Q_{gh} places I at (V_g, V_h) and Q_ICAR
at (U_g, U_h). The prior's normalising constant then depends on θ through

    ½ log |Q(θ)|_C = −½ (n + n − k) log |R| + const,

k the sum-to-zero constraints of each U_g (one per component of more than one area): V contributes
n log |R⁻¹| and U, on its constrained subspace, (n − k) log |R⁻¹|.

R is parametrised by its canonical partial correlations z_ij = tanh(t_ij), i > j (the C-vine
partial correlation of groups i and j given groups 0, …, j − 1): L_ij = z_ij √(1 − Σ_{k<j} L_ik²),
L_ii = √(1 − Σ_{k<i} L_ik²). Under the LKJ(η) prior the z_ij are independent, z_ij ~ Beta(β_j, β_j) on
(−1, 1) with β_j = η + (G − 2 − j)/2 (j from 0), so log π(t_ij) = β_j log(1 − z_ij²) + const, the
Jacobian dz/dt = 1 − z² included.

References: Jin, Carlin & Banerjee (2005), Biometrics 61:950-961; Lewandowski, Kurowicka & Joe
(2009), J. Multivariate Analysis 100:1989-2001, sec. 2-3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

LKJ_SHAPE = 2.0  # η of the LKJ prior, as in the NUTS model


def pairs_below_diagonal(groups: int) -> list[tuple[int, int]]:
    """(i, j), i > j, in the order of the partial correlations."""
    return [(i, j) for i in range(1, groups) for j in range(i)]


def partial_correlation_shape(groups: int, column: int) -> float:
    """β_j of the Beta(β_j, β_j) prior of a partial correlation in column j under LKJ(η)."""
    return LKJ_SHAPE + (groups - 2 - column) / 2.0


def cholesky_factor(partials: np.ndarray, groups: int) -> np.ndarray:
    """L (… × G × G, lower triangular, unit rows) from the partial correlations (… × pairs)."""
    partials = np.asarray(partials, dtype=float)
    factor = np.zeros((*partials.shape[:-1], groups, groups))
    factor[..., 0, 0] = 1.0
    for k, (i, j) in enumerate(pairs_below_diagonal(groups)):
        used = (factor[..., i, :j] ** 2).sum(axis=-1)
        factor[..., i, j] = partials[..., k] * np.sqrt(np.maximum(1.0 - used, 0.0))
        if j == i - 1:
            rest = (factor[..., i, :i] ** 2).sum(axis=-1)
            factor[..., i, i] = np.sqrt(np.maximum(1.0 - rest, 0.0))
    return factor


def correlation_matrix(partials: np.ndarray, groups: int) -> np.ndarray:
    factor = cholesky_factor(partials, groups)
    return factor @ np.swapaxes(factor, -1, -2)


@dataclass(frozen=True, eq=False)
class CorrelatedFields:
    """The V and U blocks of an MCAR model: `partials` index θ (the partial correlations, in the
    order of `pairs_below_diagonal`); `parts` are the Q_{gh}, in row-major (g, h) order."""

    groups: int
    partials: tuple[int, ...]
    parts: tuple[sp.csc_array, ...]
    dimension: int  # n + n − k: the prior's dimension per group

    def correlation(self, theta: np.ndarray) -> np.ndarray:
        return correlation_matrix(theta[..., list(self.partials)], self.groups)

    def coefficients(self, theta: np.ndarray) -> np.ndarray:
        """The (R⁻¹)_{gh} that multiply the `parts`."""
        return np.linalg.inv(self.correlation(theta)).ravel()

    def log_normaliser(self, theta: np.ndarray) -> float:
        """½ log |Q(θ)|_C up to a constant: −½ (n + n − k) log |R|."""
        return -0.5 * self.dimension * float(np.linalg.slogdet(self.correlation(theta))[1])


def kronecker_parts(groups: int, v_start: int, u_start: int, icar: sp.csc_array,
                    size: int) -> tuple[sp.csc_array, ...]:  # fmt: skip
    """Q_{gh}: I at (V_g, V_h) and Q_ICAR at (U_g, U_h), in a latent vector of `size`."""
    n = icar.shape[0]
    q = sp.coo_array(icar)
    parts = []
    for g in range(groups):
        for h in range(groups):
            rows = np.concatenate([v_start + g * n + np.arange(n), u_start + g * n + q.row])
            cols = np.concatenate([v_start + h * n + np.arange(n), u_start + h * n + q.col])
            values = np.concatenate([np.ones(n), q.data])
            parts.append(sp.csc_array((values, (rows, cols)), shape=(size, size)))
    return tuple(parts)
