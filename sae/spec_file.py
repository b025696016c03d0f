"""Spec files: a TOML file read into a checked `Spec`, and a `Spec` written back as TOML.

Every setting is checked for its name, its type and its range, and combinations are checked too,
so that a mistake stops the run with a message that says what to write instead. Paths in a spec
file are relative to that file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from sae.errors import SaeInputError
from sae.spec import (
    DataSpec,
    FlagSpec,
    GraphSpec,
    MissingOdds,
    ModelSpec,
    OutputSpec,
    PeriodPool,
    SamplerSpec,
    Spec,
    Suppression,
)  # fmt: skip
from sae.spec_checks import check_spec

SECTIONS = {
    "data": DataSpec,
    "graph": GraphSpec,
    "model": ModelSpec,
    "sampler": SamplerSpec,
    "flags": FlagSpec,
    "output": OutputSpec,
}


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file.

    Parameters
    ----------
    path : str or Path
        A TOML model spec; relative paths in it are taken relative to the file.

    Returns
    -------
    Spec
        The checked spec; any unknown name, wrong type or out-of-range value raises
        `SaeInputError` naming the setting and what to write instead.
    """
    path = Path(path)
    if not path.is_file():
        raise SaeInputError(f"{path}: no such spec file. Give the path to a .toml model spec.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SaeInputError(
            f"{path}: not valid TOML ({err}). Fix the syntax at that line."
        ) from err
    return spec_from_dict(raw, base=path.resolve().parent, source=path)


def spec_from_dict(
    raw: dict[str, Any], base: Path | None = None, source: Path | None = None
) -> Spec:
    """Build a `Spec` from nested dicts as a TOML file would give them."""
    where = str(source or "<spec>")
    unknown = set(raw) - set(SECTIONS) - {"title"}
    if unknown:
        raise SaeInputError(
            f"{where}: unknown section(s) {sorted(unknown)}. Allowed: title, {', '.join(SECTIONS)}."
        )
    title = raw.get("title", Spec.title)
    if not isinstance(title, str):
        raise SaeInputError(f'{where}: title must be text in quotes, e.g. title = "Lung cancer".')
    sections = {
        name: section_from_dict(name, cls, raw.get(name, {}), base, where)
        for name, cls in SECTIONS.items()
    }
    spec = Spec(title=title, source=source, **sections)
    check_spec(spec, where)
    return spec


def section_from_dict(name: str, cls: type, values: dict, base: Path | None, where: str) -> Any:
    """One section's settings: known names only, each of its declared type (paths resolved)."""
    if not isinstance(values, dict):
        raise SaeInputError(f"{where}: [{name}] must be a table of settings.")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - allowed
    if unknown:
        raise SaeInputError(
            f"{where}: unknown setting(s) {sorted(unknown)} in [{name}]. "
            f"Allowed: {', '.join(sorted(allowed))}."
        )
    hints = typing.get_type_hints(cls)
    converted = {
        key: setting_value(name, key, value, hints[key], base, where)
        for key, value in values.items()
    }
    return cls(**converted)


def setting_value(section: str, key: str, value: Any, hint: Any, base: Path | None, where: str):
    """`value` checked against the field's type `hint` and converted (paths, tuples, floats)."""
    kinds = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
    if value is None and type(None) in kinds:
        return None
    setting = f"{where}: [{section}] {key} = {value!r}"
    if Path in kinds:
        if not isinstance(value, str | Path):
            raise SaeInputError(f'{setting} must be a path in quotes, e.g. {key} = "data.csv".')
        return Path(value) if base is None else (base / value).resolve()
    if Suppression in kinds:
        return suppression_value(value, setting)
    if MissingOdds in kinds:
        return missing_odds_value(value, setting)
    if tuple[PeriodPool, ...] in kinds:
        return pool_value(value, setting)
    if tuple[float, float] in kinds:
        numbers = isinstance(value, list | tuple) and len(value) == 2
        if not numbers or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise SaeInputError(
                f"{setting} must be two numbers [U, alpha], e.g. {key} = [1.0, 0.01]."
            )
        return (float(value[0]), float(value[1]))
    if tuple[str, ...] in kinds:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise SaeInputError(f'{setting} must be a list of column names, e.g. ["age", "sex"].')
        return tuple(items)
    if bool in kinds:
        if not isinstance(value, bool):
            raise SaeInputError(f"{setting} must be true or false.")
        return value
    if int in kinds:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SaeInputError(f"{setting} must be a whole number, e.g. {key} = 1000.")
        return value
    if float in kinds:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SaeInputError(f"{setting} must be a number (not text in quotes).")
        return float(value)
    if not isinstance(value, str):
        raise SaeInputError(f'{setting} must be text in quotes, e.g. {key} = "...".')
    return value


