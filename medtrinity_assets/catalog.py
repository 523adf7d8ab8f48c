"""The source catalog: one declarative YAML entry per source, validated with pydantic.

A source names its modality, organs, licence and a *layout adapter* that turns the files
under its root into `SourceItem`s. Adding a source of a supported layout needs no code:

- ``files``    images matched by glob(s); optional masks found by a name template
- ``explicit`` items listed one by one (image, masks, per-item modality/organs/labels)

Per-item ``overrides`` (glob on the relative path) refine modality, organs and labels.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medtrinity_assets.ingest.policy import IngestPolicy
from medtrinity_assets.records import MaskRef, SourceItem

MASK_CONVENTIONS = ("binary", "threshold", "multilabel", "instance", "boxes", "polygons")
ANNOTATION_CONVENTIONS = ("boxes", "polygons")  # one file for many images
Convention = Literal["binary", "threshold", "multilabel", "instance", "boxes", "polygons"]
IMAGE_FORMATS = ("dicom", "nifti", "nrrd", "mha", "png", "jpeg", "tiff", "auto")
NAME_RE = r"^[a-z][a-z0-9_]{1,62}$"


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names the source and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaskSpec(_Strict):
    """Where the masks of an image are and how to read them."""

    pattern: str  # relative to the source root; {stem} = image file name without extension(s)
    convention: Convention
    label: str | None = None  # fixed label (binary/threshold/instance)
    label_regex: str | None = None  # on the mask stem; group 'label' (and optional 'instance'); {stem} allowed
    label_table: dict[int, str] | str | None = None  # multilabel: mapping or a JSON file relative to root
    threshold: int = 127
    box_format: Literal["xyxy", "xyxy_inclusive", "xywh"] = "xyxy"

    @model_validator(mode="after")
    def _needs_a_label(self) -> "MaskSpec":
        if self.convention == "multilabel" and self.label_table is None:
            raise ValueError("label_table is required for convention 'multilabel'")
        if self.convention not in ("multilabel", *ANNOTATION_CONVENTIONS) and not (self.label or self.label_regex):
            raise ValueError(f"label or label_regex is required for convention '{self.convention}'")
        return self


class ExplicitMask(_Strict):
    path: str
    convention: Convention
    label: str | None = None
    label_table: dict[int, str] | str | None = None
    threshold: int = 127
    box_format: Literal["xyxy", "xyxy_inclusive", "xywh"] = "xyxy"


class ExplicitItem(_Strict):
    image: str
    masks: list[ExplicitMask] = []
    modality: str | None = None
    organs: list[str] | None = None
    labels: list[str] = []


class FilesLayout(_Strict):
    adapter: Literal["files"]
    images: list[str] | str
    exclude: list[str] = []
    masks: list[MaskSpec] = []


class ExplicitLayout(_Strict):
    adapter: Literal["explicit"]
    items: list[ExplicitItem]


Layout = Annotated[FilesLayout | ExplicitLayout, Field(discriminator="adapter")]


class Override(_Strict):
    match: str  # glob on the item's relative path
    modality: str | None = None
    organs: list[str] | None = None
    labels: list[str] | None = None


class RoiSettings(_Strict):
    min_area_px: int = Field(16, ge=1)
    merge_per_label: bool = False
    max_rois_per_image: int = Field(64, ge=1)
    # an image that repeats an earlier one of its shard (same pixels or perceptual hash) is
    # described once (drop) or again (keep); it is recorded in images.duplicate_of either way
    duplicates: Literal["drop", "keep"] = "drop"


class SourceConfig(_Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    title: str
    modality: str  # CT | MRI | X-ray | Ultrasound | Microscopy | ... | auto (from the DICOM header)
    organs: list[str] = []
    format: Literal["dicom", "nifti", "nrrd", "mha", "png", "jpeg", "tiff", "auto"] = "auto"
    root: str  # a local directory, relative to the catalog file or absolute (s3:// roots are rejected when listed)
    layout: Layout
    licence: str
    citation: str = ""
    redistributable: bool
    overrides: list[Override] = []
    ingest: IngestPolicy = IngestPolicy()
    rois: RoiSettings = RoiSettings()

    @field_validator("modality")
    @classmethod
    def _modality_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("modality must not be empty")
        return v


class Catalog(_Strict):
    version: int = 1
    shard_count: int = Field(4, ge=1, le=1024)
    sources: list[SourceConfig]
    path: str = ""  # where the catalog was read from (set by load_catalog)

    @model_validator(mode="after")
    def _unique_names(self) -> "Catalog":
        seen: set[str] = set()
        for s in self.sources:
            if s.name in seen:
                raise ValueError(f"duplicate source name '{s.name}'")
            seen.add(s.name)
        return self

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source named '{name}' in catalog {self.path}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    @property
    def shard_keys(self) -> list[str]:
        width = max(2, len(str(self.shard_count - 1)))
        return [str(i).zfill(width) for i in range(self.shard_count)]

    def source_root(self, source: SourceConfig) -> str:
        if source.root.startswith("s3://") or os.path.isabs(source.root):
            return source.root
        return str((Path(self.path).parent / source.root).resolve())


def _describe_error(raw: dict[str, Any], err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        where = "catalog"
        if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
            idx = loc[1]
            srcs = raw.get("sources") or []
            name = srcs[idx].get("name", f"#{idx}") if idx < len(srcs) and isinstance(srcs[idx], dict) else f"#{idx}"
            where = f"source '{name}'"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc) or "(entry)"
        lines.append(f"{where}: field '{field}': {e['msg']}")
    return "; ".join(lines)


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read and validate a catalog YAML; errors name the source and the field."""
    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"catalog file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {p} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"catalog {p} must be a mapping with a 'sources' list")
    try:
        cat = Catalog.model_validate({**raw, "path": str(p.resolve())})
    except ValidationError as exc:
        raise CatalogError(f"invalid catalog {p}: {_describe_error(raw, exc)}") from None
    return cat


