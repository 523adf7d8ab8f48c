"""Box lists (CSV/JSON rows) and COCO-style polygons -> ROIs with rasterised masks.

Coordinates are continuous image coordinates (pixel ``(x, y)`` covers ``[x, x+1) x [y, y+1)``)
unless the box format says pixel-inclusive. A pixel belongs to a box / polygon when its centre
``(x + 0.5, y + 0.5)`` lies inside (even-odd rule for polygons), so a COCO box
``[x, y, w, h]`` with integer values covers exactly ``w x h`` pixels. `source_size` (W, H)
rescales coordinates annotated on an image of another size (e.g. NIH boxes on 1024 x 1024
images, slices resized to 512).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from medtrinity_assets.records import ROI, RejectError

from .components import GROUND_TRUTH, roi_sort_key
from .geometry import box_from_mask
from .rle import rle_from_coco

BOX_FORMATS = ("xyxy", "xyxy_inclusive", "xywh")
_DEFAULT_KEYS = {
    "xyxy": ("x0", "y0", "x1", "y1"),
    "xyxy_inclusive": ("x0", "y0", "x1", "y1"),
    "xywh": ("x", "y", "w", "h"),
}


def _numbers(values: Any, what: str) -> list[float]:
    if isinstance(values, str):
        try:
            values = json.loads(values)
        except json.JSONDecodeError as exc:
            raise RejectError(what, f"cannot parse coordinates {values[:40]!r}") from exc
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise RejectError(what, f"non-numeric coordinates {str(values)[:60]!r}") from exc
    if not all(math.isfinite(v) for v in numbers):
        raise RejectError(what, f"non-finite coordinates {numbers}")
    return numbers


def _scale(width: int, height: int, source_size: tuple[int, int] | None) -> tuple[float, float]:
    if width <= 0 or height <= 0:
        raise RejectError("bad_size", f"image size must be positive, got {width}x{height}")
    if source_size is None:
        return 1.0, 1.0
    return width / float(source_size[0]), height / float(source_size[1])


@dataclass(frozen=True)
class RowFields:
    """How an annotation row (a mapping, or a bare box / polygon) names its ROI: the label under
    `label_key` (through `label_table` when given, `default_label` when absent or blank), the score
    under `score_key` (None: no score), and the ROI origin."""

    label_key: str = "label"
    score_key: str | None = "score"
    default_label: str = "finding"
    label_table: Mapping[Any, str] | None = None
    origin: str = GROUND_TRUTH

    def label(self, row: Any) -> str:
        value = row.get(self.label_key, self.default_label) if isinstance(row, Mapping) else self.default_label
        if self.label_table is not None:
            value = self.label_table.get(value, self.label_table.get(str(value), value))
        return str(value).strip() or self.default_label

    def roi(self, row: Any, bbox: tuple[int, int, int, int], mask: np.ndarray, instance: int) -> ROI:
        score = row.get(self.score_key) if isinstance(row, Mapping) and self.score_key else None
        return ROI(self.label(row), self.origin, bbox, mask, None if score in (None, "") else float(score), instance)


def box_coordinates(row: Any, box_format: str, coord_keys: Sequence[str] | None, bbox_key: str) -> list[float]:
    """The 4 numbers of one box row: a sequence, ``row[bbox_key]``, or ``row[k] for k in coord_keys``."""
    if isinstance(row, Mapping):
        if coord_keys is not None:
            missing = [k for k in coord_keys if k not in row]
            if missing:
                raise RejectError("bad_box", f"box row lacks keys {missing}")
            values = _numbers([row[k] for k in coord_keys], "bad_box")
        elif bbox_key in row:
            values = _numbers(row[bbox_key], "bad_box")
        else:
            keys = _DEFAULT_KEYS[box_format]
            if not all(k in row for k in keys):
                raise RejectError("bad_box", f"box row has neither {bbox_key!r} nor keys {keys}")
            values = _numbers([row[k] for k in keys], "bad_box")
    else:
        values = _numbers(row, "bad_box")
    if len(values) != 4:
        raise RejectError("bad_box", f"a box needs 4 numbers, got {len(values)}")
    return values


def box_pixels(
    values: Sequence[float], box_format: str, sx: float, sy: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """Inclusive pixel box (clipped to the image) covered by one box in `box_format`."""
    if box_format not in BOX_FORMATS:
        raise RejectError("bad_box_format", f"{box_format!r} not in {BOX_FORMATS}")
    a, b, c, d = values
    if box_format == "xyxy_inclusive":
        a, b, c, d = a, b, c + 1, d + 1
    elif box_format == "xywh":
        c, d = a + c, b + d
    x0, y0, x1, y1 = a * sx, b * sy, c * sx, d * sy
    if x1 <= x0 or y1 <= y0:
        raise RejectError("bad_box", f"degenerate box {list(values)} ({box_format})")
    px0, py0 = max(math.ceil(x0 - 0.5), 0), max(math.ceil(y0 - 0.5), 0)
    px1, py1 = min(math.ceil(x1 - 0.5) - 1, width - 1), min(math.ceil(y1 - 0.5) - 1, height - 1)
    if px1 < px0 or py1 < py0:  # thinner than a pixel centre spacing, or outside: nearest pixel
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if not (0 <= cx < width and 0 <= cy < height):
            raise RejectError("bad_box", f"box {list(values)} lies outside a {width}x{height} image")
        px0 = px1 = min(int(cx), width - 1)
        py0 = py1 = min(int(cy), height - 1)
    return px0, py0, px1, py1


def rois_from_boxes(
    boxes: Iterable[Mapping[str, Any] | Sequence[float]],
    width: int,
    height: int,
    box_format: str = "xyxy",
    coord_keys: Sequence[str] | None = None,
    bbox_key: str = "bbox",
    source_size: tuple[int, int] | None = None,
    **fields: Any,
) -> list[ROI]:
    """One ROI per box row, its mask the filled rectangle; `fields`: `RowFields` (label_key,
    score_key, default_label, label_table, origin).

    box_format: ``xyxy`` (continuous corners), ``xyxy_inclusive`` (pixel-inclusive ints, as in
    our manifests), ``xywh`` (COCO). Rows are mappings (CSV ``DictReader`` / JSON objects) or
    bare 4-number sequences. ``instance`` is the row's 1-based position in `boxes`.
    Example (NIH ``BBox_List_2017.csv``): ``label_key="Finding Label", box_format="xywh",
    coord_keys=("Bbox [x", "y", "w", "h]"), source_size=(1024, 1024)``.
    """
    sx, sy = _scale(width, height, source_size)
    names = RowFields(**fields)
    rois = []
    for number, row in enumerate(boxes, start=1):
        values = box_coordinates(row, box_format, coord_keys, bbox_key)
        x0, y0, x1, y1 = box_pixels(values, box_format, sx, sy, width, height)
        mask = np.zeros((height, width), dtype=bool)
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
        rois.append(names.roi(row, (x0, y0, x1, y1), mask, number))
    rois.sort(key=roi_sort_key)
    return rois


def polygon_mask(points: Sequence[float], width: int, height: int) -> np.ndarray:
    """Pixels whose centres lie inside a flat ``[x1, y1, x2, y2, ...]`` polygon (even-odd rule).

    A polygon too thin to contain any pixel centre falls back to the pixels its outline crosses.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        raise RejectError("bad_polygon", f"a polygon needs >= 3 points, got {len(pts)}")
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    mask = np.zeros((height, width), dtype=bool)
    row_lo = max(math.ceil(ya.min() - 0.5), 0)
    row_hi = min(math.ceil(ya.max() - 0.5) - 1, height - 1)
    for row in range(row_lo, row_hi + 1):
        yc = row + 0.5
        crossing = (ya <= yc) != (yb <= yc)
        if not crossing.any():
            continue
        xs = xa[crossing] + (yc - ya[crossing]) * (xb[crossing] - xa[crossing]) / (yb[crossing] - ya[crossing])
        xs.sort()
        for left, right in zip(xs[0::2], xs[1::2]):
            c0, c1 = max(math.ceil(left - 0.5), 0), min(math.ceil(right - 0.5) - 1, width - 1)
            if c1 >= c0:
                mask[row, c0 : c1 + 1] = True
    if not mask.any():
        image = Image.new("1", (width, height), 0)
        ImageDraw.Draw(image).line([tuple(p) for p in pts] + [tuple(pts[0])], fill=1)
        mask = np.array(image, dtype=bool)
    return mask


