"""What was fitted, with what, where: the record saved as provenance.json beside every result."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "sae", "pymc", "pytensor", "nutpie", "arviz", "numpy", "scipy", "pandas", "xarray",
    "geopandas", "libpysal", "qdldl",
)  # fmt: skip


def provenance(fit) -> dict:
    """The spec file's hash, the inputs actually used (files or DataFrames, hashed), the sampler
    settings and seed, package versions, the machine and the timings."""
    spec = fit.spec
    spec_file = {}
    if spec.source is not None and Path(spec.source).is_file():
        spec_file = {"path": str(spec.source), "sha256": sha256(Path(spec.source))}
    return {
        "written_by": "sae",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seed": spec.sampler.seed,
        "method": fit.diagnostics.method,
        "sampler": dataclasses.asdict(spec.sampler),
        "spec_file": spec_file,
        "inputs": fit.inputs.sources,
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