# --------------------------------------------------------------------------- items

_MULTI_EXT = (".nii.gz", ".tar.gz")


def file_stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in _MULTI_EXT:
        if name.endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]


def item_id_for(rel_path: str) -> str:
    parent = os.path.dirname(rel_path)
    stem = file_stem(rel_path)
    return f"{parent}/{stem}" if parent else stem


def shard_of(dataset: str, item_id: str, shard_count: int) -> int:
    """Stable bucket of an item: adding files never moves existing items."""
    digest = hashlib.sha1(f"{dataset}/{item_id}".encode()).hexdigest()
    return int(digest[:12], 16) % shard_count


def detect_format_from_name(path: str) -> str:
    low = path.lower()
    if low.endswith((".nii", ".nii.gz")):
        return "nifti"
    if low.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    if low.endswith((".mha", ".mhd")):
        return "mha"
    if low.endswith(".dcm") or os.path.isdir(path):
        return "dicom"
    if low.endswith(".png"):
        return "png"
    if low.endswith((".jpg", ".jpeg")):
        return "jpeg"
    if low.endswith((".tif", ".tiff")):
        return "tiff"
    return "unknown"


def _label_table(spec: dict[int, str] | str | None, root: str, source: str) -> dict[int, str] | None:
    if spec is None or isinstance(spec, dict):
        return {int(k): v for k, v in spec.items()} if spec else None
    path = os.path.join(root, spec)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"source '{source}': field 'label_table': cannot read {spec}: {exc}") from None
    if isinstance(data, dict) and "labels_present" in data:
        data = data["labels_present"]
    return {int(k): str(v) for k, v in data.items()}


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _glob(root: str, patterns: list[str] | str) -> list[str]:
    pats = [patterns] if isinstance(patterns, str) else patterns
    found: set[str] = set()
    for pat in pats:
        found.update(globlib.glob(os.path.join(root, pat), recursive=True))
    return sorted(found)


def _masks_for(image_path: str, root: str, specs: list[MaskSpec], source: str) -> tuple[MaskRef, ...]:
    stem = file_stem(image_path)
    refs: list[MaskRef] = []
    for spec in specs:
        table = _label_table(spec.label_table, root, source)
        pattern = spec.pattern.replace("{stem}", glob_escape(stem))
        regex = re.compile(spec.label_regex.replace("{stem}", re.escape(stem))) if spec.label_regex else None
        for mpath in _glob(root, pattern):
            if os.path.abspath(mpath) == os.path.abspath(image_path):
                continue
            label, instance = spec.label, None
            if regex is not None:
                m = regex.match(file_stem(mpath))
                if not m:
                    continue
                label = m.group("label").replace("_", " ")
                if "instance" in m.groupdict() and m.group("instance") is not None:
                    instance = int(m.group("instance"))
            refs.append(
                MaskRef(
                    path=os.path.abspath(mpath),
                    convention=spec.convention,
                    label=label,
                    instance=instance,
                    label_table=table,
                    threshold=spec.threshold,
                    image_key=os.path.basename(image_path) if spec.convention in ANNOTATION_CONVENTIONS else None,
                    box_format=spec.box_format,
                )
            )
    return tuple(refs)


def glob_escape(text: str) -> str:
    return globlib.escape(text)


