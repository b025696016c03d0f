"""Many fits at once, as Dask tasks: `sae batch` and `sae.fit_many`.

A batch is a list of spec files (or globs), each of which may carry a ``[batch]`` table that
varies settings: a dotted key sets that setting to each of its values,

    [batch]
    "model.group_effects" = ["iid", "bym2"]

and a plain key is a placeholder substituted into every text setting that names it,

    [batch]
    outcome = ["lung", "colorectal"]      # with cells = "cells_{outcome}.csv" in [data]

The combinations of all keys' values are the batch's fits, each written to its own folder
``OUT/<spec name>[__key-value...]`` exactly as `sae fit` writes one (atomically; `--force` only
ever replaces sae's own output; maps and report only for specs with polygons). A fit that fails (bad input, a sampler error) writes
``<folder>.error.txt`` beside its folder and does not stop the others. A fit whose folder holds
the same spec and the same input files (their SHA-256 in provenance.json) is skipped, so a
batch can be run again after a failure or an edit.

The fits run on Dask: by default an in-process `LocalCluster` with one fit per worker, each worker
holding `threads_per_fit` threads (numba, BLAS and the NUTS chains are capped to them,
`sae.threads`); or any running cluster given by its scheduler address (`--scheduler`, or the
environment variable DASK_SCHEDULER_ADDRESS). With `memory_per_fit` each task declares that many
megabytes as a Dask resource, so a worker never starts more fits than its memory holds.
"""

from __future__ import annotations

import glob
import html
import itertools
import logging
import os
import re
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sae.errors import SaeInputError

