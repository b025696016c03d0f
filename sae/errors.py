"""The errors sae raises. The command line catches `SaeError` and prints its message; any other
exception is a bug in sae and is shown with its traceback."""

from __future__ import annotations

from collections.abc import Sequence

MAX_LISTED = 5


class SaeError(Exception):
    """Base class of every error sae raises on purpose."""


class SaeInputError(SaeError, ValueError):
    """Bad input: the message names the file, the column, the rows or areas, and the fix."""


class SaeOutputError(SaeError, FileExistsError):
    """An output location sae must not or cannot write to (it says why and what to do)."""


def listing(items: Sequence[object], limit: int = MAX_LISTED) -> str:
    """A short, readable list of offending items: the first `limit`, then how many more."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    more = len(items) - limit
    return f"{shown} (and {more} more)" if more > 0 else shown
