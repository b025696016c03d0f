"""The battery of bad inputs: each case makes one mistake a user could make, and names the error
sae must give for it. `tests/test_bad_inputs.py` runs every case; `benchmarks/bad_inputs/run.py`
writes the table of behaviours (benchmarks/bad_inputs/RESULTS.md).

A case is run on a fresh workspace (cells.csv, areas.gpkg, spec.toml from the synthetic map) and
ends in one of three ways: the spec is refused (`load_spec`), the inputs are refused
(`load_inputs` and the model design, all before sampling), or the command line refuses the output
folder (`sae fit`, before sampling). None may produce numbers, and none may delete a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Polygon

SPEC = (
    'title = "battery"\n[data]\ncells = "cells.csv"\nareas = "areas.gpkg"\narea_id = "area"\n'
    'group = "group"\ncount = "cases"\npopulation = "population"\n'
    "[sampler]\nchains = 2\ndraws = 50\ntune = 50\nseed = 7\n"
)


@dataclass
class Workspace:
    """A user's folder: the files a case may break, and the API arguments it may replace."""

    folder: Path
    cells: pd.DataFrame
    areas: gpd.GeoDataFrame
    spec_text: str = SPEC
    cells_text: str | None = None  # raw CSV text, for cases the DataFrame cannot express
    api_cells: object = None
    api_areas: object = None
    cli: list[str] | None = None  # arguments after `sae fit SPEC`, for output cases

    @property
    def spec_path(self) -> Path:
        return self.folder / "spec.toml"

    def write(self) -> None:
        if self.cells_text is None:
            self.cells.to_csv(self.folder / "cells.csv", index=False)
        else:
            (self.folder / "cells.csv").write_text(self.cells_text)
        self.areas.to_file(self.folder / "areas.gpkg", driver="GPKG")
        self.spec_path.write_text(self.spec_text)

    def set_spec(self, section: str, line: str) -> None:
        """Put `line` (key = value) in [section], replacing the key's line if there is one."""
        key = line.split("=")[0].strip()
        if re.search(rf"^{key} = ", self.spec_text, flags=re.M):
            self.spec_text = re.sub(rf"^{key} = .*$", line, self.spec_text, flags=re.M)
        elif f"[{section}]\n" in self.spec_text:
            self.spec_text = self.spec_text.replace(f"[{section}]\n", f"[{section}]\n{line}\n")
        else:
            self.spec_text += f"[{section}]\n{line}\n"

    def set_cell(self, row: int, column: str, value) -> None:
        self.cells[column] = self.cells[column].astype(object)
        self.cells.loc[row, column] = value


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[Workspace], None]
    error: str  # a regular expression the error message must match
    stage: str = "inputs"  # spec | inputs | output


def spec_case(name: str, section: str, line: str, error: str) -> Case:
    return Case(name, lambda w: w.set_spec(section, line), error, "spec")


def cell_case(name: str, row: int, column: str, value, error: str) -> Case:
    return Case(name, lambda w: w.set_cell(row, column, value), error)


def replace_spec(old: str, new: str) -> Callable[[Workspace], None]:
    def change(w: Workspace) -> None:
        w.spec_text = w.spec_text.replace(old, new)

    return change


def set_polygon(area: str, geometry) -> Callable[[Workspace], None]:
    def change(w: Workspace) -> None:
        w.areas.loc[w.areas["area"] == area, "geometry"] = geometry

    return change


def as_binomial(w: Workspace) -> None:
    w.spec_text = w.spec_text.replace('population = "population"', 'trials = "population"')
    w.set_spec("model", 'family = "binomial"')


def as_survey(w: Workspace, extra: str = "", estimates=None, spread=None) -> None:
    """A Fay–Herriot spec on made-up prevalences."""
    rng = np.random.default_rng(3)
    n = len(w.cells)
    w.cells["p"] = rng.uniform(0.05, 0.4, n) if estimates is None else estimates
    w.cells["se"] = np.full(n, 0.03) if spread is None else spread
    w.spec_text = w.spec_text.replace(
        'count = "cases"\npopulation = "population"\n', f'estimate = "p"\nse = "se"\n{extra}'
    )
    w.set_spec("model", 'family = "gaussian"')


