"""What the benchmark scripts share: loading another benchmark's run.py, markdown tables, RMSE.

A script that needs them puts this folder (benchmarks/common) on sys.path first: benchmarks are
scripts, not a package, and benchmarks/ itself must not be on the path (its folder `coverage`
would shadow the coverage package that numba imports).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parents[1]  # benchmarks/


def benchmark(folder: str):
    """benchmarks/<folder>/run.py as a module of its own name (every benchmark has a run.py)."""
    path = HERE / folder / "run.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{folder}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |\n|" + "---|" * len(frame.columns)
    rows = ("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False))
    return header + "\n" + "\n".join(rows)


def rmse(errors: pd.Series) -> float:
    return float(np.sqrt(np.mean(errors**2)))


def simulation_main(run, write_report, replications: int) -> None:
    """The command line of a simulation benchmark: `--replications N` runs and reports,
    `--report` only rebuilds RESULTS.md from the saved results."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--replications", type=int, default=replications)
    parser.add_argument("--report", action="store_true", help="only rebuild RESULTS.md")
    args = parser.parse_args()
    if not args.report:
        run(args.replications)
    write_report()
