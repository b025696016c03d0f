"""Writing every map of a fit: `sae map DIR` and `sae fit --maps`.

Static maps (PNG at 300 dpi, SVG, PDF) of the estimates and, with groups, of the gaps; and the
self-contained interactive HTML map. Files go to ``DIR/maps/``.

A space–time fit maps its latest period in those files, and adds `estimates_by_period` (small
multiples, at most `PERIODS_SHOWN` periods evenly spread from the first to the last), one tab per
group and period in the interactive map, and `trends/<area>.png`, each place's rates and gap over
time (for the first `PLACES_CHARTED` places; `sae.time_figures.plot_place_trend` draws any).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sae import maps, time_figures
from sae.errors import SaeInputError
from sae.interactive import interactive_map
from sae.summary import model_words


def area_names(fit) -> dict:
    """Area id → display name ([data] area_name, from the polygons or the cells); {} without."""
    return {} if fit.inputs.names is None else fit.inputs.names.to_dict()


PERIODS_SHOWN = 6
PLACES_CHARTED = 200


def write_maps(fit, directory: Path) -> list[Path]:
    """All maps of `fit` into `directory` (created); returns the files written."""
    if fit.inputs.areas is None:
        raise SaeInputError(
            "this fit has no polygons (it used an edge list or no neighbours), so it cannot be "
            "mapped. Give [data] areas = a polygons file to draw maps."
        )
    directory.mkdir(parents=True, exist_ok=True)
    spec, areas, area_id = fit.spec, fit.inputs.areas, fit.spec.data.area_id
    adjusted = spec.output.age_stratum is not None
    column = "adj_mean" if adjusted else "mean"
    basis = "age-adjusted (2000 U.S. standard), " if adjusted else ""
    subtitle = f"{basis}{spec.unit_label}; posterior mean ({model_words(spec)})"
    estimates = fit.estimates()
    gaps = fit.gaps() if len(fit.design.groups) > 1 else None
    written = []
    latest_estimates, latest_gaps = estimates, gaps
    if fit.periods:
        latest = fit.periods[-1]
        subtitle = f"{latest}, {subtitle}"
        latest_estimates = estimates[estimates["period"] == latest]
        latest_gaps = None if gaps is None else gaps[gaps["period"] == latest]
        written += time_maps(fit, estimates, gaps, directory, column, basis)
    fig = maps.plot_estimates(latest_estimates, areas, area_id, column=column,
                              unit=spec.unit_label, title=spec.title, subtitle=subtitle)  # fmt: skip
    written += maps.save_figure(fig, directory / "estimates")
    if gaps is not None:
        reference = gaps["reference"].iloc[0]
        when = f"{fit.periods[-1]}, " if fit.periods else ""
        fig = maps.plot_gaps(latest_gaps, areas, area_id,
                             title=f"{spec.title}: gaps against {reference}",
                             subtitle=f"{when}{basis}rate ratio and P(higher), from the same posterior draws",
                             interval=spec.output.interval, likely=spec.flags.gap_possible)  # fmt: skip
        written += maps.save_figure(fig, directory / "gaps")
        panels, panel_gaps = period_panels(estimates, gaps)
        written.append(
            interactive_map(
                panels,
                areas,
                area_id,
                directory / "map.html",
                gaps=panel_gaps,
                column=column,
                title=spec.title,
                unit=spec.unit_label,
                names=area_names(fit),
            )  # fmt: skip
        )
    return written


def period_panels(estimates, gaps):
    """The tables with one panel per group and period ("B 2015"), for the interactive map."""
    if "period" not in estimates:
        return estimates, gaps

    def relabel(table):
        return table.assign(group=table["group"].astype(str) + " " + table["period"].astype(str))

    return relabel(estimates), relabel(gaps)


def time_maps(fit, estimates, gaps, directory: Path, column: str, basis: str) -> list[Path]:
    """Maps by period and each place's trend chart (see the module's docstring)."""
    spec, periods = fit.spec, fit.periods
    shown = [periods[i] for i in
             np.unique(np.linspace(0, len(periods) - 1, min(PERIODS_SHOWN, len(periods))).round()
                       .astype(int))]  # fmt: skip
    fig = time_figures.plot_estimates_by_period(
        estimates, fit.inputs.areas, spec.data.area_id, column=column, periods=shown,
        unit=spec.unit_label, title=f"{spec.title}: by period",
        subtitle=f"{basis}{spec.unit_label}; posterior mean ({model_words(spec)})",
    )  # fmt: skip
    written = maps.save_figure(fig, directory / "estimates_by_period")
    charts = directory / "trends"
    charts.mkdir(exist_ok=True)
    for area in list(fit.inputs.graph.ids)[:PLACES_CHARTED]:
        fig = time_figures.plot_place_trend(estimates, gaps, area, column, spec.unit_label,
                                            interval=spec.output.interval)  # fmt: skip
        path = charts / f"{safe_name(area)}.png"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        written.append(path)
    return written


def safe_name(area: str) -> str:
    """A file name for an area id: letters, digits, '-' and '_' kept, anything else '_'."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(area)) or "_"
