"""How the Laplace method's cost grows with the map: synthetic tract-sized problems.

Areas are the Delaunay triangulation of uniform random points (a planar graph: about 3 edges,
6 neighbours, per area, as queen-contiguous census tracts), each with 6 groups; populations are log-normal, counts
Poisson around a smooth field with group effects (seed 11). For each size, in its own process:
the wall time of `sae.fit` (Laplace, warm), of the tables on top, the split of `fit.seconds` and
peak memory. Fewer draws than the default keep the draws' arrays (areas × groups × draws) in memory
at 85,000 areas.

    .venv/bin/python benchmarks/speed/tracts.py                 # 3k, 20k, 85k; writes TRACTS.md
    .venv/bin/python benchmarks/speed/tracts.py --areas 20000   # one size, JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import Delaunay

import sae

HERE = Path(__file__).resolve().parent
SIZES = (3_000, 20_000, 85_000)
GROUPS = {"a": 0.0, "b": 0.2, "c": -0.3, "d": 0.4, "e": -0.1, "f": 0.1}
DRAWS = 250  # × 2 "chains": 500 independent draws


def problem(areas: int) -> tuple[sae.Spec, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    points = rng.uniform(size=(areas, 2))
    triangles = Delaunay(points).simplices
    pairs = np.unique(np.sort(np.vstack([triangles[:, [0, 1]], triangles[:, [1, 2]],
                                         triangles[:, [0, 2]]]), axis=1), axis=0)  # fmt: skip
    ids = [f"t{i:06d}" for i in range(areas)]
    edges = pd.DataFrame({"i": np.array(ids)[pairs[:, 0]], "j": np.array(ids)[pairs[:, 1]]})
    field = 0.3 * np.sin(6 * points[:, 0]) * np.cos(5 * points[:, 1])
    rows = []
    for group, effect in GROUPS.items():
        population = np.round(np.exp(rng.normal(6.5, 1.0, areas)))
        rate = 2e-3 * np.exp(effect + field + rng.normal(0, 0.1, areas))
        rows.append(pd.DataFrame({"tract": ids, "group": group, "population": population,
                                  "cases": rng.poisson(rate * population)}))  # fmt: skip
    return edges, pd.concat(rows, ignore_index=True), ids


def run(areas: int) -> dict:
    import tempfile

    edges, cells, _ = problem(areas)
    with tempfile.TemporaryDirectory() as folder:
        edges.to_csv(Path(folder) / "edges.csv", index=False)
        spec = sae.spec_from_dict({
            "data": {"area_id": "tract", "group": "group", "count": "cases",
                     "population": "population"},
            "graph": {"edges": str(Path(folder) / "edges.csv")},
            "sampler": {"method": "laplace", "chains": 2, "draws": DRAWS, "seed": 1},
        })  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            fit = sae.fit(spec, cells=cells, progress=False)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            fit.estimates()
            fit.gaps()
            table_seconds = time.perf_counter() - start
    return {
        "areas": areas, "edges": len(edges), "cells": len(cells), "draws": 2 * DRAWS,
        "fit_s": round(fit_seconds, 1), "tables_s": round(table_seconds, 1),
        **{f"{k}_s": round(v, 1) for k, v in fit.seconds.items() if k != "evaluations"},
        "evaluations": fit.seconds.get("evaluations"),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "quality": fit.diagnostics.summary_line(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--areas", type=int)
    args = parser.parse_args()
    if args.areas:
        print(json.dumps(run(args.areas)))
        return
    results = []
    for areas in SIZES:
        out = subprocess.run([sys.executable, __file__, "--areas", str(areas)],
                             capture_output=True, text=True)  # fmt: skip
        lines = out.stdout.strip().splitlines()
        results.append(json.loads(lines[-1]) if out.returncode == 0 and lines else
                       {"areas": areas, "failed": out.stderr.strip().splitlines()[-1:]})  # fmt: skip
        print(results[-1], flush=True)
    columns = ["areas", "edges", "cells", "draws", "fit_s", "tables_s", "prepare_s", "mode_s",
               "integration_s", "draws_s", "evaluations", "peak_memory_mb", "quality"]  # fmt: skip
    lines = ["# Laplace on tract-sized synthetic maps (6 groups)", "",
             "Produced by `benchmarks/speed/tracts.py`.", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]  # fmt: skip
    lines += ["| " + " | ".join(str(r.get(c, r.get("failed", ""))) for c in columns) + " |"
              for r in results]  # fmt: skip
    (HERE / "TRACTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
