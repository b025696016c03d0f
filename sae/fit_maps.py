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
from sae.geo_table import write_geopackage
from sae.interactive import interactive_map
from sae.summary import model_words


def area_names(fit) -> dict:
    """Area id → display name ([data] area_name, from the polygons or the cells); {} without."""
    return {} if fit.inputs.names is None else fit.inputs.names.to_dict()


PERIODS_SHOWN = 6
PLACES_CHARTED = 200


def map_defaults(fit) -> dict:
    """What the fit's maps show by default: its column (age-adjusted with an age stratum), units,
    title, subtitle (rate basis, model, latest period) and reliability thresholds."""
    spec = fit.spec
    adjusted = spec.output.age_stratum is not None
    basis = "age-adjusted (2000 U.S. standard), " if adjusted else ""
    when = f"{fit.periods[-1]}, " if fit.periods else ""
    return {"column": "adj_mean" if adjusted else "mean", "unit": spec.unit_label,
            "title": spec.title, "basis": basis, "when": when,
            "subtitle": f"{when}{basis}{spec.unit_label}; posterior mean ({model_words(spec)})"}  # fmt: skip


def latest_rows(table, fit):
    """A space–time fit's rows of its latest period (the whole table otherwise)."""
    if table is None or not fit.periods:
        return table
    return table[table["period"] == fit.periods[-1]].reset_index(drop=True)


def checked_polygons(fit):
    if fit.inputs.areas is None:
        raise SaeInputError(
            "this fit has no polygons (it used an edge list or no neighbours), so it cannot be "
            "mapped. Give [data] areas = a polygons file to draw maps."
        )
    return fit.inputs.areas


def estimates_figure(fit, **overrides):
    """`Fit.plot_estimates`: the estimates map with the fit's own defaults (see `map_defaults`),
    any of `sae.maps.plot_estimates`' arguments overriding them; the latest period of a
    space–time fit."""
    d = map_defaults(fit)
    defaults = {k: d[k] for k in ("column", "unit", "title", "subtitle")}
    return maps.plot_estimates(latest_rows(fit.estimates(), fit), checked_polygons(fit),
                               fit.spec.data.area_id, **(defaults | overrides))  # fmt: skip


def gaps_figure(fit, reference: str | None = None, **overrides):
    """`Fit.plot_gaps`: the gaps map against `reference` with the fit's defaults (its interval and
    gap thresholds), any of `sae.maps.plot_gaps`' arguments overriding them."""
    if len(fit.design.groups) < 2:
        raise SaeInputError("this fit has one group, so there are no gaps between groups to map.")
    gaps = latest_rows(fit.gaps(reference), fit)
    d = map_defaults(fit)
    defaults = {"title": f"{fit.spec.title}: gaps against {gaps['reference'].iloc[0]}",
                "subtitle": f"{d['when']}{d['basis']}rate ratio and P(higher), from the same posterior draws",
                "interval": fit.spec.output.interval, "likely": fit.spec.flags.gap_possible}  # fmt: skip
    return maps.plot_gaps(gaps, checked_polygons(fit), fit.spec.data.area_id,
                          **(defaults | overrides))  # fmt: skip


def write_maps(fit, directory: Path) -> list[Path]:
    """All maps of `fit` into `directory` (created); returns the files written."""
    areas = checked_polygons(fit)
    directory.mkdir(parents=True, exist_ok=True)
    spec, area_id, defaults = fit.spec, fit.spec.data.area_id, map_defaults(fit)
    estimates = fit.estimates()
    gaps = fit.gaps() if len(fit.design.groups) > 1 else None
    written = []
    if fit.periods:
        written += time_maps(fit, estimates, gaps, directory, defaults["column"], defaults["basis"])
    written += maps.save_figure(estimates_figure(fit), directory / "estimates")
    written.append(write_geopackage(fit, directory / "estimates.gpkg"))
    if gaps is not None:
        written += maps.save_figure(gaps_figure(fit), directory / "gaps")
        panels, panel_gaps = period_panels(estimates, gaps)
        written.append(
            interactive_map(
                panels,
                areas,
                area_id,
                directory / "map.html",
                gaps=panel_gaps,
                column=defaults["column"],
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