def _apply_overrides(source: SourceConfig, rel_path: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    modality, organs, labels = source.modality, tuple(source.organs), ()
    for ov in source.overrides:
        if fnmatch.fnmatch(rel_path, ov.match):
            modality = ov.modality or modality
            organs = tuple(ov.organs) if ov.organs is not None else organs
            labels = tuple(ov.labels) if ov.labels is not None else labels
    return modality, organs, labels


def list_items(catalog: Catalog, source: SourceConfig) -> list[SourceItem]:
    """All items of a source, sorted by item id, each with its shard."""
    root = catalog.source_root(source)
    if root.startswith("s3://"):
        raise CatalogError(f"source '{source.name}': field 'root': listing s3:// sources is not supported yet")
    if not os.path.isdir(root):
        raise CatalogError(f"source '{source.name}': field 'root': directory not found: {root}")
    width = len(catalog.shard_keys[0])
    items: list[SourceItem] = []

    def make(path: str, masks: tuple[MaskRef, ...], modality: str | None, organs, labels) -> SourceItem:
        rel = _rel(path, root)
        base_mod, base_org, base_lab = _apply_overrides(source, rel)
        iid = item_id_for(rel)
        fmt = source.format if source.format != "auto" else detect_format_from_name(path)
        return SourceItem(
            dataset=source.name,
            item_id=iid,
            image_path=os.path.abspath(path),
            rel_path=rel,
            format=fmt,
            modality=modality or base_mod,
            organs=tuple(organs) if organs is not None else base_org,
            labels=tuple(labels) if labels else base_lab,
            masks=masks,
            shard=str(shard_of(source.name, iid, catalog.shard_count)).zfill(width),
            extra={"source_root": root},
        )

    layout = source.layout
    if isinstance(layout, FilesLayout):
        mask_files: set[str] = set()
        for spec in layout.masks:
            mask_files.update(os.path.abspath(p) for p in _glob(root, re.sub(r"\{stem\}", "*", spec.pattern)))
        for path in _glob(root, layout.images):
            rel = _rel(path, root)
            if os.path.abspath(path) in mask_files and layout.masks:
                continue
            if any(fnmatch.fnmatch(rel, ex) for ex in layout.exclude) or rel.endswith((".txt", ".json", ".jsonl", ".md")):
                continue
            items.append(make(path, _masks_for(path, root, layout.masks, source.name), None, None, None))
    else:
        for it in layout.items:
            path = os.path.join(root, it.image)
            masks = tuple(
                MaskRef(
                    path=os.path.abspath(os.path.join(root, m.path)),
                    convention=m.convention,
                    label=m.label,
                    label_table=_label_table(m.label_table, root, source.name),
                    threshold=m.threshold,
                    image_key=os.path.basename(path) if m.convention in ANNOTATION_CONVENTIONS else None,
                    box_format=m.box_format,
                )
                for m in it.masks
            )
            items.append(make(path, masks, it.modality, it.organs, it.labels))
    items.sort(key=lambda i: i.item_id)
    return items


def item_fingerprint(item: SourceItem) -> str:
    """Size + mtime of the image and its masks: what the change sensor compares."""
    parts = []
    for p in [item.image_path, *[m.path for m in item.masks]]:
        try:
            st = os.stat(p)
            parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{p}:missing")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def item_to_json(item: SourceItem) -> str:
    d = {
        "dataset": item.dataset,
        "item_id": item.item_id,
        "image_path": item.image_path,
        "rel_path": item.rel_path,
        "format": item.format,
        "modality": item.modality,
        "organs": list(item.organs),
        "labels": list(item.labels),
        "masks": [
            {
                "path": m.path,
                "convention": m.convention,
                "label": m.label,
                "instance": m.instance,
                "label_table": {str(k): v for k, v in (m.label_table or {}).items()} or None,
                "threshold": m.threshold,
                "image_key": m.image_key,
                "box_format": m.box_format,
            }
            for m in item.masks
        ],
        "shard": item.shard,
        "extra": item.extra,
    }
    return json.dumps(d, sort_keys=True)


def item_from_json(text: str) -> SourceItem:
    d = json.loads(text)
    masks = tuple(
        MaskRef(
            path=m["path"],
            convention=m["convention"],
            label=m.get("label"),
            instance=m.get("instance"),
            label_table={int(k): v for k, v in m["label_table"].items()} if m.get("label_table") else None,
            threshold=m.get("threshold", 127),
            image_key=m.get("image_key"),
            box_format=m.get("box_format", "xyxy"),
        )
        for m in d["masks"]
    )
    return SourceItem(
        dataset=d["dataset"],
        item_id=d["item_id"],
        image_path=d["image_path"],
        rel_path=d["rel_path"],
        format=d["format"],
        modality=d["modality"],
        organs=tuple(d["organs"]),
        labels=tuple(d["labels"]),
        masks=masks,
        shard=d["shard"],
        extra=d.get("extra", {}),
    )