def _parts(segmentation: Any) -> list[list[float]]:
    """Normalise a polygon segmentation to a list of flat coordinate lists."""
    if isinstance(segmentation, np.ndarray):
        segmentation = segmentation.tolist()
    if not isinstance(segmentation, (list, tuple)) or not segmentation:
        kind = type(segmentation).__name__
        raise RejectError("bad_polygon", f"polygon segmentation must be a non-empty list, got {kind}")
    first = segmentation[0]
    if isinstance(first, (int, float)):  # one flat polygon
        return [_numbers(segmentation, "bad_polygon")]
    if isinstance(first, (list, tuple)) and first and isinstance(first[0], (int, float)) and len(first) == 2 and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in segmentation
    ):  # one polygon as (x, y) pairs
        return [_numbers([v for p in segmentation for v in p], "bad_polygon")]
    return [_numbers(part, "bad_polygon") for part in segmentation]


def rois_from_polygons(
    polygons: Iterable[Mapping[str, Any] | Sequence[Any]],
    width: int,
    height: int,
    segmentation_key: str = "segmentation",
    normalized: bool = False,
    source_size: tuple[int, int] | None = None,
    **fields: Any,
) -> list[ROI]:
    """One ROI per object: the union of its polygon parts, rasterised by pixel centre; `fields`:
    `RowFields` (label_key, score_key, default_label, label_table, origin).

    Objects are COCO annotations (``{"category_id": 3, "segmentation": [[x1, y1, ...], ...]}``
    with ``label_key="category_id"`` and `label_table` mapping ids to names; an uncompressed
    COCO RLE dict as segmentation is decoded too), or bare polygons (a flat list, a list of
    (x, y) pairs, or a list of parts). `normalized`: coordinates are fractions of the image
    (YOLO). ``instance`` is the object's 1-based position in `polygons`.
    """
    sx, sy = _scale(width, height, source_size)
    if normalized:
        sx, sy = float(width), float(height)
    names = RowFields(**fields)
    rois = []
    for number, obj in enumerate(polygons, start=1):
        segmentation = obj.get(segmentation_key) if isinstance(obj, Mapping) else obj
        if isinstance(segmentation, Mapping):
            mask = rle_from_coco(segmentation)
            if mask.shape != (height, width):
                raise RejectError("shape_mismatch", f"RLE segmentation is {mask.shape}, image is {height}x{width}")
        else:
            mask = np.zeros((height, width), dtype=bool)
            for part in _parts(segmentation):
                scaled = np.asarray(part, dtype=np.float64).reshape(-1, 2) * (sx, sy)
                mask |= polygon_mask(scaled.ravel(), width, height)
        if not mask.any():
            raise RejectError("bad_polygon", f"object {number} covers no pixel of a {width}x{height} image")
        rois.append(names.roi(obj, box_from_mask(mask), mask, number))
    rois.sort(key=roi_sort_key)
    return rois