def with_csv_text(text: Callable[[str], str]) -> Callable[[Workspace], None]:
    def change(w: Workspace) -> None:
        w.cells_text = text(w.cells.to_csv(index=False))

    return change


def ragged(csv: str) -> str:
    lines = csv.splitlines()
    lines[3] += ",7,8"
    return "\n".join(lines) + "\n"


def with_years(change_years, line: str | None = None, section: str = "output", years: int = 3):
    """The cells repeated for `years` years from 2010 (row r of year k at position k·n + r), the
    year column changed by `change_years`, and optionally a spec line."""

    def change(w: Workspace) -> None:
        w.cells = pd.concat(
            [w.cells.assign(year=2010 + k) for k in range(years)], ignore_index=True
        )
        w.cells["year"] = change_years(w.cells["year"].astype(object))
        w.set_spec("data", 'time = "year"')
        if line:
            w.set_spec(section, line)

    return change


def output_case(name: str, prepare: Callable[[Workspace], list[str]], error: str) -> Case:
    def change(w: Workspace) -> None:
        w.cli = prepare(w)

    return Case(name, change, error, "output")


def into_inputs(w: Workspace) -> list[str]:
    return ["--out", str(w.folder), "--force"]


def into_foreign_folder(w: Workspace) -> list[str]:
    other = w.folder / "my_documents"
    other.mkdir()
    (other / "thesis.docx").write_text("years of work")
    return ["--out", str(other), "--force"]


def into_sae_folder_with_notes(w: Workspace) -> list[str]:
    old = w.folder / "out"
    old.mkdir()
    (old / "provenance.json").write_text('{"written_by": "sae"}')
    (old / "my_notes.txt").write_text("notes")
    return ["--out", str(old), "--force"]


def into_file(w: Workspace) -> list[str]:
    (w.folder / "results.txt").write_text("not a folder")
    return ["--out", str(w.folder / "results.txt")]


def under_file(w: Workspace) -> list[str]:
    (w.folder / "results.txt").write_text("not a folder")
    return ["--out", str(w.folder / "results.txt" / "out")]


def non_empty_without_force(w: Workspace) -> list[str]:
    (w.folder / "out").mkdir()
    (w.folder / "out" / "a.csv").write_text("x")
    return ["--out", str(w.folder / "out")]


def maps_without_polygons(w: Workspace) -> list[str]:
    pd.DataFrame({"i": ["a00"], "j": ["a01"]}).to_csv(w.folder / "edges.csv", index=False)
    w.spec_text = w.spec_text.replace('areas = "areas.gpkg"\n', "")
    w.set_spec("graph", 'edges = "edges.csv"')
    return ["--out", str(w.folder / "out"), "--maps"]


def unknown_differs(w: Workspace) -> None:
    w.set_spec("data", 'unknown_group_count = "unknown"')
    w.set_spec("sampler", 'method = "nuts"')
    w.cells["unknown"] = 3
    w.cells.loc[0, "unknown"] = 4


def odds_with_laplace(w: Workspace) -> None:
    w.set_spec("data", 'unknown_group_count = "unknown"')
    w.set_spec("model", 'unknown_group_odds = { group = "A", odds = 2.0 }')


