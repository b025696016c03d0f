"""Figures of a space–time fit: maps by period, and each place's rates and gap over time.

Both use the tables sae writes (estimates and gaps with a `period` column) and, like `sae.maps`,
show reliability on the figure itself: maps hatch unreliable cells; the line charts draw each
period's interval as a band and mark numbers that are not reliable with hollow points, so that a
smoothed line is never read as measured. Figures are `matplotlib.figure.Figure`s (no pyplot).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import ScalarFormatter

from sae.maps import CAPTION, Classes, decorate, draw_layer, flag_legend, joined, projected

GROUP_COLOURS = colormaps["tab10"]  # distinguishable in colour-blind simulations for ≤ 4 lines
TREND_CAPTION = (
    "Lines: posterior means; bands: {interval:.0%} intervals, from the same draws for every "
    "period. Hollow points: the rate is not reliable (see its flag). Gap panel: rate ratio to "
    "{reference} (log scale); filled points: the gap is clear (its interval excludes 1); the "
    "dotted line is no difference."
)


def plot_estimates_by_period(estimates: pd.DataFrame, areas, area_id: str, column: str = "mean",
                             periods=None, unit: str = "per 100,000", title: str = "Estimated rates",
                             subtitle: str = "", cmap: str = "YlOrRd", k: int = 5):  # fmt: skip
    """Small multiples: one row per group, one column per period (`periods`, default all), one
    classification and colour scale shared by every panel, so colours compare across years."""
    periods = list(dict.fromkeys(estimates["period"])) if periods is None else list(periods)
    groups = list(dict.fromkeys(estimates["group"]))
    shown = estimates[estimates["period"].isin(periods)]
    classes = Classes.of(shown.loc[shown["has_data"], column].to_numpy(float), k=k, cmap=cmap)
    shapes = projected(areas)
    fig = Figure(figsize=(2.6 * len(periods), 2.7 * len(groups) + 2.4))
    axes = fig.subplots(len(groups), len(periods), squeeze=False)
    flag_column = "adj_flag" if column.startswith("adj_") else "flag"
    for row, group in enumerate(groups):
        for col, period in enumerate(periods):
            part = shown[(shown["group"] == group) & (shown["period"] == period)]
            draw_layer(axes[row, col], joined(part, shapes, area_id), column, classes.cmap,
                       classes.norm, flag_column)  # fmt: skip
            axes[row, col].set_title(f"{group}, {period}", fontsize=9)
    decorate(fig, title, subtitle, CAPTION, [(classes.legend(unit) + flag_legend(), 0.5, 5)])
    return fig


def plot_place_trend(estimates: pd.DataFrame, gaps: pd.DataFrame | None, area: str,
                     column: str = "mean", unit: str = "per 100,000", title: str | None = None,
                     interval: float = 0.95):  # fmt: skip
    """Each group's rate in one place over the periods with its interval band, and below it the
    gap (rate ratio to the reference, with its band); returns the Figure."""
    rows = estimates[estimates["area"].astype(str) == str(area)]
    lower, upper = column.replace("mean", "lower"), column.replace("mean", "upper")
    flag_column = "adj_flag" if column.startswith("adj_") else "flag"
    panels = 2 if gaps is not None and len(gaps) else 1
    fig = Figure(figsize=(7.5, 3.2 * panels + 1.4))
    axes = np.ravel(fig.subplots(panels, 1, sharex=True, squeeze=False))
    for i, (group, series) in enumerate(rows.groupby("group", sort=False)):
        series_line(axes[0], series, column, lower, upper, flag_column, GROUP_COLOURS(i), group)
    axes[0].set_ylabel(f"rate {unit}")
    axes[0].set_ylim(bottom=0)
    reference = None
    if panels == 2:
        ratios = gaps[gaps["area"].astype(str) == str(area)]
        reference = ratios["reference"].iloc[0]
        for group, series in ratios.groupby("group", sort=False):
            colour = GROUP_COLOURS(list(dict.fromkeys(rows["group"])).index(group))
            series_line(axes[1], series.assign(clear=series["flag"] == "clear"), "ratio_median",
                        "ratio_lower", "ratio_upper", None, colour, f"{group} / {reference}")  # fmt: skip
        axes[1].axhline(1.0, color="#333333", linestyle=":", linewidth=1)
        axes[1].set_yscale("log")
        axes[1].yaxis.set_major_formatter(ScalarFormatter())
        axes[1].yaxis.set_minor_formatter(ScalarFormatter())
        axes[1].set_ylabel(f"rate ratio to {reference}")
        axes[1].legend(fontsize=8, frameon=False, loc="upper left")
    axes[-1].set_xlabel("period")
    name = rows["name"].iloc[0] if "name" in rows and len(rows) else area
    fig.suptitle(title or f"{name}: rates over time", fontsize=13, fontweight="bold")
    marker = Line2D([], [], marker="o", linestyle="none", markerfacecolor="white",
                    markeredgecolor="#333333", label="not reliable")  # fmt: skip
    axes[0].add_artist(axes[0].legend(fontsize=8, frameon=False, loc="upper left", ncol=2))
    axes[0].legend(handles=[marker], fontsize=8, frameon=False, loc="lower right")
    fig.text(0.5, 0.01, TREND_CAPTION.format(interval=interval, reference=reference or "—"),
             ha="center", va="bottom", fontsize=7.5, color="#333333", wrap=True)  # fmt: skip
    fig.subplots_adjust(top=0.9, bottom=0.16, hspace=0.12)
    return fig


def series_line(ax, series: pd.DataFrame, column: str, lower: str, upper: str,
                flag_column: str | None, colour, label: str) -> None:  # fmt: skip
    """One line with its band; points filled where the number is reliable (or, for a gap, where
    it is clear), hollow elsewhere."""
    x = np.arange(len(series))
    ax.fill_between(x, series[lower], series[upper], color=colour, alpha=0.18, linewidth=0)
    ax.plot(x, series[column], color=colour, linewidth=1.8, label=label)
    solid = (series[flag_column] == "reliable") if flag_column else series["clear"]
    solid = solid.to_numpy(bool)
    ax.scatter(x[solid], series[column].to_numpy()[solid], color=colour, s=18, zorder=3)
    ax.scatter(x[~solid], series[column].to_numpy()[~solid], facecolor="white", edgecolor=colour,
               s=18, zorder=3)  # fmt: skip
    ax.set_xticks(x, [str(p) for p in series["period"]], rotation=45 if len(x) > 8 else 0,
                  fontsize=8)  # fmt: skip
