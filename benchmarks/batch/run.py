"""A realistic batch: the Pennsylvania race × county × sex × age model for 6 simulated years,
run one fit at a time and on a LocalCluster of 2 workers, with each inference method.

    .venv/bin/python benchmarks/batch/run.py

The six years' counts are drawn from the known truth of benchmarks/strata_by_group (seeds 0-5)
on the real populations and written, with a spec whose [batch] table varies the year, into a
temporary folder. Each configuration runs `sae.fit_many` into a fresh output folder:
- *one at a time*: 1 worker with 2 threads (each fit may use both cores: NUTS runs its chains in
  parallel, numba and BLAS use 2 threads);
- *2 workers*: a LocalCluster of 2 workers × 1 thread (two fits at once, one core each).
NUTS runs 2 chains × 500 draws (500 tuning steps). Writes RESULTS.md and results.json here.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "common"))
from helpers import benchmark, markdown  # noqa: E402

import sae  # noqa: E402
from sae.provenance import machine  # noqa: E402

YEARS = 6
SPEC = """title = "Simulated lung cancer by race, Pennsylvania counties, year {{year}}"
[data]
cells = "cells_{{year}}.csv"
areas = "{areas}"
area_id = "fips"
group = "race"
strata = ["sex", "age"]
count = "cases"
population = "population"
[sampler]
method = "{method}"
chains = 2
draws = 500
tune = 500
[output]
age_stratum = "age"
reference_group = "white"
[batch]
year = {years}
"""


def write_years(folder: Path) -> None:
    study, coverage = benchmark("strata_by_group"), benchmark("coverage")
    cells = pd.read_csv(
        ROOT / "benchmarks" / "pennsylvania_lung" / "cells.csv", dtype={"fips": str}
    )
    areas = gpd.read_file(ROOT / "shapefiles" / "pennsylvania_counties.gpkg")
    spec = sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml")
    graph = coverage.load_inputs(spec, cells=cells, areas=areas).graph
    for year in range(YEARS):
        simulated = study.simulate(cells, graph, areas, "shared age effects", year, coverage)
        simulated.drop(columns="theta").to_csv(folder / f"cells_{2016 + year}.csv", index=False)


def run(folder: Path, method: str, workers: int, threads: int) -> dict:
    spec = folder / f"pennsylvania_{method}.toml"
    spec.write_text(SPEC.format(areas=ROOT / "shapefiles" / "pennsylvania_counties.gpkg",
                                method=method, years=list(range(2016, 2016 + YEARS))))  # fmt: skip
    out = folder / f"out_{method}_{workers}x{threads}"
    start = time.perf_counter()
    table = sae.fit_many([spec], out, workers=workers, threads_per_fit=threads)
    wall = time.perf_counter() - start
    assert (table["status"] == "fitted").all(), table
    return {"method": method, "configuration": f"{workers} worker(s) × {threads} thread(s)",
            "fits": len(table), "wall_s": round(wall, 1),
            "sum_of_fit_s": round(float(table["seconds"].sum()), 1),
            "peak_memory_per_fit_mb": int(table["peak_memory_mb"].max()),
            "main_process_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_years(folder)
        for method in ("laplace", "nuts"):
            for workers, threads in ((1, 2), (2, 1)):
                results.append(run(folder, method, workers, threads))
                print(results[-1], flush=True)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(results)


READING = """
## Reading

Both methods gain 1.32× from two workers on this 2-core machine, not 2×. One fit at a time
already keeps both cores busy for part of its work: NUTS samples its two chains in parallel, and
the Laplace engine's numba and BLAS code uses two threads. With two workers of one thread each,
every fit takes longer (NUTS: 17.9 s a fit against 12.5 s, its chains now one after the other),
but the parts of a fit that use one core anyway (reading and checking inputs, building and
compiling the model, the tables and files) overlap with the other fit's. The cluster's start and
stop cost about 3 s of each wall time (Laplace: 12.7 s of wall time for 8.9 s of fits). Each
worker's memory peaked at 0.7 GB (Laplace) to 0.9 GB (NUTS) for this model. On a machine with
more cores, or on a cluster, the fits are independent, so the speed-up should grow with the
workers (not measured here: this machine has 2 cores).
"""


def write_report(results: list[dict]) -> None:
    frame = pd.DataFrame(results)
    base = frame.groupby("method")["wall_s"].transform("first")
    frame["speed-up"] = (base / frame["wall_s"]).round(2)
    (HERE / "RESULTS.md").write_text(
        "# A batch of 6 Pennsylvania fits: one at a time and on 2 workers\n\n"
        f"Machine: {machine()}. Produced by `benchmarks/batch/run.py` (see its docstring).\n"
        "`wall_s`: the whole `sae.fit_many` call, cluster start and stop included; "
        "`sum_of_fit_s`: the fits' own times added up; `peak_memory_per_fit_mb`: the largest "
        "resident memory of a worker process while it ran a fit.\n\n"
        + markdown(frame)
        + "\n"
        + READING,
        encoding="utf-8",
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:  # rebuild RESULTS.md from results.json
        write_report(json.loads((HERE / "results.json").read_text()))
    else:
        main()