CASES = [
    # the spec: every value's type and range, every name
    spec_case("draws is text", "sampler", 'draws = "many"', "draws = 'many' must be a whole number"),
    spec_case("draws is fractional", "sampler", "draws = 100.5", "draws = 100.5 must be a whole number"),
    spec_case("interval in quotes", "output", 'interval = "0.95"', "interval = '0.95' must be a number"),
    spec_case("per = 0", "output", "per = 0", r"per = 0.0 is out of range; it must lie in \(0, inf\)"),
    spec_case("target_accept = 1.5", "sampler", "target_accept = 1.5", r"target_accept = 1.5 is out of range"),
    spec_case("chains = 0", "sampler", "chains = 0", "chains = 0 is out of range"),
    spec_case("negative seed", "sampler", "seed = -1", "seed = -1 is out of range"),
    spec_case("misspelt setting", "sampler", "n_draws = 100", r"unknown setting\(s\) \['n_draws'\] in \[sampler\]"),
    spec_case("misspelt section", "modle", 'family = "poisson"', r"unknown section\(s\) \['modle'\]"),
    spec_case("unknown family", "model", 'family = "poison"', "family = 'poison' is not known. Use one of: poisson"),
    spec_case("strata not a list", "data", "strata = 3", "strata = 3 must be a list of column names"),
    spec_case("gap_possible above 1", "flags", "gap_possible = 1.5", "gap_possible = 1.5 is out of range"),
    spec_case("gap_meaningful_ratio not above 1", "flags", "gap_meaningful_ratio = 0.9", "gap_meaningful_ratio = 0.9 is out of range"),
    spec_case("unknown rule set", "flags", 'rules = "cdc"', "rules = 'cdc' is not known. Use one of: nchs, quick2024, uscs"),
    spec_case("caution stricter than unreliable", "flags", "rse_caution = 0.5", "caution threshold must not be stricter"),
    spec_case("categorical not a covariate", "data", 'categorical = ["smoking"]', "categorical names .*smoking.* not among the covariates"),
    spec_case("age stratum not a stratum", "output", 'age_stratum = "age"', "age_stratum = 'age' is not one of the strata"),
    spec_case("two exposures", "data", 'expected = "population"', "exactly one exposure column"),
    Case("invalid TOML", replace_spec("[sampler]", "[sampler"), "not valid TOML", "spec"),
    Case("title not text", replace_spec('title = "battery"', "title = 5"), "title must be text", "spec"),
    Case("group effects without a group column",
         lambda w: (w.set_spec("model", 'group_effects = "iid"'),
                    setattr(w, "spec_text", w.spec_text.replace('group = "group"\n', ""))),
         "group_effects = 'iid' needs \\[data\\] group", "spec"),  # fmt: skip
    # the cells file
    Case("empty cells file", with_csv_text(lambda csv: ""), "cells.csv: the file is empty"),
    Case("header only", with_csv_text(lambda csv: csv.splitlines()[0] + "\n"), "cells.csv: the file has a header but no rows"),
    Case("ragged row", with_csv_text(ragged), "cells.csv: cannot be read as a table"),
    Case("cells file missing", replace_spec('cells = "cells.csv"', 'cells = "cels.csv"'), "cels.csv: cells file not found"),
    Case("count column missing", replace_spec('count = "cases"', 'count = "case"'), r"missing cell column\(s\) \['case'\]"),
    cell_case("negative count", 5, "cases", -1, "'cases' \\(count\\) is negative at row 7"),
    cell_case("fractional count", 5, "cases", 2.5, "not a whole number at row 7"),
    cell_case("text count", 5, "cases", "abc", "'cases' \\(count\\) has missing, non-numeric or infinite values at row 7"),
    cell_case("empty count", 5, "cases", None, "'cases' \\(count\\) has missing, non-numeric or infinite values at row 7"),
    cell_case("infinite count", 5, "cases", np.inf, "non-numeric or infinite values at row 7"),
    cell_case("count of 1e20", 5, "cases", 1e20, "impossibly large at row 7"),
    cell_case("count above the population", 5, "cases", 500_000, "'cases' exceeds the population column 'population' at row 7"),
    cell_case("negative population", 5, "population", -10, "'population' is negative at row 7"),
    cell_case("zero population with events", 5, "population", 0, "'population' is 0 where 'cases' is positive, at row 7"),
    cell_case("infinite population", 5, "population", np.inf, "'population' \\(exposure\\) has missing, non-numeric or infinite"),
    Case("infinite expected count",
         lambda w: (setattr(w, "spec_text", w.spec_text.replace("population = ", "expected = ")),
                    w.set_cell(5, "population", np.inf)),
         "non-numeric or infinite values at row 7"),  # fmt: skip
    Case("duplicate cell", lambda w: setattr(w, "cells", pd.concat([w.cells, w.cells.iloc[[0]]], ignore_index=True)),
         "more than one row for the same cell .* row 2, row 44"),  # fmt: skip
    cell_case("trailing space in a group", 3, "group", "B ", "column 'group' spells one label in several ways: 'B', 'B ' .*row 5"),
    cell_case("group in other case", 3, "group", "b", "spells one label in several ways: 'B', 'b'"),
    cell_case("area id not among the polygons", 3, "area", "nowhere", "area ids not found among the areas: nowhere"),
    cell_case("empty area id", 3, "area", None, "column 'area' is empty at row 5"),
    Case("typo in a numeric covariate",
         lambda w: (w.cells.__setitem__("smoking", np.linspace(0.1, 0.3, len(w.cells)).astype(object)),
                    w.set_cell(3, "smoking", "1.0x"), w.set_spec("data", 'covariates = ["smoking"]')),
         r"covariate 'smoking' is numeric but has values that are not finite numbers at row 5 \('1.0x'\)"),  # fmt: skip
    Case("empty covariate value",
         lambda w: (w.cells.__setitem__("smoking", np.linspace(0.1, 0.3, len(w.cells))),
                    w.set_cell(3, "smoking", None), w.set_spec("data", 'covariates = ["smoking"]')),
         "covariate 'smoking' is empty at row 5"),  # fmt: skip
    Case("constant covariate",
         lambda w: (w.cells.__setitem__("smoking", 0.2), w.set_spec("data", 'covariates = ["smoking"]')),
         "covariate 'smoking' takes one value only"),  # fmt: skip
    Case("reference group in other case", lambda w: w.set_spec("output", 'reference_group = "b"'),
         "reference_group = 'b' is not among the groups .* Did you mean 'B'"),  # fmt: skip
    Case("overlapping age bands",
         lambda w: (w.cells.__setitem__("age", ["0-44", "40+"] * (len(w.cells) // 2)),
                    w.set_spec("data", 'strata = ["age"]'), w.set_spec("output", 'age_stratum = "age"')),
         "age bands leave a gap or overlap before '40\\+'"),  # fmt: skip
    Case("standard population file missing",
         lambda w: (w.cells.__setitem__("age", ["0-39", "40+"] * (len(w.cells) // 2)),
                    w.set_spec("data", 'strata = ["age"]'), w.set_spec("output", 'age_stratum = "age"\nstandard_population = "std.csv"')),
         "std.csv: standard population file not found"),  # fmt: skip
    Case("area_name in neither file", lambda w: w.set_spec("data", 'area_name = "county"'),
         "area_name = 'county' is neither a column of the polygons nor of"),  # fmt: skip
    Case("two names for one area",
         lambda w: (w.cells.__setitem__("county", w.cells["area"]), w.set_cell(1, "county", "other"),
                    w.set_spec("data", 'area_name = "county"')),
         "gives several names to area\\(s\\) a00"),  # fmt: skip
    # binomial and Fay–Herriot cells
    Case("binomial count above trials", lambda w: (as_binomial(w), w.set_cell(4, "cases", 10**6)),
         "'cases' exceeds the trials column 'population' at row 6"),  # fmt: skip
    Case("fractional trials", lambda w: (as_binomial(w), w.set_cell(4, "population", 100.5)),
         "trials column 'population' is not a whole number at row 6"),  # fmt: skip
    Case("survey without a variance", lambda w: (as_survey(w), setattr(w, "spec_text", w.spec_text.replace('se = "se"\n', ""))),
         "exactly one of variance = or se =", "spec"),  # fmt: skip
    Case("negative standard error", lambda w: (as_survey(w), w.set_cell(2, "se", -0.1)), "'se' is negative at row 4"),
    Case("prevalence 0 under logit",
         lambda w: (as_survey(w), w.set_spec("model", 'transform = "logit"'), w.set_cell(2, "p", 0.0)),
         "strictly between 0 and 1, but column 'p' is outside that at row 4"),  # fmt: skip
    Case("arcsine without sample sizes", lambda w: (as_survey(w), w.set_spec("model", 'transform = "arcsine"')),
         "arcsine.*needs \\[data\\] sample_size", "spec"),  # fmt: skip
    Case("zero variance without sample sizes", lambda w: (as_survey(w), w.set_cell(2, "se", 0.0)),
         "'se' is zero or missing at row 4"),  # fmt: skip
    # the areas
    Case("areas file missing", replace_spec('areas = "areas.gpkg"', 'areas = "area.gpkg"'), "area.gpkg: areas file not found"),
    Case("wrong layer", lambda w: w.set_spec("data", 'areas_layer = "counties"'),
         "no layer 'counties'. Layers in the file: areas"),  # fmt: skip
    Case("id column missing from polygons", lambda w: setattr(w, "areas", w.areas.rename(columns={"area": "id"})),
         r"areas.gpkg: missing area id column \['area'\]"),  # fmt: skip
    Case("duplicate polygon id", lambda w: setattr(w, "areas", gpd.GeoDataFrame(pd.concat([w.areas, w.areas.iloc[[0]]]), crs=w.areas.crs)),
         "repeats area ids a00"),  # fmt: skip
    Case("empty polygon", set_polygon("a11", Polygon()), "areas with empty geometry: a11"),
    Case("self-intersecting polygon", set_polygon("a00", Polygon([(0, 0), (1000, 1000), (1000, 0), (0, 1000)])),
         "areas with invalid geometry: a00"),  # fmt: skip
    Case("spatial model without neighbours", replace_spec('areas = "areas.gpkg"\n', ""), "No areas: a spatial model"),
    Case("edge list missing", lambda w: w.set_spec("graph", 'edges = "edges.csv"'), "edges.csv: edge-list file not found"),
    Case("edge list names an unknown area",
         lambda w: ((w.folder / "edges.csv").write_text("i,j\na00,zz\n"), w.set_spec("graph", 'edges = "edges.csv"')),
         "neighbour pairs name areas that are not among the areas: zz"),  # fmt: skip
    Case("edge list with a self-loop",
         lambda w: ((w.folder / "edges.csv").write_text("i,j\na00,a00\n"), w.set_spec("graph", 'edges = "edges.csv"')),
         "areas listed as their own neighbour: a00"),  # fmt: skip
    # suppressed counts, stratum interactions, variance smoothing (this session's options)
    spec_case("suppression range reversed", "data", 'suppressed = { marker = "S", range = [15, 1] }',
              "must have 0 ≤ lower < upper"),
    spec_case("suppression without a range", "data", 'suppressed = { marker = "S" }',
              "must be a table with marker and range"),
    Case("suppression marker never appears",
         lambda w: w.set_spec("data", 'suppressed = { marker = "Suppressed", range = [1, 15] }'),
         "never holds the suppression marker 'Suppressed'"),
    Case("'<10' in the count column",
         lambda w: w.set_cell(3, "cases", "<10"), r"row 5 \('<10'\).*suppressed = \{ marker"),
    spec_case("count_lower without count_upper", "data", 'count_lower = "low"', "give both, or neither"),
    spec_case("strata_by_group names an unknown stratum", "model", 'strata_by_group = ["age"]',
              r"strata_by_group names \['age'\], which are not among the strata"),
    spec_case("variance smoothing on counts", "data", 'variance_smoothing = "gvf"',
              "family 'poisson' has counts"),
    spec_case("unknown cells format", "data", 'cells_format = "excel"',
              "cells_format = 'excel' is not known"),
    Case("unknown_group_odds with the Laplace method", odds_with_laplace,
         'with \\[model\\] unknown_group_odds needs \\[sampler\\] method = "nuts"', "spec"),
    spec_case("unknown_group_odds without unknown counts", "model",
              'unknown_group_odds = { group = "A", odds = 2.0 }', "needs \\[data\\] unknown_group_count"),
    Case("unknown count differing between a place's groups", unknown_differs,
         "differs between the groups' rows of the same area at row 2, row 3"),
    # time ([data] time)
    spec_case("a trend without a time column", "model", 'trend = "rw2"', "needs \\[data\\] time"),
    spec_case("pooled periods without a time column", "output", "pool = [[2010, 2012]]",
              "needs \\[data\\] time"),
    spec_case("pool not a list of pairs", "output", "pool = [2010, 2012]",
              r"2010 must be a first and a last period"),
    Case("time column missing", lambda w: w.set_spec("data", 'time = "year"'),
         r"missing cell column\(s\) \['year'\]"),
    Case("a year that is not a whole number", with_years(lambda y: y.where(y.index != 2, "2011.5")),
         "not whole numbers at row 4"),
    Case("two rows for one cell and year", with_years(lambda y: y.where(y.index != 42, 2010)),
         r"more than one row for the same cell \(area, group, period\)"),
    Case("a pool outside the data's years", with_years(lambda y: y, "pool = [[2010, 2031]]"),
         "must name two periods"),
    Case("rw2 on two years", with_years(lambda y: y, 'trend = "rw2"', "model", years=2),
         "needs at least 3 periods"),
    # the Python API's arguments
    Case("areas= a plain DataFrame", lambda w: setattr(w, "api_areas", pd.DataFrame(w.areas.drop(columns="geometry"))),
         "areas= must be a geopandas GeoDataFrame"),  # fmt: skip
    Case("areas= a GeoSeries", lambda w: setattr(w, "api_areas", w.areas.geometry), "areas= must be a geopandas GeoDataFrame"),
    Case("cells= a list", lambda w: setattr(w, "api_cells", [1, 2, 3]), "cells= must be a pandas DataFrame or the path"),
    # the output folder (sae fit, refused before sampling; nothing deleted)
    output_case("--force --out at the input folder", into_inputs, "holds the spec or its inputs"),
    output_case("--out . (the working folder)", lambda w: ["--out", ".", "--force"], "the folder you are working in|holds the spec"),
    output_case("--force on a folder sae did not write", into_foreign_folder, "is not a folder of sae results"),
    output_case("--force on sae output holding the user's notes", into_sae_folder_with_notes,
                r"holds files sae did not write \(my_notes.txt\)"),  # fmt: skip
    output_case("--out names a file", into_file, "results.txt is a file, not a folder"),
    output_case("--out under a file", under_file, "cannot write results to"),
    output_case("non-empty folder without --force", non_empty_without_force, "exists and is not empty"),
    output_case("--maps without polygons", maps_without_polygons, "maps need polygons"),
]  # fmt: skip


def names_are_unique() -> bool:
    return len({c.name for c in CASES}) == len(CASES)


def message_matches(case: Case, message: str) -> bool:
    return re.search(case.error, message) is not None


@dataclass(frozen=True)
class Outcome:
    """What sae did: 'refused' (an SaeError), 'accepted' (it went on), or 'crashed' (any other
    exception); the message; and whether every file of the workspace is still there, unchanged."""

    result: str
    message: str
    files_kept: bool


def run_case(case: Case, folder: Path, cells: pd.DataFrame, areas: gpd.GeoDataFrame) -> Outcome:
    """Make the case's mistake in `folder` and run sae up to the point of sampling."""
    import contextlib
    import io
    import os

    import sae
    from sae.cli import main
    from sae.fit import design_for
    from sae.inputs import load_inputs

    workspace = Workspace(folder, cells.copy(), areas.copy())
    case.change(workspace)
    workspace.write()
    before = snapshot(folder)
    here = Path.cwd()
    try:
        if case.stage == "output":
            os.chdir(folder)
            errors = io.StringIO()
            with contextlib.redirect_stderr(errors):
                code = main(["fit", str(workspace.spec_path), "--quiet", *workspace.cli])
            result = "refused" if code == 2 else "accepted"
            outcome = (result, errors.getvalue().strip())
        else:
            spec = sae.load_spec(workspace.spec_path)
            inputs = load_inputs(spec, cells=workspace.api_cells, areas=workspace.api_areas)
            design_for(spec, inputs)
            outcome = ("accepted", "")
    except sae.SaeError as err:
        outcome = ("refused", str(err))
    except Exception as err:  # noqa: BLE001 - a crash is an outcome the battery reports
        outcome = ("crashed", f"{type(err).__name__}: {err}")
    finally:
        os.chdir(here)
    after = snapshot(folder)
    kept = all(after.get(path) == content for path, content in before.items())
    return Outcome(*outcome, files_kept=kept)


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
