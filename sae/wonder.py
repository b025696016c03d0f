"""Reading a CDC WONDER export as it is downloaded.

WONDER's "Export Results" gives a tab-separated text file with quoted fields: a header line, one
line per row of the results, then a line ``"---"`` followed by the query description, citation
and caveats. The first column, ``Notes``, is empty on data lines and says ``Total`` on the total
lines that "Show Totals" adds. Counts below the confidentiality threshold read ``Suppressed``
(declare them with ``[data] suppressed = { marker = "Suppressed", range = [1, 15] }``: WONDER's
cancer data suppress fewer than 16 cases and show zeros as 0).

`read_wonder` returns the data lines as a table whose index is each line's number in the file, so
that every later error names the line a user can find.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from sae.errors import SaeInputError, listing

END_OF_DATA = "---"
NOTES = "Notes"


def read_wonder(path: Path, text_columns: dict[str, type], missing: list[str]) -> pd.DataFrame:
    """The data lines of a WONDER export (up to the first ``"---"``), without the Notes column."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise SaeInputError(
            f"{path}: not UTF-8 text ({err}); export it again from WONDER."
        ) from err
    rows = list(csv.reader(lines, delimiter="\t", quotechar='"'))
    end = next((i for i, row in enumerate(rows) if row == [END_OF_DATA]), len(rows))
    if end < 2 or NOTES not in rows[0]:
        raise SaeInputError(
            f"{path}: not a CDC WONDER export (expected a tab-separated header with a {NOTES!r} "
            'column, data lines, and a line "---" before the notes). Export with '
            '"Export Results", or set [data] cells_format = "table" for a CSV.'
        )
    body = "\n".join(lines[:end])
    columns = rows[0]
    numeric_missing = {c: [""] if c in text_columns else missing for c in columns}
    table = pd.read_csv(io.StringIO(body), sep="\t", quotechar='"', dtype={**text_columns,
                        NOTES: str}, keep_default_na=False, na_values=numeric_missing)  # fmt: skip
    table.index = table.index + 2  # the line number in the file (line 1 is the header)
    notes = table[NOTES].fillna("").str.strip()
    if (notes != "").any():
        shown = listing([f"line {i} ({v!r})" for i, v in notes[notes != ""].items()])
        raise SaeInputError(
            f"{path}: WONDER total or note lines at {shown}. sae needs one line per cell: export "
            'with "Show Totals" off, or delete those lines.'
        )
    return table.drop(columns=NOTES)
