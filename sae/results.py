"""Writing a fit's results folder: the core (`sae.store`), the tables, the maps and the report.

Everything is built in a staging folder and swapped in whole. If a derived output (a table, a
map, the report) fails, the core (posterior, inputs, diagnostics, provenance) is still published
and the error says how to finish; a finished posterior is never thrown away.

    estimates.csv            `Fit.estimates()`
    gaps.csv                 `Fit.gaps()`: each group against the reference group (with groups)
    gaps_vs_all_groups.csv   each group against its place's all-groups rate
    overall.csv              `Fit.overall()`: map-wide rate per group and ratio to the reference
    group_correlations.csv   `Fit.group_correlations()`, with group_effects = "mcar"
    estimates_published.csv  with [output] suppress = true: unreliable numbers blanked
                             (`sae.tables.published_estimates`)
    space–time fits ([data] time): estimates, gaps and overall gain a `period` column, and
    trends.csv               `Fit.trends()`: each cell's change from the first to the last period
    gap_trends.csv           `Fit.gap_trends()`: each gap's change, P(narrowing) (with groups)
    inequality.csv           `Fit.inequality()`: RD, RR, excess, PAR per place × period
    cumulative_excess.csv    `Fit.cumulative_excess()`, theil.csv `Fit.theil()` (with groups)
    pooled.csv               `Fit.pooled()`, with [output] pool
    estimates_table.csv, gaps_table.csv
                             the same for people (`sae.publication`): words for headers, place
                             names, publication rounding, UTF-8 with a BOM for Excel
    maps/, report.html       with maps=True / report=True (`sae.fit_maps`, `sae.report`)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sae.errors import SaeInputError, SaeOutputError
from sae.gaps import ALL_GROUPS
from sae.publication import estimates_for_people, gaps_for_people, write_for_excel
from sae.spec import Spec
from sae.staging import DERIVED_NAMES, check_output_folder, staged_directory, staged_file
from sae.store import write_core
from sae.tables import published_estimates


def protected_paths(spec: Spec) -> list[Path]:
    """The spec and the files it reads: no results folder may hold them."""
    paths = [spec.source, spec.data.cells, spec.data.areas, spec.graph.edges,
             spec.output.standard_population]  # fmt: skip
    return [Path(p) for p in paths if p is not None]


def check_results_target(spec: Spec, directory: Path, force: bool, maps: bool) -> None:
    """Everything about the output that can be known before sampling."""
    check_output_folder(directory, force, protected_paths(spec))
    if maps and spec.data.areas is None:
        raise SaeInputError(
            f"{spec.source or '<spec>'}: maps need polygons, and this spec has none ([data] areas). "
            "Add a polygons file, or leave out --maps and --report."
        )


def save_results(
    fit, directory: Path, force: bool = False, maps: bool = False, report: bool = False
) -> Path:
    """Write the fit's core, tables and (optionally) maps and report to `directory`."""
    directory = Path(directory)
    check_output_folder(directory, force, protected_paths(fit.spec))
    if (maps or report) and fit.inputs.areas is None:
        raise SaeInputError("this fit has no polygons, so it has no maps and no report maps.")
    failure = None
    with staged_directory(directory) as staging:
        write_core_or_keep(fit, staging, directory)
        try:
            write_derived(fit, staging, maps or report, report)
        except Exception as err:  # noqa: BLE001 - the posterior is published whatever failed
            failure = err
            for name in DERIVED_NAMES:
                remove(staging / name)
    if failure is not None:
        raise SaeOutputError(
            f"{directory}: the fit is saved (posterior.nc, inputs, diagnostics), but writing its "
            f"tables, maps or report failed: {type(failure).__name__}: {failure}. Once that is "
            f"fixed, finish with `sae report {directory}` (it writes the missing tables, maps "
            f"and report; `sae map {directory}` redraws the maps alone)."
        ) from failure
    return directory


def write_core_or_keep(fit, staging: Path, directory: Path) -> None:
    """Write the core; if that fails once the posterior is on disk, keep it beside `directory`."""
    try:
        write_core(fit, staging)
    except OSError as err:
        if not (staging / "posterior.nc").is_file():
            raise SaeOutputError(f"cannot write {directory}: {err}") from err
        kept = directory.with_name(f"{directory.name}.incomplete")
        shutil.rmtree(kept, ignore_errors=True)
        staging.rename(kept)
        raise SaeOutputError(
            f"cannot finish writing {directory} ({err}). The posterior is kept in {kept}/ "
            "(posterior.nc); free some space and fit again, or load the draws with ArviZ."
        ) from err


def write_derived(fit, directory: Path, maps: bool, report: bool) -> None:
    from sae.fit_maps import write_maps
    from sae.report import write_report

    write_tables(fit, directory)
    if maps:
        write_maps(fit, directory / "maps")
    if report:
        write_report(fit, directory)


def write_tables(fit, directory: Path) -> None:
    """estimates.csv (and estimates_published.csv when asked) and, with groups, gaps.csv,
    gaps_vs_all_groups.csv and overall.csv."""
    tables = {"estimates.csv": fit.estimates}
    if fit.spec.output.suppress:
        tables["estimates_published.csv"] = lambda: published_estimates(fit.estimates())
    if len(fit.design.groups) > 1:
        tables |= {"gaps.csv": fit.gaps, "gaps_vs_all_groups.csv": lambda: fit.gaps(ALL_GROUPS),
                   "overall.csv": fit.overall}  # fmt: skip
    if fit.spec.model.group_effects == "mcar":
        tables["group_correlations.csv"] = fit.group_correlations
    if fit.periods:
        tables |= time_tables(fit)
    for name, table in tables.items():
        with staged_file(directory / name) as temporary:
            table().to_csv(temporary, index=False)
    write_for_excel(estimates_for_people(fit), directory / "estimates_table.csv")
    if len(fit.design.groups) > 1:
        write_for_excel(gaps_for_people(fit), directory / "gaps_table.csv")


def time_tables(fit) -> dict:
    """The tables of a space–time fit (see the module's docstring)."""
    tables = {"trends.csv": fit.trends}
    if len(fit.design.groups) > 1:
        tables |= {"gap_trends.csv": fit.gap_trends, "inequality.csv": fit.inequality,
                   "cumulative_excess.csv": fit.cumulative_excess, "theil.csv": fit.theil}  # fmt: skip
    if fit.spec.output.pool:
        tables["pooled.csv"] = fit.pooled
    return tables


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
