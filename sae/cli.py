"""The `sae` command line.

sae fit SPEC --out DIR [--maps] [--report] [--force]   fit a spec, write results (and maps, report)
sae map DIR [--force]                                  draw the maps of a saved fit into DIR/maps
sae report DIR [--force]                               write DIR/report.html (and missing tables, maps)
sae report DIR --place ID|all                          a printable one-page profile per place
sae validate [--quick] [--out FILE]                    reproduce published results
sae batch SPEC... --out DIR [--scheduler ADDR]         many fits at once on Dask (sae.batch)

Errors sae raises on purpose (`SaeError`) are printed as one message, exit status 2; anything else
is a bug in sae and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from pathlib import Path

from sae.diagnostics import ConvergenceWarning
from sae.errors import SaeError, SaeOutputError


def parser() -> argparse.ArgumentParser:
    from sae import __version__

    main_parser = argparse.ArgumentParser(prog="sae", description="Bayesian small-area estimation.")
    main_parser.add_argument("--version", action="version", version=f"sae {__version__}")
    commands = main_parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a model spec and write its results")
    fit.add_argument(
        "spec", type=Path, help="model spec (TOML), e.g. models/pennsylvania_lung_race.toml"
    )
    fit.add_argument("--out", type=Path, required=True, help="directory for the results")
    fit.add_argument("--force", action="store_true", help="replace an earlier sae result in --out")
    fit.add_argument("--maps", action="store_true", help="also draw the maps into OUT/maps")
    fit.add_argument(
        "--report", action="store_true", help="also write OUT/report.html (and the maps)"
    )
    for name in ("chains", "draws", "tune", "seed"):
        fit.add_argument(f"--{name}", type=int, help=f"override [sampler] {name}")
    fit.add_argument("--method", choices=("nuts", "laplace"), help="override [sampler] method")
    fit.add_argument("--quiet", action="store_true", help="no progress display")
    batch = commands.add_parser("batch", help="fit many specs at once on Dask")
    batch.add_argument("specs", nargs="+", help="spec files or globs; [batch] tables vary settings")
    batch.add_argument("--out", type=Path, required=True, help="directory for the fits' folders")
    batch.add_argument("--scheduler", help="a running Dask scheduler (default: a LocalCluster)")
    batch.add_argument("--workers", type=int, help="LocalCluster: fits at once (default: cores)")
    batch.add_argument("--threads-per-fit", type=int, default=1, help="threads each fit may use")
    batch.add_argument("--memory-per-fit", type=int, help="megabytes each fit needs (a resource)")
    batch.add_argument("--method", choices=("nuts", "laplace"), help="override [sampler] method")
    batch.add_argument("--maps", action="store_true", help="also draw each fit's maps")
    batch.add_argument("--report", action="store_true", help="also write each fit's report")
    validate = commands.add_parser("validate", help="reproduce the published benchmark results")
    validate.add_argument(
        "--quick", action="store_true", help="skip the slow NYC fit (a few minutes)"
    )
    validate.add_argument(
        "--out", type=Path, help="also write the results table (Markdown) to this file"
    )
    validate.add_argument(
        "--method", choices=("nuts", "laplace"), default="nuts", help="inference method of the fits"
    )
    validate.add_argument(
        "--source-tree", type=Path,
        help="a sae source tree with models/ and benchmarks/ (default: the one holding the package)",
    )  # fmt: skip
    for name, text in (
        ("map", "draw the maps of a saved fit"),
        ("report", "write a saved fit's report (and any missing tables and maps)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("directory", type=Path, help="a directory written by sae fit")
        sub.add_argument("--force", action="store_true", help="replace existing maps / report")
        if name == "report":
            sub.add_argument(
                "--place", metavar="ID",
                help="write a printable one-page profile of this place (an area id, or 'all') "
                "to DIR/profiles/ instead of the report",
            )  # fmt: skip
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="sae: %(message)s")
    commands = {"fit": run_fit, "map": run_map, "report": run_report, "validate": run_validate,
                "batch": run_batch}  # fmt: skip
    previous = signal.signal(signal.SIGTERM, stop_on_terminate)
    try:
        return commands[args.command](args)
    except SaeError as err:
        print(f"sae: error: {err}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_on_terminate(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C, so staging folders are cleaned up on the way out."""
    raise SystemExit(128 + signum)


