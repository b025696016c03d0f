"""The cells table: reading it and validating it once, at the boundary.

A *cell* is one row of the long table: area × group (× strata) with a count and its exposure
(population, expected count, or binomial trials), or a direct survey estimate and its variance.
Every problem found here raises a `SaeInputError` that names the file, the column and the first
offending rows, and says how to fix it. Nothing is dropped, coerced or reinterpreted silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sae.direct import direct_columns
from sae.errors import SaeInputError, listing
from sae.spec import Spec
from sae.wonder import read_wonder

SINGLE_GROUP = "all"
LARGEST_EXACT_COUNT = 2.0**53  # beyond this a float64 cannot hold every whole number
# Read as missing in numeric columns; in id and label columns only an empty field is missing,
# so that a label such as "NA" (a race or place code) stays a label.
MISSING_MARKERS = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "#N/A"]


@dataclass(frozen=True, eq=False)
class CellTable:
    """The validated long table, with canonical column names.

    `frame` has columns ``area``, ``group``, the strata, ``count``, ``exposure`` and the covariates,
    plus ``source_row`` (the row's line in the input file, or its index label); with a time column,
    ``period`` (its label) and ``period_index`` (its position in `periods`, 0 first).
    """

    frame: pd.DataFrame
    strata: tuple[str, ...]
    covariates: tuple[str, ...]
    exposure: str
    groups: tuple[str, ...]
    source: str
    periods: tuple[int | str, ...] = ()  # in order; every year from the first to the last

    @property
    def keys(self) -> list[str]:
        """The columns that identify a row: area, group, the strata and the period."""
        return ["area", "group", *self.strata, *(["period"] if self.periods else [])]


def read_cells(spec: Spec, cells: pd.DataFrame | str | Path | None) -> tuple[pd.DataFrame, str]:
    """The raw table and a description of where it came from (a file, or the DataFrame)."""
    if isinstance(cells, pd.DataFrame):
        return cells.copy(), "the cells DataFrame"
    if cells is not None and not isinstance(cells, str | Path):
        raise SaeInputError(
            f"cells= must be a pandas DataFrame or the path of a CSV/Parquet file, not "
            f"{type(cells).__name__}."
        )
    path = Path(cells) if cells is not None else spec.data.cells
    if path is None:
        raise SaeInputError("No cells: set [data] cells = a CSV or Parquet file, or pass cells=.")
    if not path.is_file():
        raise SaeInputError(f"{path}: cells file not found. Check [data] cells in the spec.")
    text_columns = {c: str for c in (spec.data.area_id, spec.data.group, *spec.data.strata) if c}
    if spec.data.suppressed is not None:  # read as text, so that any marker stays what it is
        text_columns[spec.data.count] = str
    if spec.data.cells_format == "wonder":
        return read_wonder(path, text_columns, MISSING_MARKERS), str(path)
    return read_table(path, text_columns), str(path)


def read_table(path: Path, text_columns: dict[str, type]) -> pd.DataFrame:
    """A CSV (index = line numbers in the file) or Parquet file, with id columns read as text."""
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
            return table.astype({c: str for c in text_columns if c in table})
        header = pd.read_csv(path, nrows=0).columns
        missing = {c: [""] if c in text_columns else MISSING_MARKERS for c in header}
        table = pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=missing)
    except pd.errors.EmptyDataError as err:
        raise SaeInputError(
            f"{path}: the file is empty. It needs a header line and one row per cell."
        ) from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise SaeInputError(
            f"{path}: cannot be read as a table ({err}). Check that every line has the same "
            "number of comma-separated fields, that the file is UTF-8, and save it again as CSV."
        ) from err
    if table.empty:
        raise SaeInputError(f"{path}: the file has a header but no rows. Add one row per cell.")
    table.index = table.index + 2  # the line number in the file (line 1 is the header)
    return table


def check_cells(table: pd.DataFrame, spec: Spec, source: str) -> CellTable:
    """Check the long table and return it with canonical column names."""
    d = spec.data
    if table.empty:
        raise SaeInputError(f"{source}: the table has no rows. Give one row per cell.")
    keys = [d.area_id, *([d.group] if d.group else []), *d.strata, *([d.time] if d.time else [])]
    require_columns(table, keys + measure_columns(spec), source, "cell")
    require_columns(table, list(d.covariates), source, "covariate")
    frame = pd.DataFrame(
        {
            "area": label_column(table, d.area_id, source),
            "group": label_column(table, d.group, source) if d.group else SINGLE_GROUP,
            **{s: label_column(table, s, source) for s in d.strata},
        },
        index=table.index,
    )
    periods: tuple = ()
    if d.time:
        frame["period"], periods = period_column(table, d.time, d.periods, source)
        frame["period_index"] = frame["period"].map({p: i for i, p in enumerate(periods)})
    blocks = (*d.strata, *(["period"] if d.time else []))  # rows sharing unknown-group events
    if spec.model.family == "gaussian":
        frame = frame.join(direct_columns(table, spec, source, rows_where))
    else:
        exposure = getattr(d, spec.exposure)
        frame["count"], frame["count_upper"] = count_bounds(table, spec, source)
        frame["exposure"] = exposure_column(table, exposure, source)
        check_exposure(frame, spec.exposure, d.count, exposure, source)
        if d.unknown_group_count:
            frame["unknown"] = unknown_column(table, frame, d.unknown_group_count, blocks,
                                              source, spec.exposure)  # fmt: skip
    for covariate in d.covariates:
        frame[covariate] = covariate_column(table, covariate, source, covariate in d.categorical)
    check_duplicates(frame, ["area", "group", *d.strata, *(["period"] if d.time else [])], source)
    frame["source_row"] = [str(i) for i in table.index]
    return CellTable(
        frame=frame.reset_index(drop=True),
        strata=d.strata,
        covariates=d.covariates,
        exposure=spec.exposure,
        groups=tuple(sorted(frame["group"].unique())),
        source=source,
        periods=periods,
    )


def period_column(table: pd.DataFrame, column: str, order: tuple[str, ...], source: str):
    """Each row's period and the periods in order.

    Whole numbers (years) give every period from the first to the last, so a year without any
    data is still estimated; text labels take their order from `[data] periods`, which must list
    every label."""
    require_filled(table, column, source, "time column", "Give every row its period.")
    if order:
        labels = table[column].astype(str).str.strip()
        unknown = ~labels.isin(order)
        if unknown.any():
            raise SaeInputError(
                f"{source}: column {column!r} has periods that [data] periods does not list "
                f"({listing(sorted(labels[unknown].unique()))}) at {rows_where(table, unknown)}. "
                "List every period, in order, in [data] periods."
            )
        return labels, tuple(order)
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        raise SaeInputError(
            f"{source}: time column {column!r} has values that are not whole numbers at "
            f"{rows_where(table, bad)} (e.g. {table[column][bad].iloc[0]!r}). Give years as whole "
            'numbers, or list text period labels in order: [data] periods = ["2013-2017", ...].'
        )
    years = values.astype(np.int64)
    first, last = int(years.min()), int(years.max())
    if last - first >= 1000:
        raise SaeInputError(
            f"{source}: time column {column!r} spans {first} to {last}; sae estimates every period "
            "in between. Check the column (it should hold years or period numbers)."
        )
    return years, tuple(range(first, last + 1))


def measure_columns(spec: Spec) -> list[str]:
    """The columns that carry the outcome: count and exposure, or a direct estimate and its spread."""
    d = spec.data
    if spec.model.family == "gaussian":
        return [c for c in (d.estimate, d.variance, d.se, d.sample_size, d.population) if c]
    bounds = [d.count_lower, d.count_upper] if d.count_lower else []
    unknown = [d.unknown_group_count] if d.unknown_group_count else []
    return [d.count, getattr(d, spec.exposure), *bounds, *unknown]


def require_columns(table: pd.DataFrame, columns: list[str], source: str, role: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SaeInputError(
            f"{source}: missing {role} column(s) {missing}. Columns present: "
            f"{listing(list(table.columns), 12)}. Rename the column or change the spec."
        )


def rows_where(table: pd.DataFrame, mask) -> str:
    return listing([f"row {i}" for i in table.index[np.asarray(mask, dtype=bool)]])


def require_filled(table: pd.DataFrame, column: str, source: str, what: str, advice: str) -> None:
    missing = table[column].isna()
    if missing.any():
        raise SaeInputError(
            f"{source}: {what} {column!r} is empty at {rows_where(table, missing)}. {advice}"
        )


def label_column(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    """An id or label column as text, refusing labels that differ only in spaces or case."""
    require_filled(table, column, source, "column", "Fill in the value or remove those rows.")
    labels = table[column].astype(str)
    check_spellings(labels, table, column, source)
    return labels


def check_spellings(labels: pd.Series, table: pd.DataFrame, column: str, source: str) -> None:
    """'white' and 'White ' would silently become two groups: name both spellings and rows."""
    key = labels.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()
    spellings = labels.groupby(key).unique()
    clashes = spellings[spellings.map(len) > 1]
    if len(clashes):
        variants = list(clashes.iloc[0])
        rows = rows_where(table, labels.isin(variants[1:]).to_numpy())
        raise SaeInputError(
            f"{source}: column {column!r} spells one label in several ways: "
            f"{', '.join(repr(v) for v in variants)} (the later spellings at {rows}). "
            "Use one spelling; check for trailing spaces and capital letters."
        )


def numeric_column(table: pd.DataFrame, column: str, source: str, role: str) -> pd.Series:
    """A finite number in every row, or an error naming the rows that are not."""
    values = pd.to_numeric(table[column], errors="coerce").astype(float)
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        raise SaeInputError(
            f"{source}: column {column!r} ({role}) has missing, non-numeric or infinite values at "
            f"{rows_where(table, bad)}. Give a finite number in every row."
        )
    return values


def count_bounds(table: pd.DataFrame, spec: Spec, source: str) -> tuple[pd.Series, pd.Series]:
    """The smallest and largest possible count of every row: equal for a count given as a number;
    [lower, upper] of `[data] suppressed` where the count is its marker, or of the `count_lower`
    and `count_upper` columns where the count is empty (censored counts)."""
    d = spec.data
    raw = table[d.count]
    marked = pd.Series(False, index=table.index)
    if d.suppressed is not None:
        marked = raw.astype(str).str.strip() == d.suppressed.marker
        if not marked.any():
            raise SaeInputError(
                f"{source}: column {d.count!r} never holds the suppression marker "
                f"{d.suppressed.marker!r} of [data] suppressed. Check its spelling (values seen: "
                f"{listing(sorted(map(str, raw.dropna().unique())), 6)}), or remove the setting."
            )
    empty = raw.isna() & ~marked if d.count_lower else pd.Series(False, index=table.index)
    exact = table.loc[~(marked | empty)]
    count = count_column(exact, d.count, source,
                         marker=d.suppressed.marker if d.suppressed else None)  # fmt: skip
    lower = pd.Series(0, index=table.index, dtype=np.int64)
    lower[count.index] = count
    upper = lower.copy()
    if marked.any():
        lower[marked], upper[marked] = d.suppressed.lower, d.suppressed.upper
    if empty.any():
        lower[empty], upper[empty] = bound_columns(table.loc[empty], d, source)
    return lower, upper


def bound_columns(table: pd.DataFrame, d, source: str) -> tuple[pd.Series, pd.Series]:
    """`count_lower` and `count_upper` of the rows whose count is empty: whole numbers, lower ≤
    upper."""
    lower = count_column(table, d.count_lower, source)
    upper = count_column(table, d.count_upper, source)
    reversed_ = lower > upper
    if reversed_.any():
        raise SaeInputError(
            f"{source}: {d.count_lower!r} is larger than {d.count_upper!r} at "
            f"{rows_where(table, reversed_)}. A censored count lies in [lower, upper]; swap them."
        )
    return lower, upper


def count_column(table: pd.DataFrame, column: str, source: str, marker=None) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce").astype(float)
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        shown = listing([f"row {i} ({v!r})" for i, v in table[column][bad].items()])
        hint = (f" The suppression marker is {marker!r}." if marker else
                ' A suppressed count can be given with [data] suppressed = { marker = '
                '"Suppressed", range = [1, 15] }, or as an empty count with count_lower and '
                "count_upper columns.")  # fmt: skip
        raise SaeInputError(
            f"{source}: column {column!r} (count) has missing, non-numeric or infinite values at "
            f"{shown}. Give a finite number in every row.{hint}"
        )
    refuse_negative(table, values, f"{source}: column {column!r} (count)",
                    "Counts are numbers of events, 0 or more.")  # fmt: skip
    huge = values > LARGEST_EXACT_COUNT
    if huge.any():
        raise SaeInputError(
            f"{source}: column {column!r} (count) is impossibly large at {rows_where(table, huge)} "
            f"(above 2^53). Check the value: it may be a typo or a misread column."
        )
    fractional = values != np.round(values)
    if fractional.any():
        raise SaeInputError(
            f"{source}: column {column!r} (count) is not a whole number at "
            f"{rows_where(table, fractional)}. Counts must be integers; rates belong in a "
            "Fay–Herriot model."
        )
    return values.astype(np.int64)


def unknown_column(table: pd.DataFrame, frame: pd.DataFrame, column: str, strata, source: str,
                   exposure_kind: str) -> pd.Series:  # fmt: skip
    """The unknown-group count of every row: a whole number ≥ 0, the same on every group's row of
    an area × stratum, 0 where the block has no exposure (no one to attribute events to), and with
    the known events no more than a population."""
    values = count_column(table, column, source)
    keys = ["area", *strata]
    varies = values.groupby([frame[k] for k in keys]).transform("nunique") > 1
    if varies.any():
        raise SaeInputError(
            f"{source}: column {column!r} (events of unknown group) differs between the groups' rows "
            f"of the same area{' and stratum' if strata else ''} at {rows_where(table, varies)}. "
            "It counts the block's events without a group, so give the same number on each of "
            "its rows."
        )
    exposure = frame["exposure"].groupby([frame[k] for k in keys]).transform("sum")
    stranded = (values > 0) & (exposure <= 0)
    if stranded.any():
        raise SaeInputError(
            f"{source}: column {column!r} has events of unknown group at "
            f"{rows_where(table, stranded)}, where no group has any exposure. Check the exposure, "
            "or the area and stratum of those events."
        )
    if exposure_kind == "population":
        events = frame["count_upper"].groupby([frame[k] for k in keys]).transform("sum") + values
        crowded = events > exposure
        if crowded.any():
            raise SaeInputError(
                f"{source}: the events of known and unknown group together exceed the population "
                f"of their area{' and stratum' if strata else ''} at {rows_where(table, crowded)}. "
                f"Check column {column!r} and the counts."
            )
    return values


def exposure_column(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = numeric_column(table, column, source, "exposure")
    refuse_negative(table, values, f"{source}: column {column!r}",
                    "Populations, expected counts and trials are 0 or more.")  # fmt: skip
    return values


def refuse_negative(table: pd.DataFrame, values: pd.Series, where: str, advice: str) -> None:
    negative = values < 0
    if negative.any():
        raise SaeInputError(f"{where} is negative at {rows_where(table, negative)}. {advice}")


def check_exposure(frame: pd.DataFrame, kind: str, count: str, column: str, source: str) -> None:
    """Events need exposure; a binomial count cannot exceed its trials, nor a count of people the
    population."""
    impossible = (frame["exposure"] <= 0) & (frame["count"] > 0)
    if impossible.any():
        raise SaeInputError(
            f"{source}: column {column!r} is 0 where {count!r} is positive, at "
            f"{rows_where(frame, impossible)}. Events need a positive {kind}; fix the {kind}."
        )
    if kind == "trials":
        fractional = frame["exposure"] != np.round(frame["exposure"])
        if fractional.any():
            raise SaeInputError(
                f"{source}: trials column {column!r} is not a whole number at "
                f"{rows_where(frame, fractional)}."
            )
    over = frame["count"] > frame["exposure"]
    if kind != "expected" and over.any():
        advice = (
            "A binomial count cannot exceed its trials."
            if kind == "trials"
            else f"If {column!r} is not a head count (person-years, expected counts), name it as "
            "[data] expected instead."
        )
        raise SaeInputError(
            f"{source}: column {count!r} exceeds the {kind} column {column!r} at "
            f"{rows_where(frame, over)}: more events than at risk. Fix the count or the {kind}. "
            + advice
        )


def covariate_column(table: pd.DataFrame, column: str, source: str, categorical: bool) -> pd.Series:
    """Declared-categorical covariates as text levels; every other covariate must be numeric."""
    require_filled(
        table, column, source, "covariate",
        "Fill it in (sae does not impute covariates) or drop the covariate.",
    )  # fmt: skip
    values = table[column]
    if categorical:
        return values.astype(str)
    if pd.api.types.is_bool_dtype(values):
        raise SaeInputError(
            f"{source}: covariate {column!r} is true/false. List it in [data] categorical = "
            f'["{column}"] to use it as a two-level factor.'
        )
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
    if bad.any():
        shown = listing([f"row {i} ({v!r})" for i, v in values[bad].items()])
        raise SaeInputError(
            f"{source}: covariate {column!r} is numeric but has values that are not finite numbers "
            f"at {shown}. Fix them, or, if the covariate is a factor, list it in [data] "
            f'categorical = ["{column}"].'
        )
    return numbers.astype(float)


def check_duplicates(frame: pd.DataFrame, keys: list[str], source: str) -> None:
    dupes = frame.duplicated(keys, keep=False)
    if dupes.any():
        raise SaeInputError(
            f"{source}: more than one row for the same cell ({', '.join(keys)}) at "
            f"{rows_where(frame, dupes)}. Sum or remove the duplicates; or, if another column tells "
            'the rows apart, name it: [data] group = "race" for groups, strata = ["age", "sex"] '
            'for bands within a cell, time = "year" for periods.'
        )
