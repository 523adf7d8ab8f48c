"""Typed display frames and native values of a displayed plane.

`display_frame` says how a displayed plane relates to the patient (plane, lateral convention,
image-up, world coordinates where the source has a patient/template space); `native_plane`
keeps the plane's native values (HU for CT, the stored values otherwise) on the display grid,
so ROI measurements are made on what the scanner measured, not on the windowed display.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from medtrinity_assets.ingest.orientation import PLANE_FRAMES, RADIOGRAPH_FRAME, plane_world_frame
from medtrinity_assets.ingest.stack import Stack
from medtrinity_assets.records import DisplayFrame

RADIOGRAPHIC = "radiographic"


def display_frame(stack: Stack, axis: str, index: int, out_hw: tuple[int, int], spacing_rc: tuple[float, float] | None) -> DisplayFrame:
    """The typed frame of plane `index` along `axis` (``frame`` for as-acquired 2D frames)."""
    if axis == "frame":
        conv = RADIOGRAPH_FRAME if stack.frame_orientation.startswith(RADIOGRAPHIC) else {}
        return DisplayFrame(**conv, spacing_rc=spacing_rc)  # type: ignore[arg-type]
    conv = PLANE_FRAMES[axis]
    if stack.world is None or any(s is None for s in stack.spacing):
        return DisplayFrame(**conv, spacing_rc=spacing_rc)  # type: ignore[arg-type]
    origin, row_dir, col_dir, spacing = plane_world_frame(
        axis, index, stack.spatial_shape, stack.spacing, stack.world, out_hw  # type: ignore[arg-type]
    )
    return DisplayFrame(**conv, world_origin=origin, world_row_dir=row_dir, world_col_dir=col_dir, spacing_rc=spacing)  # type: ignore[arg-type]


def native_plane(stack: Stack, raw: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    """(float32 native values resized like the display, unit) or (None, None).

    Kept for every grey plane (the display may be windowed or stretched): HU for CT, the stored
    values (MR signal, X-ray/US/NM counts, 8-bit grey) otherwise. Colour sources are measured on
    their own pixels.
    """
    if stack.rgb or raw.ndim != 2:
        return None, None
    values = np.ascontiguousarray(raw, dtype=np.float32)
    if values.shape != out_hw:
        img = Image.fromarray(values, mode="F")
        values = np.asarray(img.resize((out_hw[1], out_hw[0]), Image.Resampling.BILINEAR), dtype=np.float32)
    return values, "HU" if stack.hu else "raw"
