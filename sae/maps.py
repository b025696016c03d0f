"""Report-ready choropleths where an unreliable number never looks like a solid fact.

Every map encodes reliability on top of colour: ``unreliable`` cells are hatched densely,
``caution`` cells lightly, areas without data are grey, and the legend explains all three.
Functions take the tables sae writes (estimates, gaps) and the areas GeoDataFrame, accept
``ax=None`` and return the matplotlib Figure; they never open a window and never change
matplotlib's backend (figures are made with `matplotlib.figure.Figure`, not pyplot).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sae.tables import shown_prefix

HATCH = {"unreliable": "////", "model-driven": "\\\\\\\\", "caution": "..", "uncertain": "..",
         "reliable": "", "clear": "", "likely": ""}  # fmt: skip
NO_DATA_COLOUR = "#bdbdbd"
EDGE_COLOUR = "#4d4d4d"
CAPTION = (
    "Hatched (////): unreliable. Hatched (\\\\): model-driven, the area's own data carry "
    "less than half of what the number says. Dotted: use with caution. Grey: no data."
)
ALPHA_CAPTION = (
    "Opacity shows certainty: the wider the 95% interval relative to the estimate, the paler the "
    "area (faintest at 1.6 × the estimate, the NCHS limit for reliable rates). Grey: no data."
)


def gap_caption(interval: float, likely: float) -> str:
    return (f"Dotted: gap uncertain ({1 - likely:.2g} < P(higher) < {likely:.2g}). Ratios are "
            f"posterior medians; a gap is clear when its {interval:.0%} interval excludes no "
            f"difference (P(higher) beyond {(1 - interval) / 2:.3g} or {(1 + interval) / 2:.3g}).")  # fmt: skip


def projected(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The areas in their projected CRS, or, for lon/lat data, a local Lambert equal-area one."""
    if areas.crs is not None and areas.crs.is_projected:
        return areas
    lonlat = areas if areas.crs is not None else areas.set_crs("EPSG:4326")
    centre = lonlat.to_crs("EPSG:4326").union_all().centroid
    return lonlat.to_crs(f"+proj=laea +lat_0={centre.y:.4f} +lon_0={centre.x:.4f} +datum=WGS84")


def classify(values: np.ndarray, scheme: str = "quantiles", k: int = 5, breaks=None) -> np.ndarray:
    """Class upper bounds: quantiles (default), natural breaks, or the user's `breaks`."""
    finite = values[np.isfinite(values)]
    if breaks is not None:
        return np.asarray(breaks, dtype=float)
    method = {"quantiles": mapclassify.Quantiles, "natural_breaks": mapclassify.NaturalBreaks,
              "equal_interval": mapclassify.EqualInterval}[scheme]  # fmt: skip
    return method(finite, k=min(k, len(np.unique(finite)))).bins


def joined(table: pd.DataFrame, areas: gpd.GeoDataFrame, area_id: str) -> gpd.GeoDataFrame:
    shapes = areas[[area_id, "geometry"]].rename(columns={area_id: "area"})
    shapes["area"] = shapes["area"].astype(str)
    return shapes.merge(table.assign(area=table["area"].astype(str)), on="area", how="left")


