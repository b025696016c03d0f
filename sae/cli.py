"""The `sae` command line: `sae fit SPEC --out DIR`."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from sae.errors import SaeInputError
from sae.sampling import ConvergenceWarning


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sae", description="Bayesian small-area estimation.")
    commands = parser.add_subparsers(dest="command", required=True)
    fit_parser = commands.add_parser("fit", help="fit a model spec and write its results")
    fit_parser.add_argument(
        "spec", type=Path, help="model spec (TOML), e.g. models/pennsylvania_lung_race.toml"
    )
    fit_parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    fit_parser.add_argument(
        "--force", action="store_true", help="replace a non-empty --out directory"
    )
    for name in ("chains", "draws", "tune", "seed"):
        fit_parser.add_argument(f"--{name}", type=int, help=f"override [sampler] {name}")
    fit_parser.add_argument("--quiet", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="sae: %(message)s")
    try:
        return run_fit(args)
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
    out = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        raise FileExistsError(
            f"{out} exists and is not empty; use --force to replace it, or another --out."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = sae.fit(spec, progress=not args.quiet)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            print(f"sae: warning: {warning.message}", file=sys.stderr)
    fit.save(out, force=args.force)
    print(fit.summary())
    print(
        f"results written to {out}/ (estimates.csv, posterior.nc, diagnostics.json, provenance.json)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
