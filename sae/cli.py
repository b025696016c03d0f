"""The `sae` command line.

sae fit SPEC --out DIR [--maps] [--report] [--force]   fit a spec, write results (and maps, report)
sae map DIR [--force]                                  draw the maps of a saved fit into DIR/maps
sae report DIR [--force]                               write DIR/report.html for a saved fit
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from sae.errors import SaeInputError
from sae.sampling import ConvergenceWarning
from sae.store import check_writable


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="sae", description="Bayesian small-area estimation.")
    commands = main_parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a model spec and write its results")
    fit.add_argument(
        "spec", type=Path, help="model spec (TOML), e.g. models/pennsylvania_lung_race.toml"
    )
    fit.add_argument("--out", type=Path, required=True, help="directory for the results")
    fit.add_argument("--force", action="store_true", help="replace a non-empty --out directory")
    fit.add_argument("--maps", action="store_true", help="also draw the maps into OUT/maps")
    fit.add_argument(
        "--report", action="store_true", help="also write OUT/report.html (and the maps)"
    )
    for name in ("chains", "draws", "tune", "seed"):
        fit.add_argument(f"--{name}", type=int, help=f"override [sampler] {name}")
    fit.add_argument("--quiet", action="store_true", help="no progress display")
    validate = commands.add_parser("validate", help="reproduce the published benchmark results")
    validate.add_argument(
        "--quick", action="store_true", help="skip the slow NYC fit (a few minutes)"
    )
    validate.add_argument(
        "--out", type=Path, default=Path("benchmarks/validation/RESULTS.md"),
        help="where to write the results table (Markdown)",
    )  # fmt: skip
    for name, text in (
        ("map", "draw the maps of a saved fit"),
        ("report", "write a saved fit's report"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("directory", type=Path, help="a directory written by sae fit")
        sub.add_argument("--force", action="store_true", help="replace existing maps / report")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="sae: %(message)s")
    commands = {"fit": run_fit, "map": run_map, "report": run_report, "validate": run_validate}
    run = commands[args.command]
    try:
        return run(args)
    except (SaeInputError, FileExistsError) as err:
        print(f"sae: error: {err}", file=sys.stderr)
        return 2


def run_fit(args: argparse.Namespace) -> int:
    import sae

    spec = sae.load_spec(args.spec)
    overrides = {
        k: getattr(args, k)
        for k in ("chains", "draws", "tune", "seed")
        if getattr(args, k) is not None
    }
    if overrides:
        spec = spec.replace(sampler=overrides)
    check_writable(args.out, args.force)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = sae.fit(spec, progress=not args.quiet)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            print(f"sae: warning: {warning.message}", file=sys.stderr)
    fit.save(args.out, force=args.force, maps=args.maps or args.report, report=args.report)
    print(fit.summary())
    print(
        f"results written to {args.out}/: " + ", ".join(sorted(p.name for p in args.out.iterdir()))
    )
    return 0


def run_map(args: argparse.Namespace) -> int:
    import sae
    from sae.mapping import write_maps

    target = args.directory / "maps"
    check_writable(target, args.force)
    staging = Path(tempfile.mkdtemp(prefix=".maps.", dir=args.directory))
    try:
        written = write_maps(sae.load(args.directory), staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"maps written to {target}/: " + ", ".join(p.name for p in written))
    return 0


def run_report(args: argparse.Namespace) -> int:
    import sae
    from sae.report import write_report

    if (args.directory / "report.html").exists() and not args.force:
        raise FileExistsError(
            f"{args.directory}/report.html exists; use --force to write it again."
        )
    print(f"report written to {write_report(sae.load(args.directory), args.directory)}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Print the table, write it as Markdown, and fail (exit 1) if any check fails."""
    from sae.validate import results_markdown, results_table, run_validation

    table = results_table(run_validation(quick=args.quick))
    shown = table.drop(columns=["source"])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    temporary.write_text(results_markdown(table, args.quick))
    temporary.replace(args.out)
    failed = int((table["result"] != "pass").sum())
    print(f"{len(table) - failed} of {len(table)} checks pass; table written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
