"""The one YAML configuration loader: the catalog, knowledge corpora, releases and experts use it.

- `read_yaml_mapping(path, what, error)`  the file as a mapping; a missing file, invalid YAML
  (with line and column) or a non-mapping fails with `error(message)`
- `describe_validation_error(err, raw, entries, top)`  pydantic errors as
  ``<entry kind> '<name>': field '<a.b.c>': <message>`` joined by ``; ``

Each configuration keeps its own exception type (passed as `error`, any callable taking the
message), so callers and tests catch what they caught before; the wording is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration file that cannot be used (the default error type)."""


ErrorFactory = Callable[[str], Exception]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else str(problem)


def read_yaml_mapping(path: str | Path, what: str, error: ErrorFactory = ConfigError) -> dict[str, Any]:
    """The parsed YAML mapping of `path` ({} for an empty file); `what` names the file in messages."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{what} file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{what} {p} is not valid YAML: {_yaml_problem(exc)}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise error(f"{what} {p} cannot be read: {type(exc).__name__}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{what} {p} must be a mapping, not a {type(raw).__name__}")
    return raw


def unique_names(names: Iterable[str], what: str) -> None:
    """ValueError naming the first repeated name (inside a pydantic validator: a validation error)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} name '{name}'")
        seen.add(name)


def entry_name(raw: Mapping[str, Any], key: str, index: Any) -> str:
    """The `name` of entry `index` of the list/mapping `raw[key]` (its key for a mapping, else #index)."""
    entries = raw.get(key)
    if isinstance(entries, Mapping):
        return str(index)
    if isinstance(entries, list) and isinstance(index, int) and index < len(entries):
        entry = entries[index]
        if isinstance(entry, Mapping) and entry.get("name"):
            return str(entry["name"])
    return f"#{index}"


def describe_validation_error(
    err: ValidationError, raw: Mapping[str, Any], entries: Mapping[str, str] | None = None, top: str = "file"
) -> str:
    """Every error of `err` as ``<where>: field '<path>': <message>``.

    `entries` maps a top-level key holding named entries (e.g. ``sources``) to what one entry is
    called (``source``): errors inside an entry are attributed to it by name. An empty `top`
    leaves errors outside entries unattributed (the caller's message names the entry).
    """
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        where = top
        if entries and len(loc) >= 2 and loc[0] in entries:
            where = f"{entries[loc[0]]} '{entry_name(raw, loc[0], loc[1])}'"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc) or "(entry)"
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: field '{field}': {message}" if where else f"field '{field}': {message}")
    return "; ".join(lines)


def validate_config(
    model: Any,
    data: Mapping[str, Any],
    raw: Mapping[str, Any],
    error: ErrorFactory = ConfigError,
    entries: Mapping[str, str] | None = None,
    top: str = "file",
    prefix: str = "",
) -> Any:
    """`model.model_validate(data)`; a ValidationError becomes `error(prefix + described errors)`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(prefix + describe_validation_error(exc, raw, entries, top)) from None
