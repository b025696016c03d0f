"""Redraw the committed examples of what a user gets from the bundled Pennsylvania model.

    .venv/bin/python benchmarks/pennsylvania_lung/examples/make.py

Runs the README's Python example and writes, next to this file:

- `estimates.png`: `fit.plot_estimates()`, the map the README shows (150 dpi, to keep the repo small);
- `report.html`: the report of `sae fit --report` (self-contained, maps embedded);
- `profile_42003.html`: the place profile of Allegheny County (`sae report DIR --place 42003`);
- `estimates_table.csv`, `gaps_table.csv`: the tables for people (UTF-8 with a BOM).
"""

import shutil
import tempfile
from pathlib import Path

import sae
from sae.profiles import write_profiles

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def main() -> None:
    fit = sae.fit(sae.load_spec(ROOT / "models" / "pennsylvania_lung_race.toml"))
    fit.plot_estimates().savefig(HERE / "estimates.png", dpi=150, bbox_inches="tight")
    with tempfile.TemporaryDirectory() as scratch:
        out = fit.save(Path(scratch) / "pennsylvania", maps=True, report=True)
        write_profiles(fit, out, "42003")
        shutil.copyfile(out / "report.html", HERE / "report.html")
        shutil.copyfile(out / "profiles" / "42003.html", HERE / "profile_42003.html")
        for name in ("estimates_table.csv", "gaps_table.csv"):
            shutil.copyfile(out / name, HERE / name)
    print(fit.summary())


if __name__ == "__main__":
    main()