log = logging.getLogger("sae.batch")
SUMMARY_COLUMNS = ["fit", "status", "seconds", "peak_memory_mb", "method", "quality",
                   "reliable", "caution", "model-driven", "unreliable", "error"]  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One fit of a batch: its folder name and its spec as TOML would give it."""

    name: str
    raw: dict
    source: Path


def jobs_from(patterns: list[str | Path]) -> list[Job]:
    """Every fit the spec files (globs allowed) ask for, with their [batch] combinations."""
    paths = []
    for pattern in map(str, patterns):
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise SaeInputError(f"{pattern}: no spec file matches.")
        paths += [Path(p) for p in found]
    jobs = [job for path in paths for job in expand(path)]
    names = [job.name for job in jobs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SaeInputError(f"two fits of the batch would share the folder name(s) {twice}.")
    return jobs


def expand(path: Path) -> list[Job]:
    if not path.is_file():
        raise SaeInputError(f"{path}: no such spec file.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SaeInputError(f"{path}: not valid TOML ({err}).") from err
    varied = raw.pop("batch", {})
    bad = [k for k, v in varied.items() if not isinstance(v, list) or not v]
    if not isinstance(varied, dict) or bad:
        raise SaeInputError(
            f"{path}: [batch] gives each varied setting a list of values, e.g. "
            f'"model.group_effects" = ["iid", "bym2"] (not a list: {bad}).'
        )
    keys = list(varied)
    jobs = []
    for values in itertools.product(*(varied[k] for k in keys)):
        choice = dict(zip(keys, values, strict=True))
        suffix = "".join(f"__{k.split('.')[-1]}-{v}" for k, v in choice.items())
        jobs.append(Job(safe_name(path.stem + suffix), applied(raw, choice, path), path))
    return jobs


def applied(raw: dict, choice: dict, path: Path) -> dict:
    """The spec with one combination of the varied settings put in."""
    spec = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key, value in choice.items():
        if "." in key:
            section, setting = key.split(".", 1)
            spec.setdefault(section, {})[setting] = value
            continue
        marker = "{" + key + "}"
        used = False
        for section in spec.values():
            for setting, text in section.items() if isinstance(section, dict) else ():
                if isinstance(text, str) and marker in text:
                    section[setting], used = text.replace(marker, str(value)), True
        if not used:
            raise SaeInputError(
                f"{path}: [batch] {key} names no setting and no text setting contains {marker}."
            )
    return spec


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


# One fit, on a worker ------------------------------------------------------------------------


def run_job(job: Job, out: str, options: dict, threads: int | None = None) -> dict:
    """Fit one job and write its folder (or skip it, or record its failure); a summary row."""
    from sae import threads as thread_pool

    folder = Path(out) / job.name
    error_file = Path(out) / f"{job.name}.error.txt"
    start = time.perf_counter()
    row = {"fit": job.name, "status": "failed", "error": ""}
    threads = threads or worker_threads()
    with PeakMemory() as memory:
        try:
            spec = job_spec(job, options)
            if unchanged(folder, spec):
                row.update(status="skipped", **saved_summary(folder))
            else:
                with thread_pool.limited(threads):
                    row.update(fit_and_save(spec, folder, options))
            error_file.unlink(missing_ok=True)
        except Exception as err:  # noqa: BLE001 - a failed fit is recorded and the batch goes on
            error_file.write_text(f"{type(err).__name__}: {err}\n", encoding="utf-8")
            row["error"] = f"{type(err).__name__}: {err}".splitlines()[0]
    row.update(seconds=round(time.perf_counter() - start, 1), peak_memory_mb=memory.peak_mb)
    return row


def job_spec(job: Job, options: dict):
    from sae.spec_file import spec_from_dict

    spec = spec_from_dict(job.raw, base=job.source.resolve().parent, source=job.source)
    return spec.replace(sampler={"method": options["method"]}) if options.get("method") else spec


def fit_and_save(spec, folder: Path, options: dict) -> dict:
    import warnings

    import sae

    drawable = spec.data.areas is not None  # maps and report need polygons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sae.fit(spec, progress=False)
        fit.save(folder, force=True, maps=drawable and options.get("maps", False),
                 report=drawable and options.get("report", False))  # fmt: skip
    return {"status": "fitted", **fit_summary(fit.diagnostics.method,
                                               fit.diagnostics.summary_line(), fit.estimates())}  # fmt: skip


def fit_summary(method: str, quality: str, estimates: pd.DataFrame) -> dict:
    counts = estimates["flag"].value_counts()
    return {"method": method, "quality": quality,
            **{flag: int(counts.get(flag, 0)) for flag in SUMMARY_COLUMNS[6:10]}}  # fmt: skip


def unchanged(folder: Path, spec) -> bool:
    """True when `folder` holds a finished fit of this spec on the same input files."""
    import json

    from sae.provenance import sha256
    from sae.spec_file import spec_to_toml

    record, saved = folder / "provenance.json", folder / "spec.toml"
    if not (record.is_file() and saved.is_file()):
        return False
    if saved.read_text(encoding="utf-8") != spec_to_toml(spec, folder):
        return False
    inputs = json.loads(record.read_text(encoding="utf-8"))["inputs"]
    files = [v for v in inputs.values() if isinstance(v, dict) and "sha256" in v and "path" in v]
    return all(Path(f["path"]).is_file() and sha256(Path(f["path"])) == f["sha256"] for f in files)


def saved_summary(folder: Path) -> dict:
    import json

    from sae.diagnostics import Diagnostics

    record = json.loads((folder / "diagnostics.json").read_text(encoding="utf-8"))
    diagnostics = Diagnostics.from_dict(record)
    estimates = pd.read_csv(folder / "estimates.csv", usecols=["flag"])
    return fit_summary(diagnostics.method, diagnostics.summary_line(), estimates)


def worker_threads() -> int:
    """The threads of the Dask worker running this task (1 outside a worker)."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError):
        return 1


class PeakMemory:
    """The largest resident memory of this process while the block runs (sampled every 50 ms)."""

    def __enter__(self):
        import psutil

        self._process, self._peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.05):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> int:
        return round(self._peak / 2**20)


# The batch ------------------------------------------------------------------------------------


