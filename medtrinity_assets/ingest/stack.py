"""Decoded pixels of one source item, before slicing: the readers' common output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtrinity_assets.ingest.orientation import AS_ACQUIRED, Reorientation, WorldGrid


def _identity(array: np.ndarray) -> np.ndarray:
    return array


@dataclass
class Stack:
    """A volume or a stack of 2D frames.

    kind ``volume``: `data` is canonical V[z, y, x(, 3)] (LPS: x->Left, y->Posterior, z->Superior),
    planes are cut with `orientation.cut_plane`. kind ``frames``: `data` is (frames, rows, cols(, 3))
    as acquired (a single 2D image is one frame).
    `to_canonical` maps an array on the source's stored pixel grid (frames/slices, rows, cols) to
    `data`'s grid, so raster masks drawn on the stored grid follow the same permutation/flips.
    """

    data: np.ndarray
    kind: str  # volume | frames
    spacing: tuple[float | None, float | None, float | None] = (None, None, None)  # (z, y, x) mm
    rgb: bool = False
    hu: bool = False
    header_window: tuple[float, float, str] | None = None
    voi_lut: tuple[np.ndarray, int, int] | None = None
    monochrome1: bool = False
    bits_stored: int | None = None
    native_axis: str | None = None  # volumes: plane of the stored slices
    frame_orientation: str = AS_ACQUIRED  # frames: display convention text
    reorientation: Reorientation | None = None
    to_canonical: Callable[[np.ndarray], np.ndarray] = _identity
    stored_shape: tuple[int, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)  # technical, PHI-free
    patient_id: str = ""  # only ever hashed, never written
    # DICOM geometry of the stored slices (for DICOM-SEG masks): positions along the normal, SOP UIDs
    slice_positions: list[float] | None = None
    slice_uids: list[str] | None = None
    slice_normal: np.ndarray | None = None
    # volumes with a real world frame: where the canonical voxels lie in LPS millimetres
    world: WorldGrid | None = None

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape[:3])  # type: ignore[return-value]


@dataclass
class MaskVolume:
    """One mask source decoded onto the item's grid (same spatial shape as Stack.data).

    `data` holds integer ids (binary/threshold already reduced to 0/1).
    """

    data: np.ndarray  # (Z, Y, X) integer
    convention: str  # binary | multilabel | instance
    label: str
    label_table: dict[int, str] | None = None
    instance: int | None = None
    label_id: int | None = None
