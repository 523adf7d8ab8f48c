"""Where an ROI lies, as typed facts: a 5 x 5 grid cell (image frame) and patient side/level.

Image frame: the cell holding the box centre, the image cut into five equal bands each way
(``band = min(int(5 * centre_fraction), 4)``); row 0 is the top, column 0 the image left.
`position_phrase` names the cell with the fixed vocabulary of the ``position`` column
(``"<vertical> <horizontal>"``, e.g. ``"upper left-center"``) and is never parsed back.

Patient frame (`grid_position`), from the typed `DisplayFrame` recorded by ingestion:

- side (right | left | midline) only from WORLD coordinates: the ROI centroid is mapped to
  patient (LPS) millimetres and compared with the sagittal midplane x = 0 (scanners put the
  table centre there, template spaces such as MNI put the midline there), within
  ``MIDLINE_MM``. A frame without world coordinates (photographs, microscopy, radiographs,
  NIfTI files without a q/s-form) gives no side, whatever the image looks like: the image centre
  is not the patient's midline on a cropped or off-centre field.
- level from the image-up direction of the frame: anterior | central | posterior (axial) or
  superior | central | inferior (coronal, sagittal, projection), by the grid row.
- depth (sagittal only): anterior | central | posterior by the grid column and the frame's
  anterior side.
"""

from __future__ import annotations

import numpy as np

from medtrinity_assets.records import DisplayFrame, GridPosition, RejectError

from .geometry import Box, box_centre

VERTICAL: tuple[str, ...] = ("upper", "upper-middle", "middle", "lower-middle", "lower")
HORIZONTAL: tuple[str, ...] = ("left", "left-center", "center", "right-center", "right")
GRID = 5
MIDLINE_MM = 10.0

#: the names the ``position`` column can hold
POSITION_VOCABULARY: dict[str, tuple[str, ...]] = {
    "vertical": VERTICAL,
    "horizontal": HORIZONTAL,
    "phrases": tuple(f"{v} {h}" for v in VERTICAL for h in HORIZONTAL),
}

_LEVELS = {"anterior": ("anterior", "central", "posterior"), "superior": ("superior", "central", "inferior")}


def grid_band(fraction: float, n: int = GRID) -> int:
    """Index 0..n-1 of the equal band holding `fraction` (0..1)."""
    return min(max(int(fraction * n), 0), n - 1)


def grid_cell(bbox: Box, width: int, height: int) -> tuple[int, int]:
    """(row, col) of the box centre on the 5 x 5 grid; RejectError for a box outside the image."""
    if width <= 0 or height <= 0:
        raise RejectError("bad_size", f"image size must be positive, got {width}x{height}")
    x0, y0, x1, y1 = bbox
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        raise RejectError("bad_box", f"box {tuple(bbox)} outside a {width}x{height} image")
    cx, cy = box_centre(bbox, width, height)
    return grid_band(cy), grid_band(cx)


def position_phrase(bbox: Box, width: int, height: int) -> str:
    """The ``position`` column's name of the grid cell (image terms), e.g. ``"upper left-center"``."""
    row, col = grid_cell(bbox, width, height)
    return f"{VERTICAL[row]} {HORIZONTAL[col]}"


def world_point(frame: DisplayFrame, x: float, y: float) -> np.ndarray | None:
    """LPS millimetres of image point (x, y) in pixels (pixel centres at +0.5), or None."""
    if frame.world_origin is None or frame.world_row_dir is None or frame.world_col_dir is None or frame.spacing_rc is None:
        return None
    origin = np.asarray(frame.world_origin, dtype=float)
    r, c = y - 0.5, x - 0.5
    return (
        origin
        + r * np.asarray(frame.world_row_dir, dtype=float) * frame.spacing_rc[0]
        + c * np.asarray(frame.world_col_dir, dtype=float) * frame.spacing_rc[1]
    )


def patient_side(frame: DisplayFrame | None, centroid_xy: tuple[float, float]) -> str | None:
    """right | left | midline from the world x of the centroid (LPS: x grows to the patient's left)."""
    if frame is None or frame.plane == "sagittal":
        return None
    point = world_point(frame, *centroid_xy)
    if point is None:
        return None
    x = float(point[0])
    if abs(x) <= MIDLINE_MM:
        return "midline"
    return "left" if x > 0 else "right"


def patient_level(frame: DisplayFrame | None, row: int) -> str | None:
    """anterior/central/posterior or superior/central/inferior for grid row `row`, when image-up is known."""
    if frame is None or frame.up not in _LEVELS:
        return None
    words = _LEVELS[frame.up]  # type: ignore[index]
    return words[0] if row < 2 else words[1] if row == 2 else words[2]


def patient_depth(frame: DisplayFrame | None, col: int) -> str | None:
    """Sagittal images: anterior/central/posterior for grid column `col` given the anterior side."""
    if frame is None or frame.plane != "sagittal" or frame.anterior_side not in ("left", "right"):
        return None
    if col == 2:
        return "central"
    on_left = col < 2
    return "anterior" if on_left == (frame.anterior_side == "left") else "posterior"


def grid_position(bbox: Box, width: int, height: int, frame: DisplayFrame | None, centroid_xy: tuple[float, float]) -> GridPosition:
    """The typed position of an ROI: grid cell of its box centre, patient side/level/depth when allowed."""
    row, col = grid_cell(bbox, width, height)
    return GridPosition(
        row=row,
        col=col,
        patient_side=patient_side(frame, centroid_xy),
        patient_level=patient_level(frame, row),
        patient_depth=patient_depth(frame, col),
    )
