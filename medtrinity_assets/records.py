"""In-memory records passed between the pipeline's pure functions.

These are the contracts between stages: ingestion produces `Slice2D`s (pixels plus aligned
ground-truth mask layers), ROI grounding turns mask layers into `ROI`s, captioning consumes
`CaptionFacts`. What is persisted is described by `medtrinity_assets.schema` and docs/record_schema.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtrinity_assets.measurements import Measurements  # noqa: F401  (a stage record: imported from here)


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


class MaskLayer:
    """A boolean mask aligned pixel-for-pixel with a `Slice2D`'s pixels, stored sparsely.

    The layer keeps only its bounding-box crop (`crop`, bool) placed at `offset` (row, col) in
    an image of `shape` (H, W); `mask` builds the full (H, W) bool array on each access, so an
    image with thousands of instances holds thousands of small crops, not thousands of full
    frames. `MaskLayer(label, full_mask, ...)` crops a full mask; `MaskLayer.from_crop` takes a
    crop directly. A mask that is not 2-D is kept as given (consumers reject it).
    """

    __slots__ = ("label", "instance", "label_id", "crop", "offset", "shape")

    def __init__(self, label: str, mask: np.ndarray, instance: int | None = None, label_id: int | None = None) -> None:
        self.label, self.instance, self.label_id = label, instance, label_id
        self.mask = mask

    @classmethod
    def from_crop(
        cls,
        label: str,
        crop: np.ndarray,
        offset: tuple[int, int],
        shape: tuple[int, int],
        instance: int | None = None,
        label_id: int | None = None,
    ) -> "MaskLayer":
        layer = cls.__new__(cls)
        layer.label, layer.instance, layer.label_id = label, instance, label_id
        layer.crop = np.asarray(crop, dtype=bool)
        layer.offset = (int(offset[0]), int(offset[1]))
        layer.shape = (int(shape[0]), int(shape[1]))
        return layer

    @property
    def mask(self) -> np.ndarray:
        if self.crop.ndim != 2 or tuple(self.crop.shape) == self.shape:
            return self.crop
        full = np.zeros(self.shape, dtype=bool)
        r, c = self.offset
        full[r : r + self.crop.shape[0], c : c + self.crop.shape[1]] = self.crop
        return full

    @mask.setter
    def mask(self, value: np.ndarray) -> None:
        arr = np.asarray(value)
        if arr.ndim != 2:
            self.crop, self.offset, self.shape = arr, (0, 0), tuple(int(s) for s in arr.shape)
            return
        fg = arr if arr.dtype == bool else arr != 0
        rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
        if rows.size == 0:
            self.crop, self.offset = np.zeros((0, 0), dtype=bool), (0, 0)
        else:
            self.crop = np.ascontiguousarray(fg[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
            self.offset = (int(rows[0]), int(cols[0]))
        self.shape = (int(arr.shape[0]), int(arr.shape[1]))

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.crop))

    def __repr__(self) -> str:
        return (
            f"MaskLayer(label={self.label!r}, instance={self.instance}, label_id={self.label_id}, "
            f"shape={self.shape}, offset={self.offset}, crop={tuple(self.crop.shape)})"
        )


@dataclass
class Slice2D:
    """A standardised 2D image ready to be written, with aligned ground-truth masks."""

    pixels: np.ndarray  # uint8, (H, W) grey or (H, W, 3) RGB
    masks: list[MaskLayer]
    slice_axis: str | None = None  # None for 2D sources; axial | coronal | sagittal | frame
    slice_index: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable, PHI-free
    # native values on the display grid (float32 (H, W); HU for CT, before windowing); None when
    # the pixels are the source's own values (8-bit rasters, RGB photographs)
    native: np.ndarray | None = None
    native_unit: str | None = None  # HU | raw
    frame: "DisplayFrame | None" = None

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
class LabelMap:
    """An expert model's answer for one image: an integer id per pixel, with what the ids mean.

    kind ``semantic``: ids are classes (0 = background); ROI grounding makes one ROI per connected
    component of each class, scored by the mean of `confidence` over the component.
    kind ``instance``: ids are instances (0 = none), each one ROI with `scores[id]`; where
    instances overlap the higher-scoring one holds the pixel.
    """

    ids: np.ndarray  # int32 (H, W)
    labels: dict[int, str]  # semantic: class id -> label; instance: instance id -> its class label
    origin: str  # model:<name>@<version>
    kind: str = "semantic"
    confidence: np.ndarray | None = None  # semantic: float32 (H, W) probability of the chosen class
    scores: dict[int, float] = field(default_factory=dict)  # instance: detection score per id


@dataclass
class Passage:
    """A retrieved knowledge chunk (``concept_ids``: the concepts it is about, when known)."""

    chunk_id: str
    corpus: str
    title: str
    text: str
    score: float
    concept_ids: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Typed facts (the contract between ROI grounding, knowledge and caption writing/checking).
# Facts flow as these fields; wording is produced only when a caption or a VQA pair is written.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisplayFrame:
    """How a displayed 2D image relates to the patient, as recorded by ingestion.

    plane:         axial | coronal | sagittal | projection | None (photographs, microscopy)
    lateral:       radiological (image left = patient right) | neurological | None (no side claim)
    up:            what image-up points to: anterior | superior | None
    anterior_side: sagittal images: the image side facing anterior, left | right | None
    world_*:       pixel (row, col) -> patient LPS millimetres, where the source has a world frame:
                   world = origin + row * row_dir * spacing_rc[0] + col * col_dir * spacing_rc[1]
                   (row/col are displayed-pixel indices after orientation, slicing and resize).
    spacing_rc:    mm per displayed pixel (row, col), where known.
    """

    plane: str | None = None
    lateral: str | None = None
    up: str | None = None
    anterior_side: str | None = None
    world_origin: tuple[float, float, float] | None = None
    world_row_dir: tuple[float, float, float] | None = None
    world_col_dir: tuple[float, float, float] | None = None
    spacing_rc: tuple[float, float] | None = None


@dataclass(frozen=True)
class GridPosition:
    """Where an ROI lies. Image frame always; patient frame only when the display frame allows.

    row, col:       position-grid cell of the box centre (grid/grid.yaml: 5 x 5 by default),
                    0 = top / image left.
    patient_side:   right | left | midline | None (decided from world coordinates when the frame
                    has them; None = no side may be claimed)
    patient_level:  anterior | posterior | superior | inferior | central | None (by the grid row
                    and the frame's image-up direction)
    patient_depth:  sagittal images: anterior | central | posterior by the grid column
    """

    row: int
    col: int
    patient_side: str | None = None
    patient_level: str | None = None
    patient_depth: str | None = None  # sagittal images: anterior | central | posterior


@dataclass(frozen=True)
class Relation:
    """One typed relation of an ROI to another structure on the same image.

    kind:       within | overlaps | borders | contains | direction
    other:      the other structure's label (raw; worded at caption time)
    direction:  kind == direction: image frame left | right | above | below, or patient frame
                patient_right | patient_left | anterior | posterior | superior | inferior
    count:      how many structures of that label (contains 3 nuclei)
    """

    kind: str
    other: str
    direction: str | None = None
    count: int = 1


@dataclass(frozen=True)
class ConceptRef:
    """A label or finding mapped to a concept (Disease Ontology id for findings, anatomy id for structures).

    kind:        finding | anatomy | normal (explicitly normal / no finding)
    match_type:  exact | synonym | alias (data/knowledge/concepts.yaml) | catalog (user mapping) | normalised | none (unmapped)
    """

    concept_id: str
    kind: str
    name: str
    matched: str = ""
    match_type: str = "exact"


@dataclass(frozen=True)
class Intensity:
    """The measured mean intensity of another structure on the same image: the one ROI of its label
    there, or the union of the parts of one structure (`Measurements.mean` / `std` in `unit`, HU |
    relative | rgb, pooled over the parts), for comparisons with it."""

    label: str
    unit: str
    mean: float
    std: float
    area_px: int


@dataclass
class CaptionFacts:
    """Everything the caption writer may state, as typed facts (no prose to be parsed back).

    `roi_position` is the image-terms name of the grid cell (the ``position`` column); the typed
    fields (`position`, `frame`, `relations`, `contacts`, `measurements`, concepts) carry the facts."""

    modality: str
    organs: list[str]
    coarse_caption: str
    roi_label: str | None  # None when the image has no ROI (whole-image description)
    roi_position: str | None  # legacy image-terms phrase, e.g. "upper left-center"
    roi_area_frac: float | None
    roi_relations: list[str] = field(default_factory=list)  # deprecated: relation sentences (use `relations`)
    image_labels: list[str] = field(default_factory=list)
    other_rois: list[str] = field(default_factory=list)
    knowledge: list[Passage] = field(default_factory=list)
    orientation: str = ""  # display convention text recorded by ingestion (human-readable provenance)
    extra: dict[str, Any] = field(default_factory=dict)
    # typed facts
    frame: DisplayFrame | None = None
    position: GridPosition | None = None
    relations: list[Relation] = field(default_factory=list)
    contacts: list[str] | None = None  # every structure the ROI touches or overlaps (None: not recorded)
    measurements: Measurements | None = None
    roi_concept: ConceptRef | None = None  # the ROI label's concept
    finding_concepts: list[ConceptRef] = field(default_factory=list)  # recorded image-level findings
    spacing_mm: tuple[float, float] | None = None  # (row, col) mm per displayed pixel
    other_intensities: list[Intensity] = field(default_factory=list)  # other structures' measured means (one per structure)


@dataclass(frozen=True)
class KnowledgeChunk:
    """A word window of a knowledge document as indexed and as read back from the knowledge store.

    `chunk_id` is ``corpus:doc_id:chunk_no``; `content_hash` changes whenever what is embedded or
    stored changes; `metadata` holds scalars only (str, int, float, bool). The knowledge stage's
    `Chunk` adds the embedding text; the store's `fetch` returns this record.
    """

    chunk_id: str
    corpus: str
    doc_id: str
    chunk_no: int
    title: str
    text: str
    content_hash: str
    concept_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