def fit_many(
    specs: list[str | Path], out: str | Path, scheduler: str | None = None,
    workers: int | None = None, threads_per_fit: int = 1, memory_per_fit: int | None = None,
    method: str | None = None, maps: bool = False, report: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Fit every spec of a batch as Dask tasks and write OUT/summary.csv and OUT/index.html.

    Parameters
    ----------
    specs : list of str or Path
        Spec files or globs; a spec's ``[batch]`` table varies its settings (module docstring).
    out : str or Path
        The batch folder: one folder per fit, ``<name>.error.txt`` for a failed one.
    scheduler : str, optional
        A running Dask scheduler's address; default DASK_SCHEDULER_ADDRESS, else a LocalCluster.
    workers, threads_per_fit : int
        LocalCluster only: how many fits run at once (default: cores // threads_per_fit), and
        the threads each may use.
    memory_per_fit : int, optional
        Megabytes each fit needs, declared to Dask as a resource.

    Returns
    -------
    DataFrame
        One row per fit: status (fitted, skipped, failed), seconds, peak memory, quality and
        flag counts, and the error of a failed fit.
    """
    from distributed import Client, LocalCluster, as_completed

    jobs = jobs_from(specs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"method": method, "maps": maps, "report": report}
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    cluster = None
    if address is None:
        workers = workers or max(1, (os.cpu_count() or 1) // threads_per_fit)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_fit,
                               processes=True, resources=local_resources(workers, memory_per_fit),
                               dashboard_address=None)  # fmt: skip
    client = Client(cluster or address)
    try:
        log.info(
            "batch of %d fits on %s", len(jobs), client.dashboard_link or client.scheduler.address
        )
        resources = {"fit": 1} if cluster is not None else {}
        if memory_per_fit:
            resources["memory"] = memory_per_fit
        threads = None if cluster is not None else threads_per_fit
        futures = [client.submit(run_job, job, str(out), options, threads, key=f"sae-{job.name}",
                                 pure=False, resources=resources or None)
                   for job in jobs]  # fmt: skip
        rows = []
        for done, future in enumerate(as_completed(futures), start=1):
            rows.append(future.result())
            log.info("[%d/%d] %s: %s in %.1f s", done, len(jobs), rows[-1]["fit"],
                     rows[-1]["status"], rows[-1]["seconds"])  # fmt: skip
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return write_summary(rows, [job.name for job in jobs], out)


def local_resources(workers: int, memory_per_fit: int | None) -> dict:
    """Each local worker runs one fit at a time, within its share of the machine's memory."""
    resources = {"fit": 1}
    if memory_per_fit:
        import psutil

        resources["memory"] = psutil.virtual_memory().total // 2**20 // workers
    return resources


def write_summary(rows: list[dict], order: list[str], out: Path) -> pd.DataFrame:
    from sae.staging import staged_file

    table = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    table = table.set_index("fit").loc[order].reset_index()
    counts = ["peak_memory_mb", *SUMMARY_COLUMNS[6:10]]
    table[counts] = table[counts].astype("Int64")
    with staged_file(out / "summary.csv") as temporary:
        table.to_csv(temporary, index=False)
    with staged_file(out / "index.html") as temporary:
        temporary.write_text(index_html(table, out), encoding="utf-8")
    return table


def index_html(table: pd.DataFrame, out: Path) -> str:
    """A page that links every fit's report (or folder) with its status and flag counts."""
    rows = []
    for r in table.to_dict("records"):
        name, failed = r["fit"], r["status"] == "failed"
        target = f"{name}/report.html" if (out / name / "report.html").is_file() else f"{name}/"
        link = (html.escape(name) if failed
                else f'<a href="{html.escape(target, quote=True)}">{html.escape(name)}</a>')  # fmt: skip
        detail = html.escape(str(r["error"] if failed else r["quality"]))
        flags = "" if failed else " / ".join(str(r[f]) for f in SUMMARY_COLUMNS[6:10])
        rows.append(f"<tr><td>{link}</td><td>{html.escape(r['status'])}</td><td>{r['seconds']}</td>"
                    f"<td>{flags}</td><td>{detail}</td></tr>")  # fmt: skip
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sae batch</title>"
            "</head><body><h1>sae batch</h1><table><thead><tr><th>fit</th><th>status</th>"
            "<th>seconds</th><th>reliable / caution / model-driven / unreliable</th>"
            "<th>quality or error</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></body></html>\n")  # fmt: skip
