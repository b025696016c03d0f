"""Sparse Cholesky factorisation of a symmetric positive definite precision matrix, with what a
Laplace step needs: solves, the log-determinant, and draws from N(0, P⁻¹).

The factor is CHOLMOD's (Chen, Davis, Hager & Rajamanickam 2008, ACM TOMS 35:22) with its
fill-reducing ordering, from the `sksparse-minimal` wheel (it bundles SuiteSparse, so nothing is
compiled on the user's machine): P_perm A P_permᵀ = L D Lᵀ. Then

    log |A| = Σ log D_ii,    x = P_permᵀ L⁻ᵀ D^(−½) z ~ N(0, A⁻¹) for z ~ N(0, I).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sae.errors import SaeError


class SparseCholesky:
    """The factor of one matrix; build it once, then solve, sample and read its log-determinant."""

    def __init__(self, matrix: sp.sparray):
        try:
            from sksparse_minimal import SparseCholesky as Cholmod
        except ImportError as err:  # the wheel exists for Linux x86-64, macOS arm64, Windows
            raise SaeError(
                'method = "laplace" needs the sksparse-minimal package (CHOLMOD), which has no '
                'wheel for this platform; use method = "nuts".'
            ) from err
        self.size = matrix.shape[0]
        self._factor = Cholmod(
            matrix if isinstance(matrix, sp.csc_matrix) else sp.csc_matrix(matrix)
        )
        self._inverse_d = None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """A⁻¹ rhs, for a vector or the columns of a matrix."""
        return self._factor.solve_A(np.ascontiguousarray(rhs, dtype=float))

    @property
    def inverse_d(self) -> np.ndarray:
        """1 / D of the LDLᵀ form (the factor is converted to it once, when first needed)."""
        if self._inverse_d is None:
            self._factor.solve_LD(np.zeros(self.size))
            self._inverse_d = self._factor.solve_D(np.ones(self.size))
            if not (self._inverse_d > 0).all():
                raise np.linalg.LinAlgError("the matrix is not positive definite")
        return self._inverse_d

    def logdet(self) -> float:
        return float(-np.log(self.inverse_d).sum())

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Columns of `z` (independent standard normals, size × k) mapped to draws from N(0, A⁻¹)."""
        permuted = self._factor.solve_Lt(np.sqrt(self.inverse_d)[:, None] * z)
        draws = np.empty_like(permuted)
        draws[self.permutation] = permuted  # Pᵀ, applied by indexing
        return draws

    @property
    def permutation(self) -> np.ndarray:
        """CHOLMOD's fill-reducing ordering: (P b)_i = b[permutation[i]]."""
        return self._factor.P().astype(np.int64)


class BorderedCholesky:
    """The factor of P = [[C, Bᵀ], [B, A]] whose first `dense` rows and columns couple with almost
    every other (intercept, group effects, coefficients): A is factored sparsely and the few dense
    ones through the Schur complement S = C − Bᵀ A⁻¹ B, so they add no fill to A's factor.

        log |P| = log |A| + log |S|
        P⁻¹ b:  x_d = S⁻¹ (b_d − Bᵀ A⁻¹ b_s),  x_s = A⁻¹ b_s − W x_d,   W = A⁻¹ B
        draws:  x_d = S^(−½) z_d,  x_s = A^(−½) z_s − W x_d
    """

    def __init__(self, matrix: sp.csc_matrix, dense: int):
        self.size, self.dense = matrix.shape[0], dense
        sparse_part = matrix[dense:, dense:]
        self.border = matrix[dense:, :dense].toarray()
        self.sparse = SparseCholesky(sp.csc_matrix(sparse_part))
        self.coupling = self.sparse.solve(self.border)  # W = A⁻¹ B
        schur = matrix[:dense, :dense].toarray() - self.border.T @ self.coupling
        self.schur = np.linalg.cholesky(schur)  # raises LinAlgError unless positive definite

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        rhs = np.asarray(rhs, dtype=float)
        d = self.dense
        inner = self.sparse.solve(rhs[d:])
        top = np.linalg.solve(
            self.schur.T, np.linalg.solve(self.schur, rhs[:d] - self.border.T @ inner)
        )
        return np.concatenate([top, inner - self.coupling @ top])

    def logdet(self) -> float:
        return self.sparse.logdet() + 2.0 * float(np.log(np.diag(self.schur)).sum())

    def sample(self, z: np.ndarray) -> np.ndarray:
        d = self.dense
        top = np.linalg.solve(self.schur.T, z[:d])
        return np.concatenate([top, self.sparse.sample(z[d:]) - self.coupling @ top])
