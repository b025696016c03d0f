"""A fit's files: writing its core (what `sae.load` restores it from) and reading it back.

The core of a saved fit, self-contained and movable:

    posterior.nc       ArviZ InferenceData: posterior, sample stats, observed and constant data,
                       log likelihood, posterior predictive (`sae.inference_data`)
    spec.toml          the spec, paths relative to the folder (nothing is read through them)
    inputs/            the validated cells, the graph, the polygons, area names, the reference
                       group and the age weights: everything `sae.load` needs
    diagnostics.json   convergence figures
    provenance.json    the inputs actually used (hashed), packages, seed, machine, timings

Storage knows nothing of how results are presented: tables, maps and the report are written by
`sae.results`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import arviz as az
import geopandas as gpd
import numpy as np
import pandas as pd

from sae.cells import CellTable
from sae.design import Term
from sae.diagnostics import Diagnostics
from sae.errors import SaeInputError
from sae.graph import AreaGraph
from sae.inputs import Inputs
from sae.provenance import provenance
from sae.spec_file import spec_from_dict, spec_to_toml


def write_core(fit, directory: Path) -> None:
    """The posterior first, then what restores the fit from it."""
    fit.inference_data().to_netcdf(str(directory / "posterior.nc"))
    (directory / "spec.toml").write_text(spec_to_toml(fit.spec, directory), encoding="utf-8")
    write_inputs(fit.inputs, directory / "inputs")
    write_json(directory / "inputs" / "coding.json",
               {"terms": [dataclasses.asdict(term) for term in fit.design.coding]})  # fmt: skip
    write_json(directory / "diagnostics.json", fit.diagnostics.to_dict())
    write_json(directory / "provenance.json", provenance(fit))


def write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, default=str) + "\n", encoding="utf-8")


def write_inputs(inputs: Inputs, directory: Path) -> None:
    directory.mkdir()
    cells = inputs.cells
    cells.frame.to_csv(directory / "cells.csv", index=False)
    graph = inputs.graph
    weights = inputs.age_weights
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
            "periods": list(cells.periods),
            "source": cells.source,
            "area_ids": list(graph.ids),
            "edges": graph.edges.tolist(),
            "added_edges": [list(pair) for pair in graph.added_edges],
            "reference_group": inputs.reference_group,
            "names": None if inputs.names is None else inputs.names.to_dict(),
            "age_weights": None if weights is None else weights.to_dict(),
            "sources": inputs.sources,
        },
    )
    if inputs.areas is not None:
        inputs.areas.to_file(directory / "areas.gpkg", driver="GPKG")


def read_core(directory: Path):
    """Spec, inputs, design coding, draws, diagnostics and timings of a saved fit; nothing outside
    `directory` is read."""
    directory = Path(directory)
    if not (directory / "posterior.nc").is_file():
        raise SaeInputError(
            f"{directory}: no posterior.nc here; give a directory written by sae fit."
        )
    spec = spec_from_dict(tomllib.loads((directory / "spec.toml").read_text(encoding="utf-8")))
    inputs = read_inputs(directory / "inputs", spec.data.area_id)
    coding = json.loads((directory / "inputs" / "coding.json").read_text())["terms"]
    idata = az.from_netcdf(str(directory / "posterior.nc"))
    diagnostics = Diagnostics.from_dict(json.loads((directory / "diagnostics.json").read_text()))
    seconds = json.loads((directory / "provenance.json").read_text()).get("seconds", {})
    return spec, inputs, tuple(Term(**term) for term in coding), idata, diagnostics, seconds


def read_inputs(directory: Path, area_id: str) -> Inputs:
    meta = json.loads((directory / "inputs.json").read_text(encoding="utf-8"))
    periods = tuple(meta.get("periods", ()))
    text = ["area", "group", *meta["strata"], "source_row", "variance_source"]
    text += ["period"] if periods and isinstance(periods[0], str) else []
    text += [c for c in meta["covariates"] if c not in meta["numeric_covariates"]]
    frame = pd.read_csv(
        directory / "cells.csv", dtype={c: str for c in text}, keep_default_na=False,
        na_values={c: [""] for c in ("estimate", "variance", "sample_size")},
    )  # fmt: skip
    cells = CellTable(
        frame=frame,
        strata=tuple(meta["strata"]),
        covariates=tuple(meta["covariates"]),
        exposure=meta["exposure"],
        groups=tuple(meta["groups"]),
        source=meta["source"],
        periods=periods,
    )
    graph = AreaGraph(
        ids=tuple(meta["area_ids"]),
        edges=np.array(meta["edges"], dtype=np.int64).reshape(-1, 2),
        added_edges=tuple(tuple(pair) for pair in meta["added_edges"]),
    )
    areas_file = directory / "areas.gpkg"
    areas = gpd.read_file(areas_file) if areas_file.is_file() else None
    if areas is not None:
        areas[area_id] = areas[area_id].astype(str)
    return Inputs(
        cells=cells,
        graph=graph,
        areas=areas,
        reference_group=meta["reference_group"],
        names=None if meta["names"] is None else pd.Series(meta["names"], dtype=str),
        age_weights=None if meta["age_weights"] is None else pd.Series(meta["age_weights"]),
        sources=meta["sources"],
    )
