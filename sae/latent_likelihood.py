"""The data's log-likelihood as a function of the linear predictor η, with the derivatives Newton's
method needs (`sae.laplace`): the family's terms row by row, plus the terms of events whose group is
unknown (`sae.unknown_group`), which couple the rows of an area × stratum block.

Under missing at random, block b with u_b events of unknown group adds

    ℓ_b(η) = u_b log Σ_{r ∈ b} μ_r,   μ_r = exp(η_r + offset_r),

whose gradient in η_r is u_b p_r and whose Hessian is u_b (diag(p) − p pᵀ), with
p_r = μ_r / Σ_{r' ∈ b} μ_r' (a log-sum-exp: convex). So the negative Hessian of the whole
log-likelihood in η is H = diag(w) − Σ_b u_b (diag(p_b) − p_b p_bᵀ): the family's diagonal weights
less u_b p_r, plus u_b p_r², and within each block a weight u_b p_r p_s for every ordered pair of
different rows (r, s). `Curvature.pairs` lists those pairs; the Laplace precision adds Aᵀ H A over
them. For Poisson rows w_r = μ_r, so H is positive definite where Σ_b μ > u_b, as it is near the
mode (there Σ_b μ ≈ Y_b + u_b); elsewhere each diagonal weight is kept at least u_b p_r²
(max(w_r − u_b p_r, 0) + u_b p_r²), which keeps H positive semi-definite, so Newton's steps stay
ascent directions. Where that bound binds at the mode the Gaussian approximation is not the exact
Laplace one, and the importance correction against the exact likelihood (`sae.laplace_method`)
accounts for it.

Each block's ℓ_b is booked on the block's first row, so per-row log-likelihoods still sum to the
total and each area's rows carry its own blocks (the local importance correction sums them by area).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sae.family import Family, RowData
from sae.unknown_group import UnknownGroups


@dataclass(frozen=True)
class RowPairs:
    """Ordered pairs (first[k], second[k]) of different rows whose η's share a likelihood term."""

    first: np.ndarray
    second: np.ndarray

    @staticmethod
    def none() -> RowPairs:
        return RowPairs(np.zeros(0, np.int64), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.first)


@dataclass(frozen=True)
class Curvature:
    """ℓ_r, ∂ℓ/∂η_r and the negative Hessian in η at one η (or per draw: the leading axes):
    `weight` its diagonal, `cross` its entries at `pairs` (ordered pairs of different rows)."""

    value: np.ndarray
    gradient: np.ndarray
    weight: np.ndarray
    cross: np.ndarray
    pairs: RowPairs

    def hessian_times(self, shift: np.ndarray) -> np.ndarray:
        """H shift, for a vector `shift` over the rows."""
        product = self.weight * shift
        if len(self.pairs):
            np.add.at(product, self.pairs.first, self.cross * shift[self.pairs.second])
        return product

    def expansion(self, shift: np.ndarray) -> np.ndarray:
        """The second-order expansion of each row's ℓ at this η, for shifts η − η* per draw
        (draws × rows); each pair's cross term is split evenly between its two rows."""
        expansion = shift * (-0.5 * self.weight)  # ((g − ½ w δ) δ + ℓ), in place: draws × rows
        expansion += self.gradient
        expansion *= shift
        expansion += self.value
        if len(self.pairs):
            products = self.cross * shift[:, self.pairs.first] * shift[:, self.pairs.second]
            cross = np.zeros_like(expansion)
            np.add.at(cross.T, self.pairs.first, products.T)
            expansion -= 0.5 * cross
        return expansion


