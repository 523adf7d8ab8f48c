"""In-memory records passed between the pipeline's pure functions.

These are the contracts between stages: ingestion produces `Slice2D`s (pixels plus
aligned ground-truth mask layers), ROI grounding turns mask layers into `ROI`s,
captioning consumes `CaptionFacts`. What is persisted (Parquet manifests) is described
by `medtrinity_assets.schema` and docs/record_schema.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class RejectError(Exception):
    """An input that cannot be turned into a record.

    `reason` is a short stable code (``corrupt_file``, ``zero_byte_file``, ``shape_mismatch``...)
    that lands in the rejects table; `detail` is the human explanation.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MaskRef:
    """A ground-truth annotation file belonging to one source item.

    convention:
      ``binary``     one structure per file, foreground = nonzero; `label` names it
      ``threshold``  like binary but lossy (JPEG): foreground = value > `threshold`
      ``multilabel`` integer label map; `label_table` maps ids to names
      ``instance``   integer instance map; every nonzero id is one instance of `label`
      ``boxes``      a CSV/JSON box list covering many images; rows of this image (`image_key`)
                     are rasterised as filled rectangles (`box_format`: xyxy | xyxy_inclusive | xywh)
      ``polygons``   a COCO JSON file; this image's annotations are rasterised (pixel centres)
    """

    path: str
    convention: str
    label: str | None = None
    instance: int | None = None
    label_table: dict[int, str] | None = None
    threshold: int = 127
    image_key: str | None = None  # boxes/polygons: the image's name in the annotation file
    box_format: str = "xyxy"


@dataclass(frozen=True)
class SourceItem:
    """One unit of a source: a 2D image, a volume, or a DICOM file/series, with its masks."""

    dataset: str
    item_id: str  # stable id within the dataset (relative path without extension)
    image_path: str  # absolute path: a file, or a directory for a DICOM series
    rel_path: str  # path relative to the source root (provenance)
    format: str  # dicom | nifti | nrrd | mha | png | jpeg | tiff
    modality: str  # catalog modality (CT, MRI, X-ray, ...); DICOM headers may refine it
    organs: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # image-level labels (diagnoses, findings)
    masks: tuple[MaskRef, ...] = ()
    shard: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MaskLayer:
    """A boolean mask aligned pixel-for-pixel with a `Slice2D`'s pixels."""

    label: str
    mask: np.ndarray  # bool, shape (H, W)
    instance: int | None = None
    label_id: int | None = None


@dataclass
class Slice2D:
    """A standardised 2D image ready to be written, with aligned ground-truth masks."""

    pixels: np.ndarray  # uint8, (H, W) grey or (H, W, 3) RGB
    masks: list[MaskLayer]
    slice_axis: str | None = None  # None for 2D sources; axial | coronal | sagittal | frame
    slice_index: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable, PHI-free

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass
class ROI:
    """A region of interest on one Slice2D."""

    label: str
    origin: str  # "ground_truth" or "model:<name>@<version>"
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, inclusive
    mask: np.ndarray  # bool (H, W)
    score: float | None = None
    instance: int | None = None


@dataclass
class Passage:
    """A retrieved knowledge chunk."""

    chunk_id: str
    corpus: str
    title: str
    text: str
    score: float


@dataclass
class CaptionFacts:
    """Everything the caption writer may state, already resolved to text."""

    modality: str
    organs: list[str]
    coarse_caption: str
    roi_label: str | None  # None when the image has no ROI (whole-image description)
    roi_position: str | None  # e.g. "upper-left-center"
    roi_area_frac: float | None
    roi_relations: list[str] = field(default_factory=list)
    image_labels: list[str] = field(default_factory=list)
    other_rois: list[str] = field(default_factory=list)
    knowledge: list[Passage] = field(default_factory=list)
    orientation: str = ""  # display convention recorded by ingestion
    extra: dict[str, Any] = field(default_factory=dict)