def suppression_value(value, setting: str) -> Suppression:
    """{ marker = "Suppressed", range = [1, 15] } (or a Suppression already)."""
    if isinstance(value, Suppression):
        return value
    example = 'e.g. suppressed = { marker = "Suppressed", range = [1, 15] }'
    if not isinstance(value, dict) or set(value) != {"marker", "range"}:
        raise SaeInputError(f"{setting} must be a table with marker and range, {example}.")
    marker, bounds = value["marker"], value["range"]
    whole = (
        isinstance(bounds, list | tuple)
        and len(bounds) == 2
        and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
    )
    if not isinstance(marker, str) or not marker.strip() or not whole:
        raise SaeInputError(
            f"{setting}: marker must be the text that stands for a suppressed count and range two "
            f"whole numbers [lower, upper], {example}."
        )
    if not 0 <= bounds[0] < bounds[1]:
        raise SaeInputError(
            f"{setting}: range [{bounds[0]}, {bounds[1]}] must have 0 ≤ lower < upper (a count "
            "known exactly needs no marker)."
        )
    return Suppression(marker, bounds[0], bounds[1])


def missing_odds_value(value, setting: str) -> MissingOdds:
    """{ group = "non-white", odds = 2.0 } (or a MissingOdds already)."""
    if isinstance(value, MissingOdds):
        return value
    example = 'e.g. unknown_group_odds = { group = "non-white", odds = 2.0 }'
    odds = value.get("odds") if isinstance(value, dict) else None
    if (not isinstance(value, dict) or set(value) != {"group", "odds"}
            or not isinstance(value["group"], str) or isinstance(odds, bool)
            or not isinstance(odds, int | float) or not 0 < odds < math.inf):  # fmt: skip
        raise SaeInputError(
            f"{setting} must name a group and the odds (a positive number) of its events lacking "
            f"their group relative to the others', {example}."
        )
    return MissingOdds(value["group"], float(odds))


def pool_value(value, setting: str) -> tuple[PeriodPool, ...]:
    """[[2013, 2017], [2018, 2022]]: each a first and a last period (or PeriodPools already)."""
    example = "e.g. pool = [[2013, 2017], [2018, 2022]]"
    if not isinstance(value, list | tuple):
        raise SaeInputError(f"{setting} must be a list of [first, last] periods, {example}.")
    pools = []
    for item in value:
        if isinstance(item, PeriodPool):
            pools.append(item)
            continue
        pair = isinstance(item, list | tuple) and len(item) == 2
        if not pair or not all(isinstance(v, int | str) and not isinstance(v, bool) for v in item):
            raise SaeInputError(
                f"{setting}: {item!r} must be a first and a last period (years, or labels of "
                f"[data] periods), {example}."
            )
        pools.append(PeriodPool(item[0], item[1]))
    return tuple(pools)


def section_as_dict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def spec_to_toml(spec: Spec, relative_to: Path | None = None) -> str:
    """The spec as TOML that `load_spec` reads back to an equal spec; None settings are left out.

    With `relative_to` (a directory) paths are written relative to it, so a folder that moves
    together with its data keeps working; otherwise they are written as they are.
    """
    lines = [f"title = {json.dumps(spec.title, ensure_ascii=False)}"]
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        for key, value in section_as_dict(getattr(spec, section)).items():
            if isinstance(value, Path) and relative_to is not None:
                value = os.path.relpath(value, relative_to)
            if value is not None:
                lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, Suppression):
        return (f"{{ marker = {json.dumps(value.marker, ensure_ascii=False)}, "
                f"range = [{value.lower}, {value.upper}] }}")  # fmt: skip
    if isinstance(value, MissingOdds):
        return f"{{ group = {json.dumps(value.group, ensure_ascii=False)}, odds = {value.odds!r} }}"
    if isinstance(value, PeriodPool):
        return f"[{toml_value(value.first)}, {toml_value(value.last)}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf and nan are TOML too
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