def draw_layer(
    ax, frame: gpd.GeoDataFrame, column: str, cmap, norm, flag_column: str = "flag",
    encoding: str = "hatch",
):  # fmt: skip
    """Fill by class colour, grey where there is no data, and show reliability by hatching (the
    default) or by value-by-alpha (`encoding="alpha"`: the wider the relative interval, the paler
    the fill; Roth et al. 2010); outline every area."""
    has_data = frame.get("has_data", pd.Series(True, index=frame.index)).fillna(False).astype(bool)
    has_value = has_data & frame[column].notna()
    coloured = frame[has_value]
    if len(coloured):
        colours = cmap(norm(coloured[column].to_numpy()))
        if encoding == "alpha":
            colours[:, 3] = value_alpha(coloured["relative_width"].to_numpy(float))
        coloured.plot(ax=ax, color=colours, edgecolor=EDGE_COLOUR, linewidth=0.3)
    if (~has_value).any():  # no data, or no value (a rate ratio whose reference reaches 0)
        frame[~has_value].plot(ax=ax, color=NO_DATA_COLOUR, edgecolor=EDGE_COLOUR, linewidth=0.3)
    for flag, pattern in HATCH.items() if encoding == "hatch" else ():
        hatched = frame[(frame[flag_column] == flag) & has_data]
        if pattern and len(hatched):
            hatched.plot(ax=ax, facecolor="none", edgecolor="#1a1a1a", hatch=pattern, linewidth=0)
    censored = frame[censored_cells(frame) & has_data]
    if len(censored):
        points = censored.geometry.representative_point()
        ax.scatter(points.x, points.y, **CENSORED_MARKER)
    allocated = frame[allocated_cells(frame) & has_data]
    if len(allocated):
        points = allocated.geometry.representative_point()
        ax.scatter(points.x, points.y, **ALLOCATED_MARKER)
    ax.set_axis_off()


CENSORED_MARKER = {"marker": "o", "s": 14, "facecolor": "white", "edgecolor": "#1a1a1a",
                   "linewidth": 0.8, "zorder": 3}  # fmt: skip
CENSORED_CAPTION = "\nCircles: some of the cell's counts were suppressed and are fitted as ranges."


ALLOCATED_SHARE = 0.10
ALLOCATED_MARKER = {"marker": "^", "s": 22, "facecolor": "none", "edgecolor": "#1a1a1a",
                    "linewidth": 0.9, "zorder": 3}  # fmt: skip
ALLOCATED_CAPTION = (f"\nTriangles: at least {ALLOCATED_SHARE:.0%} of the cell's events had no "
                     "recorded group and were shared out by the model (see the report's assumption).")  # fmt: skip


def allocated_cells(frame: pd.DataFrame) -> pd.Series:
    """Cells of which at least `ALLOCATED_SHARE` of the events are events of unknown group shared
    out to them (`sae.unknown_group`)."""
    if "unknown_allocated" not in frame:
        return pd.Series(False, index=frame.index)
    total = frame["observed"].fillna(0) + frame["unknown_allocated"]
    return (frame["unknown_allocated"] >= ALLOCATED_SHARE * total.where(total > 0)).fillna(False)


def allocated_legend() -> list[Line2D]:
    return [Line2D([], [], linestyle="none", marker="^", markersize=6, markerfacecolor="none",
                   markeredgecolor="#1a1a1a", label="unknown group shared out")]  # fmt: skip


def censored_cells(frame: pd.DataFrame) -> pd.Series:
    """Cells whose count is known only as a range (a suppressed count among their strata)."""
    if "observed_upper" not in frame:
        return pd.Series(False, index=frame.index)
    return (frame["observed"].isna() & frame["observed_upper"].notna()).astype(bool)


def censored_legend() -> list[Line2D]:
    style = {k: v for k, v in CENSORED_MARKER.items() if k not in ("s", "zorder")}
    return [Line2D([], [], linestyle="none", markersize=5, label="counts suppressed",
                   markerfacecolor=style.pop("facecolor"), markeredgecolor=style.pop("edgecolor"),
                   markeredgewidth=style.pop("linewidth"), **style)]  # fmt: skip


ALPHA_FLOOR = 0.15


def value_alpha(relative_width: np.ndarray) -> np.ndarray:
    """Opacity from the relative interval width: 1 at 0, falling linearly to a floor at the NCHS
    unreliability limit (1.6) and beyond, so the least certain cells fade towards the background."""
    return np.clip(1.0 - (1.0 - ALPHA_FLOOR) * relative_width / 1.6, ALPHA_FLOOR, 1.0)


def alpha_legend() -> list[Patch]:
    return [Patch(facecolor="#555555", alpha=value_alpha(np.array([w]))[0], edgecolor=EDGE_COLOUR,
                  label=f"interval width {w:.0%} of estimate")
            for w in (0.2, 0.8, 1.6)]  # fmt: skip


