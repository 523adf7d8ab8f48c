"""The catalog's pydantic models: a source, its layout adapter, mask specs, name capture, label rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from medtrinity_assets.ingest.conventions import CONVENTIONS, known_convention
from medtrinity_assets.ingest.modalities import ExtraModality
from medtrinity_assets.ingest.policy import IngestPolicy
from medtrinity_assets.phi.policy import PhiPolicy
from medtrinity_resources.yaml_config import unique_names

Convention = Annotated[str, AfterValidator(known_convention)]  # a name of ingest/conventions.py
BoxFormat = Literal["xyxy", "xyxy_inclusive", "xywh"]
NAME_RE = r"^[a-z][a-z0-9_]{1,62}$"


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names the source and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaskSpec(_Strict):
    """Where the masks of an image are and how to read them.

    `pattern` is a glob relative to the source root; ``{stem}`` is the image file name without
    its extension, and ``{<group>}`` any named group of the layout's `names.regex` (a mask named
    after part of the image's name: ``labels/{case}_seg.nii.gz`` beside ``scans/{case}_scan.nii.gz``).
    `label_regex` runs on the mask's file stem: group ``label`` (and optional ``instance``);
    the same templates are allowed in it.
    """

    pattern: str
    convention: Convention
    label: str | None = None  # fixed label (binary/threshold/instance)
    label_regex: str | None = None
    label_table: dict[int, str] | str | None = None  # multilabel: mapping or a JSON file relative to root
    threshold: int = 127
    box_format: BoxFormat = "xyxy"

    @model_validator(mode="after")
    def _needs_a_label(self) -> "MaskSpec":
        needs = CONVENTIONS[self.convention].needs
        if needs == "label_table" and self.label_table is None:
            raise ValueError(f"label_table is required for convention '{self.convention}'")
        if needs == "label" and not (self.label or self.label_regex):
            raise ValueError(f"label or label_regex is required for convention '{self.convention}'")
        return self


class NameCapture(_Strict):
    """Facts taken from the image's path (relative, extension removed) by a regex's named groups.

    Group ``modality`` is mapped through `modality` (a value that is itself a known modality
    spelling needs no entry), group ``organ`` through `organs` (empty mapping: the value as
    written, ``_`` read as a space). Every named group is also a template for mask patterns.
    An image whose path does not match (or whose value has no mapping) is a manifest reject
    when `required`, else it keeps the source's defaults.
    """

    regex: str
    modality: dict[str, str] = {}
    organs: dict[str, str | list[str]] = {}
    required: bool = True


class LabelRules(_Strict):
    """How structure labels are written (mask labels: regex captures, label tables, fixed labels).

    Applied in order: `separators` become spaces; `case`; `words` replaced one by one (e.g.
    ``{lt: left}``); side words (left, right, bilateral) moved `side` (first | last); spaces
    collapsed; then whole labels renamed by `rename`.
    """

    separators: str = "_"
    case: Literal["keep", "lower"] = "keep"
    words: dict[str, str] = {}
    side: Literal["keep", "first", "last"] = "keep"
    rename: dict[str, str] = {}


class ExplicitMask(_Strict):
    path: str
    convention: Convention
    label: str | None = None
    label_table: dict[int, str] | str | None = None
    threshold: int = 127
    box_format: BoxFormat = "xyxy"


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
    names: NameCapture | None = None
    masks: list[MaskSpec] = []

    @property
    def image_patterns(self) -> list[str]:
        return [self.images] if isinstance(self.images, str) else list(self.images)


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
    # many small instances of one label on an image (nuclei, cells): one ROI each (each), or, above
    # group_above instances, one group ROI per label whose mask is their union, with the count and
    # size distribution as typed measurements (group)
    instances: Literal["each", "group"] = "each"
    # what several ROIs of one label on an image are: separate objects (instances: nuclei, lesions,
    # polyps) or separate pieces of one structure cut by the slice (parts: per-organ label maps,
    # where a liver seen in two pieces is still one liver); captions and checks count accordingly
    components: Literal["instances", "parts"] = "instances"
    group_above: int = Field(20, ge=1)
    # an image that repeats an earlier one of its shard (same pixels or a confirmed near copy) is
    # described once (drop) or again (keep); it is recorded in images.duplicate_of either way
    duplicates: Literal["drop", "keep"] = "drop"


class SourceConfig(_Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    title: str
    modality: str  # a vocabulary name (ingest/modalities.yaml, or the catalog's `modalities:`) | auto (DICOM header)
    organs: list[str] = []
    format: Literal["dicom", "nifti", "nrrd", "mha", "png", "jpeg", "tiff", "auto"] = "auto"
    root: str  # a local directory: relative to the catalog file (inside its directory) or absolute
    layout: Layout
    labels: LabelRules | None = None
    licence: str
    citation: str = ""
    redistributable: bool
    overrides: list[Override] = []
    ingest: IngestPolicy = IngestPolicy()
    rois: RoiSettings = RoiSettings()
    phi: PhiPolicy = PhiPolicy()  # burned-in text: auto | mask | quarantine | allow (medtrinity_assets/phi)
    concepts: dict[str, str] = {}  # ROI label or finding -> concept id (DOID:… / UBERON:…), see data/knowledge/concepts.yaml


class Catalog(_Strict):
    version: int = 1
    shard_count: int = Field(4, ge=1, le=1024)
    modalities: list[ExtraModality] = []  # the user's additions to the modality vocabulary
    sources: list[SourceConfig]
    path: str = ""  # where the catalog was read from (set by load_catalog)

    @model_validator(mode="after")
    def _unique_names(self) -> "Catalog":
        unique_names((s.name for s in self.sources), "source")
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
        """The source's root directory, resolved (relative roots are taken from the catalog's directory)."""
        if os.path.isabs(source.root):
            return os.path.realpath(source.root)
        return str((Path(self.path).parent / source.root).resolve())
