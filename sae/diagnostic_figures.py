"""Figures a statistician checks a fit with: the hyperparameters' draws, and the posterior
predictive checks by group.

- `plot_hyperparameters`: for each hyperparameter (σ's, ρ's) its trace by chain and its rank
  plot (Vehtari et al. 2021: the histogram of each chain's ranks among all draws, flat when the
  chains agree). The Laplace method's draws are one chain of independent draws from the mixture
  over θ points, so its rank plot has one chain and its trace no autocorrelation to show.
- `plot_predictive_checks`: for each group (and all rows), the statistics of
  `sae.checks.posterior_predictive` that can fail (dispersion, zero counts, largest count): the
  replicated 95% range as a bar, its mean as a tick, the observed value as a dot, each scaled by
  the replicated mean so the statistics share one axis.

Both return a `matplotlib.figure.Figure` (no pyplot).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

HYPERPARAMETER_PREFIXES = ("area_sigma", "area_rho", "group_area_sigma", "group_area_rho",
                           "time_sigma", "group_time_sigma", "area_time_sigma")  # fmt: skip
RANK_BINS = 20
FAILABLE = ("dispersion (Pearson χ²)", "zero counts", "largest count")


def hyperparameter_series(posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """name → draws (chain, draw), one series per hyperparameter (and group)."""
    series = {}
    for name in HYPERPARAMETER_PREFIXES:
        if name not in posterior:
            continue
        values = posterior[name]
        if "group" in values.dims:
            for group in values["group"].to_numpy():
                series[f"{name} [{group}]"] = values.sel(group=group).to_numpy()
        else:
            series[name] = values.to_numpy()
    return series


def plot_hyperparameters(posterior: xr.Dataset) -> Figure:
    series = hyperparameter_series(posterior)
    fig = Figure(figsize=(10, 1.9 * len(series) + 0.6), layout="constrained")
    axes = fig.subplots(len(series), 2, squeeze=False)
    for (trace_ax, rank_ax), (name, draws) in zip(axes, series.items(), strict=True):
        ranks = stats.rankdata(draws.ravel()).reshape(draws.shape)
        edges = np.linspace(0, ranks.size, RANK_BINS + 1)
        for chain in range(draws.shape[0]):
            trace_ax.plot(draws[chain], linewidth=0.4, alpha=0.8, label=f"chain {chain + 1}")
            rank_ax.hist(ranks[chain], bins=edges, histtype="step", linewidth=1.0)
        rank_ax.axhline(draws.shape[1] / RANK_BINS, color="#555555", linestyle=":", linewidth=1)
        trace_ax.set_ylabel(name, fontsize=8)
        trace_ax.tick_params(labelsize=7)
        rank_ax.tick_params(labelsize=7)
    axes[0, 0].set_title("trace by chain", fontsize=10)
    axes[0, 1].set_title("rank plot by chain (flat when the chains agree)", fontsize=10)
    return fig


def plot_predictive_checks(checks) -> Figure:
    """`checks`: the table of `sae.checks.posterior_predictive`."""
    table = checks[checks["statistic"].isin(FAILABLE)]
    subsets = list(dict.fromkeys(table["rows"]))
    fig = Figure(figsize=(10, 0.9 * len(subsets) + 1.6), layout="constrained")
    axes = fig.subplots(1, len(FAILABLE), sharey=True, squeeze=False)[0]
    for ax, statistic in zip(axes, FAILABLE, strict=True):
        rows = table[table["statistic"] == statistic].set_index("rows").reindex(subsets)
        scale = rows["replicated_mean"].where(rows["replicated_mean"] > 0, 1.0)
        y = np.arange(len(subsets))
        ax.hlines(y, rows["replicated_lower"] / scale, rows["replicated_upper"] / scale,
                  color="#9ecae1", linewidth=6, label="replicated 95% range")  # fmt: skip
        ax.plot(np.ones(len(y)), y, "|", color="#08519c", markersize=12, label="replicated mean")
        ax.plot(rows["observed"] / scale, y, "o", color="#d94801", label="observed")
        for yi, p in zip(y, rows["p_value"], strict=True):
            ax.annotate(f"p = {p:.2f}", (1.0, yi), xytext=(0, 7), textcoords="offset points",
                        fontsize=7, ha="center")  # fmt: skip
        ax.set_title(statistic, fontsize=10)
        ax.set_xlabel("÷ replicated mean", fontsize=8)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(np.arange(len(subsets)), subsets)
    axes[0].invert_yaxis()
    axes[-1].legend(fontsize=7, loc="lower right")
    return fig