def label_format(low: float, bounds: np.ndarray) -> str:
    """Enough decimals that every class boundary reads differently (e.g. prevalences 0.12 – 0.15)."""
    widths = np.diff([low, *bounds[np.isfinite(bounds)]])
    smallest = widths[widths > 0].min() if (widths > 0).any() else 1.0
    return f",.{int(np.clip(1 - np.floor(np.log10(smallest)), 0, 4))}f"


def flag_legend(
    levels=("unreliable", "model-driven", "caution"), no_data: bool = True
) -> list[Patch]:
    patches = [Patch(facecolor="white", edgecolor="#1a1a1a", hatch=HATCH[level], label=level)
               for level in levels]  # fmt: skip
    if no_data:
        patches.append(Patch(facecolor=NO_DATA_COLOUR, edgecolor=EDGE_COLOUR, label="no data"))
    return patches


BASIS_WORDS = {
    "adj_": ("Age-adjusted rates", "age-adjusted, posterior mean"),
    "": ("Estimated rates", "posterior mean"),
    "crude mix": ("Estimated rates, not age-adjusted",
                  "posterior mean for each cell's own age mix (not age-adjusted)"),
}  # fmt: skip


def estimate_column(estimates: pd.DataFrame, column: str | None) -> str:
    """The column a map shows by default: the age-adjusted mean when the table has one."""
    if column is not None:
        return column
    return shown_prefix(estimates) + "mean"


def basis_words(estimates: pd.DataFrame, column: str) -> tuple[str, str]:
    """Default title and subtitle saying what `column` is: age-adjusted, or (when the table also
    has age-adjusted rates) explicitly not."""
    if column.startswith("adj_"):
        return BASIS_WORDS["adj_"]
    return BASIS_WORDS["crude mix" if shown_prefix(estimates) else ""]


def plot_estimates(
    estimates: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    area_id: str,
    column: str | None = None,
    unit: str = "per 100,000",
    scheme: str = "quantiles",
    k: int = 5,
    breaks=None,
    cmap: str = "YlOrRd",
    title: str | None = None,
    subtitle: str | None = None,
    encoding: str = "hatch",
    ax=None,
):
    """Small multiples, one panel per group, sharing one classification and colour scale.

    `column`: by default the age-adjusted mean (`adj_mean`) when the table has one, else `mean`;
    the default title and subtitle say which. `encoding` shows reliability by "hatch" (unreliable
    hatched, caution dotted) or "alpha" (value-by-alpha from the relative interval width). `ax`:
    one matplotlib Axes per group (an Axes or a sequence of them), e.g. inside a figure of your
    own; the legend and caption then belong to the last of them (nothing is drawn at figure
    level) and no title is set. Without `ax` a new Figure is made with title, legend and caption.
    Returns the Figure.
    """
    column = estimate_column(estimates, column)
    default_title, default_subtitle = basis_words(estimates, column)
    shapes = projected(areas)
    groups = list(dict.fromkeys(estimates["group"]))
    values = estimates.loc[estimates["has_data"], column].to_numpy(float)
    classes = Classes.of(values, scheme, k, breaks, cmap)
    own_figure = ax is None
    if own_figure:
        fig = Figure(figsize=(5.5 * len(groups), 5.6))
        ax = fig.subplots(1, len(groups), squeeze=False)
    axes = np.ravel(np.asarray(ax, dtype=object))
    flag_column = "adj_flag" if column.startswith("adj_") else "flag"
    for one, group in zip(axes, groups, strict=False):
        frame = joined(estimates[estimates["group"] == group], shapes, area_id)
        draw_layer(one, frame, column, classes.cmap, classes.norm, flag_column, encoding)
        one.set_title(str(group), fontsize=12)
    reliability = flag_legend() if encoding == "hatch" else alpha_legend() + flag_legend(())
    handles = classes.legend(unit) + reliability
    caption = CAPTION if encoding == "hatch" else ALPHA_CAPTION
    if censored_cells(estimates).any():
        handles, caption = handles + censored_legend(), caption + CENSORED_CAPTION
    if allocated_cells(estimates).any():
        handles, caption = handles + allocated_legend(), caption + ALLOCATED_CAPTION
    if not own_figure:
        legend_below(axes[len(groups) - 1], handles, caption, columns=2)
        return axes[0].figure
    title = default_title if title is None else title
    subtitle = default_subtitle if subtitle is None else subtitle
    decorate(fig, title, subtitle, caption, [(handles, 0.5, 4)])
    return fig


