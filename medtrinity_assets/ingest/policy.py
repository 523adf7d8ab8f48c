"""The ingestion policy: how a source file becomes display-ready 2D slices.

Declared per source in the catalog (``ingest:`` block) and recorded with every image, so a
published image can always be traced to the exact slicing / intensity / size rules applied.
Unknown fields are rejected (``extra="forbid"``) so a typo in a catalog names the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CtWindowName = Literal["lung", "mediastinum", "soft_tissue", "bone", "brain", "abdomen"]

#: CT display windows as (center, width) in Hounsfield units.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (50.0, 400.0),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlicingPolicy(_Strict):
    """Which 2D slices a volume or frame stack yields.

    select:
      ``roi``    slices carrying any ground-truth mask foreground, `count` evenly spaced among
                 them; falls back to ``even`` when the item has no masks
      ``even``   `count` slices evenly spaced over the whole stack
      ``stride`` every `stride`-th slice
      ``all``    every slice
    `min_foreground` drops slices whose fraction of non-background pixels is below it (e.g. air).
    """

    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    select: Literal["roi", "even", "stride", "all"] = "roi"
    count: int = Field(4, ge=1)
    stride: int = Field(1, ge=1)
    min_foreground: float = Field(0.0, ge=0.0, le=1.0)
    resample_isotropic: bool = True


class IntensityPolicy(_Strict):
    """How source values become 8-bit display values.

    mode ``auto``: colour -> unchanged (8-bit) or scaled from its bit depth; CT in HU -> a CT
    window chosen from the item's organs (or `ct_window`); other DICOM with a header window /
    VOI LUT -> that; 8-bit rasters and 8-bit DICOM -> unchanged; everything else (MR, 16-bit,
    float, any volume file) -> `percentiles` clipping.
    """

    mode: Literal["auto", "ct_window", "mr_percentile", "minmax", "none"] = "auto"
    ct_window: CtWindowName | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)

    @model_validator(mode="after")
    def _ordered_percentiles(self) -> IntensityPolicy:
        lo, hi = self.percentiles
        if not (0.0 <= lo < hi <= 100.0):
            raise ValueError("percentiles must satisfy 0 <= low < high <= 100")
        return self


class OutputPolicy(_Strict):
    """Output size: the longest side is downscaled to `max_side` (aspect kept, never upscaled)."""

    max_side: int = Field(1024, ge=8)
    min_side: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> OutputPolicy:
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")
        return self


class IngestPolicy(_Strict):
    """Per-source ingestion rules (see the module docstring)."""

    slicing: SlicingPolicy = SlicingPolicy()
    intensity: IntensityPolicy = IntensityPolicy()
    output: OutputPolicy = OutputPolicy()
    keep_colour: bool = True
    max_pixels: int = Field(100_000_000, ge=1)  # decompression-bomb guard (all frames together)
    patient_salt_env: str = "MEDTRINITY_PATIENT_SALT"
