"""Writing every map of a fit: `sae map DIR` and `sae fit --maps`.

Static maps (PNG at 300 dpi, SVG, PDF) of the estimates and, with groups, of the gaps; and the
self-contained interactive HTML map. Files go to ``DIR/maps/``.
"""

from __future__ import annotations

from pathlib import Path

from sae import maps
from sae.errors import SaeInputError
from sae.interactive import interactive_map
from sae.summary import model_words


def area_names(fit) -> dict:
    """Area id → display name ([data] area_name, from the polygons or the cells); {} without."""
    return {} if fit.inputs.names is None else fit.inputs.names.to_dict()


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
    written = []
    fig = maps.plot_estimates(estimates, areas, area_id, column=column, unit=spec.unit_label,
                              title=spec.title, subtitle=subtitle)  # fmt: skip
    written += maps.save_figure(fig, directory / "estimates")
    gaps = None
    if len(fit.design.groups) > 1:
        gaps = fit.gaps()
        reference = gaps["reference"].iloc[0]
        fig = maps.plot_gaps(gaps, areas, area_id, title=f"{spec.title}: gaps against {reference}",
                             subtitle=f"{basis}rate ratio and P(higher), from the same posterior draws",
                             interval=spec.output.interval, likely=spec.flags.gap_possible)  # fmt: skip
        written += maps.save_figure(fig, directory / "gaps")
        written.append(
            interactive_map(
                estimates,
                areas,
                area_id,
                directory / "map.html",
                gaps=gaps,
                column=column,
                title=spec.title,
                unit=spec.unit_label,
                names=area_names(fit),
            )  # fmt: skip
        )
    return written
