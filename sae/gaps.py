"""Gaps between groups in the same place, computed draw by draw from one posterior.

For place i, group g and reference r (another group, or the place's all-groups rate):

    ratio_ig = θ_ig / θ_ir (reported by its posterior median),   difference_ig = θ_ig − θ_ir,
    prob_higher = P(θ_ig > θ_ir | y),
    prob_meaningful = P(ratio_ig ≥ t | y) when the median ratio is ≥ 1, else P(ratio_ig ≤ 1/t | y):
        the probability that the gap is at least of a practical size t ([flags] gap_meaningful_ratio)
    excess_ig = (θ_ig − θ_ir) / per × exposure_ig   (expected excess events in the group)

Because every summary comes from the same draws, the intervals of the ratio and the difference
carry the full joint uncertainty of both rates (no independence assumption).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALL_GROUPS = "all groups"  # a reference: the place's rate over all its groups
GAP_COLUMNS = (
    "area", "group", "reference", "ratio_median", "ratio_lower", "ratio_upper",
    "diff_mean", "diff_lower", "diff_upper", "prob_higher", "prob_meaningful",
    "excess", "excess_lower", "excess_upper", "flag", "flag_reason",
)  # fmt: skip


def compare_draws(
    target: np.ndarray, reference: np.ndarray, interval: float, meaningful: float | None = None
) -> pd.DataFrame:
    """Ratio and difference summaries and P(target > reference); inputs are (draws, units). With
    `meaningful` (a ratio t > 1), also P(the ratio is at least t, or at most 1/t, on the side of
    its median): `prob_meaningful`.

    The ratio's point value is its posterior median, which is consistent with its reciprocal and
    with P(higher); the difference's is its posterior mean. The ratio is only defined where every
    reference draw is positive; elsewhere (e.g. a prevalence whose posterior reaches 0) its
    summaries are NaN and the difference stands alone.
    """
    positive = reference > 0
    ratio = np.where(positive.all(axis=0), target / np.where(positive, reference, 1.0), np.nan)
    difference = target - reference
    tail = (1.0 - interval) / 2.0
    lower, median, upper = quantiles(ratio, (tail, 0.5, 1.0 - tail))
    columns = {"ratio_median": median, "ratio_lower": lower, "ratio_upper": upper,
               "diff_mean": difference.mean(axis=0, dtype=float)}  # fmt: skip
    columns["diff_lower"], columns["diff_upper"] = interval_bounds(difference, interval)
    columns["prob_higher"] = (target > reference).mean(axis=0, dtype=float)
    if meaningful is not None:
        above, below = (
            (ratio >= meaningful).mean(axis=0, dtype=float),
            (ratio <= 1.0 / meaningful).mean(axis=0, dtype=float),
        )
        columns["prob_meaningful"] = np.where(median >= 1.0, above, below)
    return pd.DataFrame(columns)


def quantiles(draws: np.ndarray, probabilities) -> np.ndarray:
    """Posterior quantiles over the draws (axis 0), in float64."""
    return np.quantile(draws, probabilities, axis=0).astype(float)


def interval_bounds(draws: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - interval) / 2.0
    lower, upper = quantiles(draws, [tail, 1.0 - tail])
    return lower, upper
