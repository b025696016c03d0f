"""Saving and restoring a fit, atomically, with provenance.

A saved fit is a directory:

    posterior.nc       ArviZ InferenceData (posterior, sample stats, observed data)
    estimates.csv      `Fit.estimates()`
    gaps.csv           `Fit.gaps()`: each group against the reference group (with groups only)
    gaps_vs_all_groups.csv   each group against its place's all-groups rate
    overall.csv        `Fit.overall()`: map-wide rate per group and ratio to the reference
    diagnostics.json   max_rhat, min_ess_bulk, min_ess_tail, divergences, per-hyperparameter figures
    spec.toml          the spec, with paths made absolute
    provenance.json    input file hashes, package versions, seed, machine, timings
    inputs/            the validated cells, the graph and the polygons, so `sae.load` needs nothing else
    maps/, report.html with maps=True / report=True (`sae.mapping`, `sae.report`)

Everything is written into a temporary directory beside the target and renamed into place, so a
reader never sees half a result; an existing non-empty directory is replaced only with `force`.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shutil
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

import arviz as az
import geopandas as gpd
import numpy as np
import pandas as pd

from sae.data import CellTable, Inputs
from sae.errors import SaeInputError
from sae.fit import ALL_GROUPS
from sae.graph import AreaGraph
from sae.spec import Spec, spec_from_dict

PACKAGES = (
    "sae",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "geopandas",
    "libpysal",
)


def check_writable(directory: Path, force: bool) -> None:
    """Refuse a non-empty `directory` unless `force`: sae never overwrites a result unasked."""
    if directory.exists() and any(directory.iterdir()) and not force:
        raise FileExistsError(
            f"{directory} exists and is not empty; sae will not overwrite a result. "
            "Choose another directory or pass force=True (--force)."
        )


def save_fit(
    fit, directory: Path, force: bool = False, maps: bool = False, report: bool = False
) -> Path:
    check_writable(directory, force)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        write_fit(fit, staging)
        if maps or report:
            from sae.mapping import write_maps
            from sae.report import write_report

            write_maps(fit, staging / "maps")
            if report:
                write_report(fit, staging)
        replace_directory(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def replace_directory(new: Path, target: Path) -> None:
    """Move `new` to `target`; an old `target` is set aside first and removed only afterwards."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old)


def write_fit(fit, directory: Path) -> None:
    fit.idata.to_netcdf(str(directory / "posterior.nc"))
    fit.estimates().to_csv(directory / "estimates.csv", index=False)
    if len(fit.design.groups) > 1:
        fit.gaps().to_csv(directory / "gaps.csv", index=False)
        fit.gaps(ALL_GROUPS).to_csv(directory / "gaps_vs_all_groups.csv", index=False)
        fit.overall().to_csv(directory / "overall.csv", index=False)
    write_json(directory / "diagnostics.json", fit.diagnostics)
    (directory / "spec.toml").write_text(spec_to_toml(fit.spec))
    write_json(directory / "provenance.json", provenance(fit))
    write_inputs(fit.inputs, directory / "inputs")


def write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, default=str) + "\n")


def write_inputs(inputs: Inputs, directory: Path) -> None:
    directory.mkdir()
    cells = inputs.cells
    cells.frame.to_csv(directory / "cells.csv", index=False)
    graph = inputs.graph
    write_json(
        directory / "inputs.json",
        {
            "strata": list(cells.strata),
            "covariates": list(cells.covariates),
            "numeric_covariates": [
                c for c in cells.covariates if pd.api.types.is_numeric_dtype(cells.frame[c])
            ],
            "exposure": cells.exposure,
            "groups": list(cells.groups),
            "source": cells.source,
            "area_ids": list(graph.ids),
            "edges": graph.edges.tolist(),
            "added_edges": [list(pair) for pair in graph.added_edges],
        },
    )
    if inputs.areas is not None:
        inputs.areas.to_file(directory / "areas.gpkg", driver="GPKG")


def spec_to_toml(spec: Spec) -> str:
    """The spec as TOML, paths absolute, None settings left out (they take their defaults)."""
    lines = [f"title = {json.dumps(spec.title)}"]
    for section in ("data", "graph", "model", "sampler", "flags", "output"):
        lines.append(f"\n[{section}]")
        for key, value in dataclasses.asdict(getattr(spec, section)).items():
            if value is not None:
                lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def provenance(fit) -> dict:
    spec = fit.spec
    files = [spec.source, spec.data.cells, spec.data.areas, spec.graph.edges]
    return {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seed": spec.sampler.seed,
        "sampler": dataclasses.asdict(spec.sampler),
        "input_files": {str(p): sha256(p) for p in files if p is not None and Path(p).is_file()},
        "packages": {name: package_version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "machine": machine(),
        "seconds": fit.seconds,
        "graph": fit.inputs.graph.summary(),
    }


def machine() -> str:
    """The CPU model, core count, memory and system, for provenance and result files."""
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in info.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = (
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        if hasattr(os, "sysconf")
        else float("nan")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.machine()}"
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def load(directory: str | Path):
    """Restore a fit saved with `Fit.save`; it needs nothing outside `directory`."""
    from sae.fit import Fit, design_for

    directory = Path(directory)
    if not (directory / "posterior.nc").is_file():
        raise SaeInputError(
            f"{directory}: no posterior.nc here; give a directory written by sae fit."
        )
    spec = spec_from_dict(tomllib.loads((directory / "spec.toml").read_text()))
    meta = json.loads((directory / "inputs" / "inputs.json").read_text())
    text = ["area", "group", *meta["strata"], "source_row", "variance_source"]
    text += [c for c in meta["covariates"] if c not in meta["numeric_covariates"]]
    frame = pd.read_csv(directory / "inputs" / "cells.csv", dtype={c: str for c in text})
    cells = CellTable(
        frame=frame,
        strata=tuple(meta["strata"]),
        covariates=tuple(meta["covariates"]),
        exposure=meta["exposure"],
        groups=tuple(meta["groups"]),
        source=meta["source"],
    )
    graph = AreaGraph(
        ids=tuple(meta["area_ids"]),
        edges=np.array(meta["edges"], dtype=np.int64).reshape(-1, 2),
        added_edges=tuple(tuple(pair) for pair in meta["added_edges"]),
    )
    areas_file = directory / "inputs" / "areas.gpkg"
    areas = gpd.read_file(areas_file) if areas_file.is_file() else None
    if areas is not None:
        areas[spec.data.area_id] = areas[spec.data.area_id].astype(str)
    inputs = Inputs(cells=cells, graph=graph, areas=areas)
    design = design_for(spec, inputs)
    idata = az.from_netcdf(str(directory / "posterior.nc"))
    diagnostics = json.loads((directory / "diagnostics.json").read_text())
    seconds = json.loads((directory / "provenance.json").read_text()).get("seconds", {})
    return Fit(spec, inputs, design, idata, diagnostics, seconds)
