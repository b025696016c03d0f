"""Rank-normalised R-hat and effective sample sizes of many series at once.

For draws x of shape (chain, draw, series), following Vehtari, Gelman, Simpson, Carpenter &
Bürkner (2021, Bayesian Analysis 16:667-718):

- every chain is split in half (the middle draw of an odd length dropped), giving M chains of N;
- rank normalisation: z = Φ⁻¹((r − 3/8) / (MN + 1/4)), r the rank of a draw among all MN
  (average ranks for ties);
- R-hat = max(R̂(z), R̂(z of |x − median x|)), with the classic R̂ = √(V̂ / W),
  V̂ = (N − 1)/N · W + B/N, W the mean within-chain variance and B/N the variance of the chain
  means;
- bulk ESS = ESS(z); tail ESS = min(ESS(1[x ≤ q₀.₀₅]), ESS(1[x ≤ q₀.₉₅])) on the split chains,
  the quantiles taken over all draws;
- ESS(y) = MN / τ̂, τ̂ = −1 + 2 Σ ρ̂_t over Geyer's (1992) initial positive, monotone sequence of
  autocorrelations ρ̂_t = 1 − (W − mean_j γ̂_j(t)) / V̂ (γ̂_j the chains' autocovariances, by FFT),
  with τ̂ at least 1 / log₁₀(MN), as in Stan.

These are the figures ArviZ's `rhat` and `ess` give (tests compare them); computing them for all
series in one pass, instead of one series at a time, is what makes them cheap for every cell of a
large map.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft
from scipy.special import ndtri


def series_first(x: np.ndarray) -> np.ndarray:
    """(chain, draw, series) → split chains as a contiguous (series, 2 chain, draw // 2) array:
    every series' draws side by side in memory, which is what the ranks and FFTs read."""
    half = x.shape[1] // 2
    split = np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)
    return np.ascontiguousarray(np.moveaxis(split, 2, 0))


def rank_normalise(x: np.ndarray) -> np.ndarray:
    series, chains, draws = x.shape
    ranks = average_ranks(x.reshape(series, chains * draws))
    return ndtri((ranks - 0.375) / (chains * draws + 0.25)).reshape(x.shape)


@numba.njit(cache=True, parallel=True)
def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n within each row of (series, n), tied values sharing their average rank."""
    series, n = values.shape
    ranks = np.empty((series, n))
    for s in numba.prange(series):
        row = values[s]
        order = np.argsort(row, kind="mergesort")
        start = 0
        while start < n:
            stop = start + 1
            while stop < n and row[order[stop]] == row[order[start]]:
                stop += 1
            for i in range(start, stop):
                ranks[s, order[i]] = (start + stop + 1) / 2.0
            start = stop
    return ranks


def basic_rhat(x: np.ndarray) -> np.ndarray:
    draws = x.shape[2]
    within = x.var(axis=2, ddof=1).mean(axis=1)
    between_over_n = x.mean(axis=2).var(axis=1, ddof=1)
    pooled = (draws - 1) / draws * within + between_over_n
    return np.sqrt(pooled / within)


def rhat_and_ess(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat and bulk ESS of every series of (chain, draw, series) draws
    (the ranks computed once)."""
    split = series_first(x)
    z = rank_normalise(split)
    median = np.median(split.reshape(split.shape[0], -1), axis=1)[:, None, None]
    folded = np.abs(split - median)
    return np.maximum(basic_rhat(z), basic_rhat(rank_normalise(folded))), effective_sample_size(z)


def ess_tail(x: np.ndarray) -> np.ndarray:
    """Tail ESS of every series of (chain, draw, series) draws."""
    split = series_first(x)
    low, high = np.quantile(x, [0.05, 0.95], axis=(0, 1))  # of all draws, before the split
    return np.minimum(
        effective_sample_size((split <= low[:, None, None]).astype(float)),
        effective_sample_size((split <= high[:, None, None]).astype(float)),
    )


def autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of every series and chain at every lag, (series, chain, lag)."""
    draws = x.shape[2]
    centred = x - x.mean(axis=2, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * draws)))
    spectrum = scipy.fft.rfft(centred, n=size, axis=2, workers=-1)
    power = spectrum.real**2 + spectrum.imag**2
    return scipy.fft.irfft(power, n=size, axis=2, workers=-1)[:, :, :draws] / draws


def effective_sample_size(x: np.ndarray) -> np.ndarray:
    """ESS of every series of (series, chain, draw) draws; a constant series has ESS = its size."""
    _, chains, draws = x.shape
    acov_mean = autocovariance(x).mean(axis=1)  # (series, lag)
    within = acov_mean[:, 0] * draws / (draws - 1.0)
    pooled = within * (draws - 1.0) / draws
    if chains > 1:
        pooled = pooled + x.mean(axis=2).var(axis=1, ddof=1)
    constant = np.ptp(x, axis=(1, 2)) < np.finfo(float).resolution
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (within[:, None] - acov_mean) / pooled[:, None]
    tau = geyer_tau(np.ascontiguousarray(rho), chains * draws)
    return np.where(constant, float(chains * draws), chains * draws / tau)


@numba.njit(cache=True)
def geyer_tau(rho: np.ndarray, total: int) -> np.ndarray:
    """τ̂ per series from its autocorrelations (series, lag): Geyer's initial positive sequence of
    pair sums, made monotone, as in Stan."""
    series, draws = rho.shape
    tau = np.empty(series)
    for s in range(series):
        r = rho[s]
        kept = np.zeros(draws)
        kept[0] = 1.0
        even, odd = 1.0, r[1]
        kept[1] = odd
        t = 1
        while t < draws - 3 and even + odd > 0.0:
            even, odd = r[t + 1], r[t + 2]
            if even + odd >= 0.0:
                kept[t + 1], kept[t + 2] = even, odd
            t += 2
        last = t - 2
        if even > 0.0:
            kept[last + 1] = even
        t = 1
        while t <= last - 2:
            if kept[t + 1] + kept[t + 2] > kept[t - 1] + kept[t]:
                kept[t + 1] = (kept[t - 1] + kept[t]) / 2.0
                kept[t + 2] = kept[t + 1]
            t += 2
        value = -1.0 + 2.0 * kept[: last + 1].sum() + kept[last + 1]
        tau[s] = max(value, 1.0 / np.log10(total))
        if np.isnan(r).any():
            tau[s] = np.nan
    return tau
