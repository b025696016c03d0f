"""Writing outputs so that nothing a user made is lost and no reader sees half a result.

- `check_output_folder` decides, before any work, whether sae may write to a folder: never over a
  file, never into the working folder or one holding the spec or its inputs, and with `force` only
  over a folder that sae itself wrote (recognised by its provenance file and its file names).
- `staged_directory` builds a folder beside its target and swaps it in only when complete; folders
  left behind by a killed run are cleaned up by the next one.
- `staged_file` does the same for a single file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from sae.errors import SaeOutputError, listing

PROVENANCE = "provenance.json"
WRITTEN_BY = "sae"
STAGING_TAG = ".sae-staging-"
# what `sae.results` writes beside the core; everything but the core is rewritten by `sae report`
DERIVED_NAMES = ("estimates.csv", "estimates_published.csv", "estimates_table.csv", "gaps.csv",
                 "gaps_table.csv", "gaps_vs_all_groups.csv", "overall.csv",
                 "group_correlations.csv", "trends.csv", "gap_trends.csv", "inequality.csv",
                 "cumulative_excess.csv", "theil.csv", "pooled.csv", "maps", "report.html",
                 "profiles")  # fmt: skip
OUTPUT_NAMES = frozenset({
    "posterior.nc", "diagnostics.json", "spec.toml", PROVENANCE, "inputs", *DERIVED_NAMES
})  # fmt: skip


def check_output_folder(target: Path, force: bool, protected: Iterable[Path] = ()) -> None:
    """Raise `SaeOutputError` unless sae may write its results to `target` (with `force`, replace).

    `protected` are the spec and input files: a folder holding any of them is never written.
    """
    target = Path(target)
    resolved = target.resolve()
    if target.exists() and not target.is_dir():
        raise SaeOutputError(f"{target} is a file, not a folder. Name a folder for the results.")
    held = [
        p
        for p in protected
        if resolved == Path(p).resolve() or resolved in Path(p).resolve().parents
    ]
    if held:
        raise SaeOutputError(
            f"{target} holds the spec or its inputs ({listing([str(p) for p in held])}); sae never "
            "writes results there. Name another folder, e.g. out/NAME."
        )
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise SaeOutputError(
            f"{target} is the folder you are working in (or holds it); sae will not replace it. "
            "Name a new folder for the results, e.g. --out out/NAME."
        )
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise SaeOutputError(
                f"{target} exists and is not empty; sae will not overwrite a result. "
                "Choose another directory or pass force=True (--force)."
            )
        check_sae_output(target)
    check_writable(target)


def check_sae_output(target: Path) -> None:
    """`force` replaces only a folder sae wrote: its provenance says so and it holds nothing else."""
    provenance = target / PROVENANCE
    try:
        written_by = json.loads(provenance.read_text()).get("written_by")
    except (OSError, ValueError, AttributeError):
        written_by = None
    if written_by != WRITTEN_BY:
        raise SaeOutputError(
            f"{target} is not a folder of sae results (no {PROVENANCE} written by sae), so --force "
            "will not replace it. Name a new folder for the results."
        )
    foreign = sorted(p.name for p in target.iterdir() if p.name not in OUTPUT_NAMES)
    if foreign:
        raise SaeOutputError(
            f"{target} holds files sae did not write ({listing(foreign)}); --force would delete "
            "them. Move them out, or name a new folder for the results."
        )


def check_writable(target: Path) -> None:
    """Create the parent folder and prove that sae can write beside `target`."""
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise SaeOutputError(
            f"cannot write results to {target} ({err.strerror or err}). Check that the folder "
            f"{parent} exists, is writable and has free space, or name another folder."
        ) from err


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside `target`; on success it replaces `target` (whose old
    content is set aside first and removed only afterwards); on failure it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}{STAGING_TAG}{os.getpid()}-", dir=target.parent)
    )
    try:
        yield staging
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_TAG}{os.getpid()}-old-",
                                        dir=target.parent)) / target.name  # fmt: skip
            target.rename(old)
        try:
            staging.rename(target)
        except OSError:
            if old is not None:
                old.rename(target)
            raise
        if old is not None:
            shutil.rmtree(old.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_abandoned(target: Path) -> None:
    """Remove staging folders of `target` left by runs that were killed (their process is gone)."""
    for leftover in target.parent.glob(f".{target.name}{STAGING_TAG}*"):
        pid = leftover.name.removeprefix(f".{target.name}{STAGING_TAG}").split("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one step."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.chmod(0o666 & ~current_umask())  # mkstemp makes it private; publish as usual
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
