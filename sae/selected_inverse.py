"""The diagonal of a graph Laplacian's pseudo-inverse without a dense matrix: the BYM2 scaling factor
and the PC prior on ρ for graphs of tens of thousands of areas.

For a connected component with Laplacian L (n areas), ground its last area: L_g (L without that
row and column) is positive definite, and with M its inverse padded by a zero row and column,

    L⁺ = (I − J/n) M (I − J/n),   diag(L⁺)_i = M_ii − 2 (M1)_i / n + 1ᵀM1 / n².

M's diagonal comes from the sparse factor P L_g Pᵀ = L D Lᵀ by the Takahashi recursion, which
computes the inverse only on the sparsity pattern of L (Takahashi, Fagan & Chen 1973; Erisman &
Tinney 1975; Rue & Martino 2007, J. Stat. Plan. Inference 137:3177-3192, sec. 2):

    Z = L⁻ᵀ D⁻¹ L⁻¹,  Z_ji = δ_ij / D_i − Σ_{k > i, L_ki ≠ 0} L_ki Z_kj,  i from n − 1 down to 0.

Cost: Σ_i |column i of L|², linear in n for planar graphs (against n³ for a dense inverse).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.sparse.linalg import splu


def pseudo_inverse_diagonal(laplacian: sp.sparray) -> np.ndarray:
    """diag(L⁺) of a connected component's Laplacian (sparse, n ≥ 2)."""
    n = laplacian.shape[0]
    grounded = sp.csc_matrix(laplacian)[: n - 1, : n - 1]
    factor = splu(grounded, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True})  # fmt: skip
    lower = sp.csc_matrix(factor.L)
    pivots = factor.U.diagonal()
    inverse = takahashi_diagonal(lower.indptr, lower.indices, lower.data, pivots)
    # the factor is of L_g[q, q] with q = argsort(perm_c): node perm_c[j]... is position j's
    diagonal = inverse[factor.perm_c]
    row_sums = np.append(factor.solve(np.ones(n - 1)), 0.0)  # M 1
    diagonal = np.append(diagonal, 0.0)
    return diagonal - 2.0 * row_sums / n + row_sums.sum() / n**2


@njit(cache=True)
def takahashi_diagonal(indptr, indices, data, pivots):  # pragma: no cover - compiled
    """diag(Z) for Z = L⁻ᵀ D⁻¹ L⁻¹, L unit lower triangular in CSC (rows in any order within a
    column, the unit diagonal stored or not).

    For column i with rows J below the diagonal, Z_ji = −Σ_{k ∈ J} L_ki Z_kj needs Z on J × J,
    which the fill keeps inside L's pattern: for each k ∈ J the rows of column k below k include
    J's. They are found by walking column k once with J's rows marked (`where`), so each entry is
    looked up directly, not searched for (the 85,000-area tract fit's Schur factor: 0.74 s, against
    6.7 s with a binary search per entry)."""
    n = len(pivots)
    values = np.zeros(len(data))  # Z on L's pattern, below the diagonal
    diagonal = np.zeros(n)
    where = np.full(n, -1)  # position of a row in the current column, else −1
    for i in range(n - 1, -1, -1):
        start, end = indptr[i], indptr[i + 1]
        for p in range(start, end):
            where[indices[p]] = p
        for q in range(start, end):
            k = indices[q]
            if k == i:
                continue
            values[q] -= data[q] * diagonal[k]  # the k = j term
            for r in range(indptr[k], indptr[k + 1]):
                p = where[indices[r]]
                if p < 0 or indices[r] == k:
                    continue
                z = values[r]  # Z_jk, j = indices[r] > k, both in J
                values[p] -= data[q] * z  # Z_ji gets −L_ki Z_kj
                values[q] -= data[p] * z  # Z_ki gets −L_ji Z_jk
        total = 0.0
        for q in range(start, end):
            if indices[q] != i:
                total += data[q] * values[q]
            where[indices[q]] = -1
        diagonal[i] = 1.0 / pivots[i] - total
    return diagonal
