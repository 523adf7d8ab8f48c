"""Where an ROI lies, as typed facts: a position-grid cell (image frame) and patient side/level.

Image frame: the cell of the position grid (`medtrinity_assets.grid`, data in ``grid/grid.yaml``;
5 x 5 equal bands by default) holding the box centre; row 0 is the top, column 0 the image left.
`position_phrase` names the cell with the grid's names (the ``position`` column,
``"<row name> <column name>"``, e.g. ``"upper left-center"``) and is never parsed back.

Patient frame (`grid_position`), from the typed `DisplayFrame` recorded by ingestion:

- side (right | left | midline) only from WORLD coordinates: the ROI centroid is mapped to
  patient (LPS) millimetres and compared with the sagittal midplane x = 0 (scanners put the
  table centre there, template spaces such as MNI put the midline there), within
  ``MIDLINE_MM``. A frame without world coordinates (photographs, microscopy, radiographs,
  NIfTI files without a q/s-form) gives no side, whatever the image looks like: the image centre
  is not the patient's midline on a cropped or off-centre field.
- level from the image-up direction of the frame: anterior | central | posterior (axial) or
  superior | central | inferior (coronal, sagittal, projection), by the grid row's side
  (upper | middle | lower).
- depth (sagittal only): anterior | central | posterior by the grid column's side and the
  frame's anterior side.
"""

from __future__ import annotations

import numpy as np

from medtrinity_assets.grid import position_grid
from medtrinity_assets.records import DisplayFrame, GridPosition, RejectError

from .geometry import Box, box_centre

MIDLINE_MM = 10.0

# level words by the grid row's side, depth words by the grid column's side
_LEVELS = {
    "anterior": {"upper": "anterior", "middle": "central", "lower": "posterior"},
    "superior": {"upper": "superior", "middle": "central", "lower": "inferior"},
}


def grid_cell(bbox: Box, width: int, height: int) -> tuple[int, int]:
    """(row, col) of the box centre on the position grid; RejectError for a box outside the image."""
    if width <= 0 or height <= 0:
        raise RejectError("bad_size", f"image size must be positive, got {width}x{height}")
    x0, y0, x1, y1 = bbox
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        raise RejectError("bad_box", f"box {tuple(bbox)} outside a {width}x{height} image")
    cx, cy = box_centre(bbox, width, height)
    return position_grid().cell_at(cx, cy)


def position_phrase(bbox: Box, width: int, height: int) -> str:
    """The ``position`` column's name of the grid cell (image terms), e.g. ``"upper left-center"``."""
    return position_grid().phrase(*grid_cell(bbox, width, height))


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
    return _LEVELS[frame.up][position_grid().rows[row].side]  # type: ignore[index]


def patient_depth(frame: DisplayFrame | None, col: int) -> str | None:
    """Sagittal images: anterior/central/posterior for grid column `col` given the anterior side."""
    if frame is None or frame.plane != "sagittal" or frame.anterior_side not in ("left", "right"):
        return None
    side = position_grid().columns[col].side
    if side == "center":
        return "central"
    return "anterior" if side == frame.anterior_side else "posterior"


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