@dataclass(frozen=True)
class Classes:
    """One classification of a map's values: class upper bounds, colours and labels, shared by
    the static maps and the interactive map so both show the same key."""

    low: float
    bounds: np.ndarray
    colours: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, scheme="quantiles", k=5, breaks=None, cmap="YlOrRd"):
        bounds = classify(values, scheme, k, breaks)
        colours = colormaps[cmap](np.linspace(0.1, 0.95, len(bounds)))
        return cls(float(np.nanmin(values)), bounds, colours)

    @property
    def cmap(self) -> ListedColormap:
        return ListedColormap(self.colours)

    @property
    def norm(self) -> BoundaryNorm:
        return BoundaryNorm([self.low, *self.bounds], len(self.colours), clip=True)

    def index(self, values: np.ndarray) -> np.ndarray:
        """Each value's class (values beyond the bounds go to the outer classes)."""
        return np.minimum(np.searchsorted(self.bounds, values), len(self.bounds) - 1)

    def labels(self) -> list[str]:
        fmt = label_format(self.low, self.bounds)
        edges = [self.low, *self.bounds]
        return [
            f"{format(a, fmt)} – {format(b, fmt)}"
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]

    def legend(self, unit: str) -> list[Patch]:
        patches = [Patch(facecolor=colour, edgecolor=EDGE_COLOUR, label=label)
                   for colour, label in zip(self.colours, self.labels(), strict=True)]  # fmt: skip
        patches[0].set_label(f"{patches[0].get_label()}  {unit}")
        return patches


def legend_below(ax, handles: list, caption: str, columns: int) -> None:
    """A legend attached to `ax`, under it, titled with the (wrapped) caption: for maps drawn into
    a figure of the caller's, where figure-level legends would collide."""
    legend = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                       ncol=columns, fontsize=7.5, frameon=False,
                       title="\n".join(textwrap.wrap(caption, 70)), title_fontsize=7)  # fmt: skip
    legend._legend_box.align = "left"


GAP_BREAKS = np.array([1 / 2, 1 / 1.5, 1 / 1.25, 1 / 1.1, 1.1, 1.25, 1.5, 2.0, np.inf])
GAP_LABELS = ("< 0.5", "0.5–0.67", "0.67–0.8", "0.8–0.91", "0.91–1.1 (similar)", "1.1–1.25",
              "1.25–1.5", "1.5–2", "> 2")  # fmt: skip


def gap_colours(cmap: str = "PuOr_r") -> np.ndarray:
    """One colour per rate-ratio class of `GAP_BREAKS` (static and interactive gap maps)."""
    return colormaps[cmap](np.linspace(0.05, 0.95, len(GAP_BREAKS)))


