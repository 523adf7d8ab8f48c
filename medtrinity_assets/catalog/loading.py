"""load_catalog: YAML -> validated `Catalog`; every fault names the source and the field.

Checked at load, before any file is listed: the schema (pydantic), root and path containment
(a relative root stays inside the catalog's directory; no root is a system directory; no
pattern or path climbs out with ``..`` or is absolute; remote roots are refused), regexes
(compiled, templates known, ``(?P<label>)`` present), and modalities (against the vocabulary plus
the catalog's own `modalities:`). With ``check_files=True`` every source is also listed, so
file-level faults (no root, patterns that match nothing, unreadable label tables) fail here too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from medtrinity_assets.catalog.models import Catalog, CatalogError, ExplicitLayout, FilesLayout, SourceConfig
from medtrinity_assets.catalog.names import capture_groups, check_regex, templates_in
from medtrinity_assets.ingest.modalities import ExtraModality, canonical_modality, known_modalities
from medtrinity_resources.yaml_config import read_yaml_mapping, validate_config

SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/var/run")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def load_catalog(path: str | os.PathLike[str], check_files: bool = False) -> Catalog:
    """Read and validate a catalog YAML; errors name the source and the field."""
    p = Path(path)
    raw = read_yaml_mapping(p, "catalog", CatalogError)
    cat = validate_config(
        Catalog, {**raw, "path": str(p.resolve())}, raw, CatalogError, {"sources": "source"}, "catalog", f"invalid catalog {p}: "
    )
    problems = [f"source '{s.name}': field '{field}': {msg}" for s in cat.sources for field, msg in source_problems(cat, s)]
    if problems:
        raise CatalogError(f"invalid catalog {p}: " + "; ".join(problems))
    if check_files:
        from medtrinity_assets.catalog.listing import list_source

        for source in cat.sources:
            list_source(cat, source)
    return cat


def source_problems(cat: Catalog, source: SourceConfig) -> list[tuple[str, str]]:
    """(field, message) for every static fault of one source."""
    out = _root_problems(cat, source)
    out += _modality_problems(source, tuple(cat.modalities))
    layout = source.layout
    if isinstance(layout, FilesLayout):
        out += _files_problems(layout)
    else:
        out += _explicit_problems(layout)
    return out


def _root_problems(cat: Catalog, source: SourceConfig) -> list[tuple[str, str]]:
    if _SCHEME_RE.match(source.root):
        return [("root", f"'{source.root}' is a remote location; a root must be a local directory (mount or sync it)")]
    resolved = cat.source_root(source)
    if not os.path.isabs(source.root):
        base = os.path.realpath(str(Path(cat.path).parent))
        if os.path.commonpath([resolved, base]) != base:
            return [("root", f"'{source.root}' leaves the catalog's directory {base} (give an absolute path instead)")]
    if resolved == "/" or any(resolved == d or resolved.startswith(d + "/") for d in SYSTEM_DIRS):
        return [("root", f"'{source.root}' resolves to the system directory {resolved}")]
    return []


def _contained(value: str) -> str | None:
    """Why a path or pattern relative to the root is not contained in it, or None."""
    if not value.strip():
        return "must not be empty"
    if os.path.isabs(value) or value.startswith("~"):
        return f"'{value}' must be relative to the source root"
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return f"'{value}' climbs out of the source root ('..')"
    return None


def _modality_problems(source: SourceConfig, extra: tuple[ExtraModality, ...]) -> list[tuple[str, str]]:
    found = [("modality", source.modality)]
    found += [(f"overrides.{i}.modality", o.modality) for i, o in enumerate(source.overrides) if o.modality]
    if isinstance(source.layout, ExplicitLayout):
        found += [(f"layout.items.{i}.modality", it.modality) for i, it in enumerate(source.layout.items) if it.modality]
    elif source.layout.names is not None:
        found += [(f"layout.names.modality.{k}", v) for k, v in source.layout.names.modality.items()]
    out = []
    for field, value in found:
        if canonical_modality(value, extra) is None:
            known = ", ".join(known_modalities(extra))
            out.append((field, f"unknown modality '{value}' (known: {known}, auto; add new ones under the catalog's 'modalities:')"))
    return out


def _files_problems(layout: FilesLayout) -> list[tuple[str, str]]:
    out = []
    for i, pattern in enumerate(layout.image_patterns):
        field = "layout.images" + (f".{i}" if isinstance(layout.images, list) else "")
        if (why := _contained(pattern)) or (templates_in(pattern) and (why := "templates are not allowed in image patterns")):
            out.append((field, why))
    groups: set[str] = set()
    if layout.names is not None:
        if why := check_regex(layout.names.regex, set()):
            out.append(("layout.names.regex", why))
        else:
            groups = capture_groups(layout.names)
            if "stem" in groups:
                out.append(("layout.names.regex", "the group name 'stem' is reserved for the file stem"))
    known = {"stem"} | groups
    for i, spec in enumerate(layout.masks):
        field = f"layout.masks.{i}"
        if why := _contained(spec.pattern):
            out.append((f"{field}.pattern", why))
        elif unknown := templates_in(spec.pattern) - known:
            out.append((f"{field}.pattern", f"unknown template(s) {sorted(unknown)} (known: {sorted(known)})"))
        if spec.label_regex is not None and (why := check_regex(spec.label_regex, known, needs=("label",))):
            out.append((f"{field}.label_regex", why))
        if isinstance(spec.label_table, str) and (why := _contained(spec.label_table)):
            out.append((f"{field}.label_table", why))
    return out


def _explicit_problems(layout: ExplicitLayout) -> list[tuple[str, str]]:
    out = []
    for i, item in enumerate(layout.items):
        if why := _contained(item.image):
            out.append((f"layout.items.{i}.image", why))
        for j, mask in enumerate(item.masks):
            if why := _contained(mask.path):
                out.append((f"layout.items.{i}.masks.{j}.path", why))
            if isinstance(mask.label_table, str) and (why := _contained(mask.label_table)):
                out.append((f"layout.items.{i}.masks.{j}.label_table", why))
    return out