@dataclass(frozen=True)
class BlockLayout:
    """Where the unknown-group blocks sit among the rows, worked out once: `inside` lists the rows
    that belong to a block, ordered by block (stably), `block` their blocks, `starts` where each
    block begins in that order, `first_rows` each block's first row, and `pairs` every ordered pair
    of different rows of a block."""

    inside: np.ndarray
    block: np.ndarray
    starts: np.ndarray
    first_rows: np.ndarray
    pairs: RowPairs

    @staticmethod
    def of(unknown: UnknownGroups) -> BlockLayout:
        inside = np.flatnonzero(unknown.block >= 0)
        inside = inside[np.argsort(unknown.block[inside], kind="stable")]
        block = unknown.block[inside]
        starts = np.searchsorted(block, np.arange(len(unknown.count)))
        return BlockLayout(inside, block, starts, inside[starts], block_pairs(inside, block))


@dataclass(frozen=True)
class LatentLikelihood:
    """log p(y | η) of a model's data rows: its family, its rows and its unknown-group blocks."""

    family: Family
    rows: RowData
    unknown: UnknownGroups | None = None

    @functools.cached_property
    def layout(self) -> BlockLayout | None:
        return None if self.unknown is None else BlockLayout.of(self.unknown)

    @property
    def pairs(self) -> RowPairs:
        return RowPairs.none() if self.layout is None else self.layout.pairs

    def log_density(self, eta: np.ndarray) -> np.ndarray:
        """Per row (the blocks' terms on their first rows), up to a constant; η: (draws ×) rows."""
        value = self.family.newton_terms(self.rows, eta)[0]
        if self.unknown is None:
            return value
        return self.booked_on_first_rows(value, self.unknown.count * self.block_log_sums(eta))

    def curvature(self, eta: np.ndarray) -> Curvature:
        """ℓ, its gradient and negative Hessian at one η (a vector over the rows)."""
        value, gradient, weight = self.family.newton_terms(self.rows, eta)
        if self.unknown is None:
            return Curvature(value, gradient, weight, np.zeros(0), RowPairs.none())
        layout, count_of_block = self.layout, self.unknown.count
        log_sums = self.block_log_sums(eta)
        inside = layout.inside
        share = np.exp(eta[inside] + self.rows.offset[inside] - log_sums[layout.block])
        count = count_of_block[layout.block]
        gradient, weight = gradient.copy(), weight.copy()
        gradient[inside] += count * share
        weight[inside] = np.maximum(weight[inside] - count * share, 0.0) + count * share**2
        full_share, block_count = np.zeros(len(eta)), np.zeros(len(eta))
        full_share[inside], block_count[inside] = share, count
        pairs = layout.pairs
        cross = block_count[pairs.first] * full_share[pairs.first] * full_share[pairs.second]
        value = self.booked_on_first_rows(value, count_of_block * log_sums)
        return Curvature(value, gradient, weight, cross, pairs)

    def block_log_sums(self, eta: np.ndarray) -> np.ndarray:
        """log Σ_{r ∈ b} μ_r per block (leading axes of η kept)."""
        layout = self.layout
        log_mu = eta[..., layout.inside] + self.rows.offset[layout.inside]
        peak = np.maximum.reduceat(log_mu, layout.starts, axis=-1)
        total = np.add.reduceat(np.exp(log_mu - peak[..., layout.block]), layout.starts, axis=-1)
        return peak + np.log(total)

    def booked_on_first_rows(self, value: np.ndarray, terms: np.ndarray) -> np.ndarray:
        """`value` (per row) with each block's term added on the block's first row."""
        value = np.array(value, dtype=float)
        value[..., self.layout.first_rows] += terms
        return value


def block_pairs(inside: np.ndarray, block: np.ndarray) -> RowPairs:
    """Every ordered pair of different rows of the same block, from the rows in blocks ordered
    by block (`inside`) and their blocks."""
    sizes = np.bincount(block)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    first, second = [], []
    for size in np.unique(sizes[sizes > 1]):
        members = inside[starts[sizes == size][:, None] + np.arange(size)]  # blocks × size
        a, b = np.nonzero(~np.eye(size, dtype=bool))
        first.append(members[:, a].ravel())
        second.append(members[:, b].ravel())
    if not first:
        return RowPairs.none()
    return RowPairs(np.concatenate(first), np.concatenate(second))
