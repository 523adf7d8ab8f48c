"""Geometry of boolean masks: boxes, areas, centroids, components.

Conventions: boxes are ``(x0, y0, x1, y1)`` in pixels, *inclusive*; pixel ``(x, y)`` covers
``[x, x+1) x [y, y+1)``, so a box's normalised extent is ``(x0/W, y0/H, (x1+1)/W, (y1+1)/H)``
and a centroid is the mean pixel centre ``(mean(x) + 0.5) / W``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medtrinity_assets.records import RejectError

Box = tuple[int, int, int, int]

#: 8-connectivity structuring element for scipy.ndimage.label.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def as_bool_mask(mask: np.ndarray) -> np.ndarray:
    """A 2-D bool view/copy of `mask` (nonzero = foreground)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise RejectError("bad_mask", f"mask must be 2-D, got shape {arr.shape}")
    return arr if arr.dtype == bool else arr != 0


def box_from_mask(mask: np.ndarray) -> Box:
    """Tight inclusive box ``(x0, y0, x1, y1)`` of the nonzero pixels; RejectError if empty."""
    m = as_bool_mask(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        raise RejectError("empty_mask", "mask has no foreground pixel")
    cols = np.flatnonzero(m.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def box_norm(box: Box, width: int, height: int) -> list[float]:
    """Box as fractions of the image: ``[x0/W, y0/H, (x1+1)/W, (y1+1)/H]``."""
    x0, y0, x1, y1 = box
    return [x0 / width, y0 / height, (x1 + 1) / width, (y1 + 1) / height]


def box_centre(box: Box, width: int, height: int) -> tuple[float, float]:
    """Centre of a box as fractions of the image (x, y)."""
    x0, y0, x1, y1 = box
    return (x0 + x1 + 1) / (2 * width), (y0 + y1 + 1) / (2 * height)


def count_components(mask: np.ndarray) -> int:
    """Number of 8-connected foreground components."""
    m = as_bool_mask(mask)
    if not m.any():
        return 0
    x0, y0, x1, y1 = box_from_mask(m)
    _, n = ndimage.label(m[y0 : y1 + 1, x0 : x1 + 1], structure=EIGHT_CONNECTED)
    return int(n)


def boxes_touch(a: Box, b: Box, margin: int = 1) -> bool:
    """Whether two boxes intersect once `a` is grown by `margin` pixels."""
    return not (
        a[2] + margin < b[0] or b[2] < a[0] - margin or a[3] + margin < b[1] or b[3] < a[1] - margin
    )