def plot_gaps(
    gaps: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    area_id: str,
    title: str = "Rate ratio between groups",
    subtitle: str = "",
    cmap: str = "PuOr_r",
    ax=None,
    interval: float = 0.95,
    likely: float = 0.80,
):
    """For each compared group: the rate ratio (log scale, diverging palette centred at 1) and the
    probability that the group's rate is higher (exceedance), binned at the fit's thresholds: the
    outer bins are the gaps whose `interval` excludes no difference, the middle one those that are
    uncertain (P(higher) within 1 − `likely` and `likely`). `ax`: an (n_groups, 2) array of Axes
    in a figure of your own (the legends then belong to the last row's Axes, nothing is drawn at
    figure level); without it a new Figure is made with title, legends and caption. Returns the
    Figure."""
    shapes = projected(areas)
    groups = list(dict.fromkeys(gaps["group"]))
    own_figure = ax is None
    if own_figure:
        ax = Figure(figsize=(11, 4.2 * len(groups) + 2.2)).subplots(len(groups), 2, squeeze=False)
    axes = np.asarray(ax, dtype=object).reshape(len(groups), 2)
    fig = axes[0, 0].figure
    ratio_colours = ListedColormap(gap_colours(cmap))
    ratio_norm = BoundaryNorm([0.0, *GAP_BREAKS], ratio_colours.N)
    tail = (1 - interval) / 2
    prob_bounds = np.array([tail, 1 - likely, likely, 1 - tail, 1.0])
    prob_colours = ListedColormap(colormaps["RdBu_r"](np.linspace(0.1, 0.9, len(prob_bounds))))
    prob_norm = BoundaryNorm([0.0, *prob_bounds], prob_colours.N)
    for (ax_ratio, ax_prob), group in zip(axes, groups, strict=True):
        frame = joined(gaps[gaps["group"] == group].assign(has_data=True), shapes, area_id)
        reference = gaps["reference"].iloc[0]
        draw_layer(ax_ratio, frame, "ratio_median", ratio_colours, ratio_norm)
        ax_ratio.set_title(f"{group} / {reference}: rate ratio", fontsize=12)
        draw_layer(ax_prob, frame, "prob_higher", prob_colours, prob_norm)
        ax_prob.set_title(f"P({group} rate higher than {reference})", fontsize=12)
    ratio_handles = [Patch(facecolor=ratio_colours(i), edgecolor=EDGE_COLOUR, label=label)
                     for i, label in enumerate(GAP_LABELS)]  # fmt: skip
    edges = [f"{b:.3g}" for b in prob_bounds[:4]]
    prob_labels = [f"< {edges[0]} (clear: lower)", f"{edges[0]}–{edges[1]}",
                   f"{edges[1]}–{edges[2]}", f"{edges[2]}–{edges[3]}",
                   f"> {edges[3]} (clear: higher)"]  # fmt: skip
    prob_handles = [Patch(facecolor=prob_colours(i), edgecolor=EDGE_COLOUR, label=label)
                    for i, label in enumerate(prob_labels)]  # fmt: skip
    prob_handles += flag_legend(("uncertain",), no_data=False)
    if not own_figure:
        legend_below(axes[-1, 0], ratio_handles, "Rate ratio (posterior median)", columns=3)
        legend_below(axes[-1, 1], prob_handles, gap_caption(interval, likely), columns=2)
        return fig
    legends = [(ratio_handles, 0.27, 3), (prob_handles, 0.75, 2)]
    decorate(fig, title, subtitle, gap_caption(interval, likely), legends)
    return fig


def decorate(
    fig, title: str, subtitle: str, caption: str, legends: list[tuple[list, float]]
) -> None:
    """Title, subtitle, legends (each a list of handles and its x centre) and caption, laid out in
    inches so they never overlap the maps whatever the figure's height."""
    height = fig.get_figheight()
    fig.suptitle(title, fontsize=15, fontweight="bold", y=1 - 0.12 / height, va="top")
    if subtitle:
        fig.text(
            0.5, 1 - 0.5 / height, subtitle, ha="center", va="top", fontsize=10, color="#333333"
        )
    rows = max(int(np.ceil(len(handles) / columns)) for handles, _, columns in legends)
    legend_top = 0.42 + 0.2 * rows
    for handles, x, columns in legends:
        fig.legend(handles=handles, loc="upper center", ncol=columns, fontsize=8.5, frameon=False,
                   bbox_to_anchor=(x, legend_top / height))  # fmt: skip
    fig.text(0.5, 0.1 / height, caption, ha="center", va="bottom", fontsize=8, color="#333333")
    fig.subplots_adjust(top=1 - 0.95 / height, bottom=(legend_top + 0.1) / height, wspace=0.03,
                        hspace=0.15)  # fmt: skip


def save_figure(fig, stem: Path) -> list[Path]:
    """PNG (300 dpi), SVG and PDF next to each other; returns the paths."""
    paths = [stem.with_suffix(suffix) for suffix in (".png", ".svg", ".pdf")]
    for path in paths:
        fig.savefig(path, dpi=300 if path.suffix == ".png" else None, bbox_inches="tight")
    return paths
