"""The one error family sae raises for bad input."""

from __future__ import annotations

from collections.abc import Sequence

MAX_LISTED = 5


class SaeInputError(ValueError):
    """Bad input: the message names the file, the column, the rows or areas, and the fix."""


def listing(items: Sequence[object], limit: int = MAX_LISTED) -> str:
    """A short, readable list of offending items: the first `limit`, then how many more."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    more = len(items) - limit
    return f"{shown} (and {more} more)" if more > 0 else shown
