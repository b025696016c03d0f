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
        self._factor = Cholmod(sp.csc_matrix(matrix))
        self._factor.solve_LD(np.zeros(self.size))  # LDLᵀ form, so that D can be read
        self._inverse_d = self._factor.solve_D(np.ones(self.size))
        if not (self._inverse_d > 0).all():
            raise np.linalg.LinAlgError("the matrix is not positive definite")

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """A⁻¹ rhs, for a vector or the columns of a matrix."""
        return self._factor.solve_A(np.ascontiguousarray(rhs, dtype=float))

    def logdet(self) -> float:
        return float(-np.log(self._inverse_d).sum())

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Columns of `z` (independent standard normals, size × k) mapped to draws from N(0, A⁻¹)."""
        scaled = np.sqrt(self._inverse_d)[:, None] * z
        return self._factor.apply_Pt(self._factor.solve_Lt(np.ascontiguousarray(scaled)))