def use_file_backend() -> None:
    """The command line draws into files only (a library import never changes the backend)."""
    import matplotlib

    matplotlib.use("Agg")


def run_batch(args: argparse.Namespace) -> int:
    """Fit every spec of the batch; exit status 1 when a fit failed (the others are written)."""
    import distributed  # noqa: F401 - configures its loggers on import; quieten them after

    from sae.batch import fit_many

    use_file_backend()
    logging.getLogger("sae.batch").setLevel(logging.INFO)
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR)  # the cluster's own start and stop
    table = fit_many(args.specs, args.out, scheduler=args.scheduler, workers=args.workers,
                     threads_per_fit=args.threads_per_fit, memory_per_fit=args.memory_per_fit,
                     method=args.method, maps=args.maps, report=args.report)  # fmt: skip
    shown = table[["fit", "status", "seconds", "peak_memory_mb", "reliable", "unreliable", "error"]]
    print(shown.fillna("").to_string(index=False))
    print(f"summary written to {args.out / 'summary.csv'} and {args.out / 'index.html'}")
    return 1 if (table["status"] == "failed").any() else 0


def run_fit(args: argparse.Namespace) -> int:
    import sae
    from sae.fit import fit_inputs
    from sae.inputs import load_inputs
    from sae.results import check_results_target

    use_file_backend()
    spec = sae.load_spec(args.spec)
    overrides = {
        k: getattr(args, k)
        for k in ("chains", "draws", "tune", "seed", "method")
        if getattr(args, k) is not None
    }
    if overrides:
        spec = spec.replace(sampler=overrides)
    maps = args.maps or args.report
    check_results_target(spec, args.out, args.force, maps)
    inputs = load_inputs(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if not args.quiet:
            logging.getLogger("sae.laplace").setLevel(logging.INFO)  # the Laplace engine's steps
        fit = fit_inputs(spec, inputs, progress=not args.quiet)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            print(f"sae: warning: {warning.message}", file=sys.stderr)
    fit.save(args.out, force=args.force, maps=maps, report=args.report)
    print(fit.summary())
    print(
        f"results written to {args.out}/: " + ", ".join(sorted(p.name for p in args.out.iterdir()))
    )
    return 0


def run_map(args: argparse.Namespace) -> int:
    import sae
    from sae.fit_maps import write_maps
    from sae.staging import staged_directory

    use_file_backend()
    target = args.directory / "maps"
    if target.exists() and any(target.iterdir()) and not args.force:
        raise SaeOutputError(f"{target} exists; use --force to draw the maps again.")
    fit = sae.load(args.directory)
    with staged_directory(target) as staging:
        written = write_maps(fit, staging)
    print(f"maps written to {target}/: " + ", ".join(p.name for p in written))
    return 0


def run_report(args: argparse.Namespace) -> int:
    import sae
    from sae.report import write_report
    from sae.results import write_tables

    use_file_backend()
    if args.place is not None:
        return run_profiles(args)
    if (args.directory / "report.html").exists() and not args.force:
        raise SaeOutputError(f"{args.directory}/report.html exists; use --force to write it again.")
    fit = sae.load(args.directory)
    if not (args.directory / "estimates.csv").is_file():
        write_tables(fit, args.directory)
    print(f"report written to {write_report(fit, args.directory)}")
    return 0


def run_profiles(args: argparse.Namespace) -> int:
    import sae
    from sae.profiles import write_profiles

    folder = args.directory / "profiles"
    if args.place == "all" and folder.is_dir() and any(folder.iterdir()) and not args.force:
        raise SaeOutputError(f"{folder} exists; use --force to write the profiles again.")
    fit = sae.load(args.directory)
    written = write_profiles(fit, args.directory, args.place)
    print(f"{len(written)} profile page(s) written to {folder}/")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Print the table, write it as Markdown when asked, and fail (exit 1) if any check fails."""
    from sae.staging import staged_file
    from sae.validate import results_markdown, results_table, run_validation

    table = results_table(
        run_validation(quick=args.quick, tree=args.source_tree, method=args.method)
    )
    shown = table.drop(columns=["source"])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    failed = int((table["result"] != "pass").sum())
    print(f"{len(table) - failed} of {len(table)} checks pass")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with staged_file(args.out) as temporary:
            temporary.write_text(results_markdown(table, args.quick, args.method), encoding="utf-8")
        print(f"table written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
