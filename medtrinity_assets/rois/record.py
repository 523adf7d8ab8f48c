"""One ROI -> the geometry fields of its manifest row."""

from __future__ import annotations

import numpy as np

from medtrinity_assets.records import ROI, RejectError

from .geometry import box_from_mask, box_norm, count_components
from .position import position_phrase
from .rle import rle_encode


def roi_record(roi: ROI, width: int, height: int) -> dict:
    """Geometry fields of an ROI row (see the module docs of geometry, position and rle).

    Keys: label, origin, score, instance, bbox_x0..bbox_y1 (inclusive px), bbox_norm,
    area_px, area_frac, centroid_x / centroid_y (normalised pixel-centre mean), position
    (image-terms phrase), rle (``"H W;counts"``), n_components (8-connected).
    """
    mask = np.asarray(roi.mask, dtype=bool)
    if mask.shape != (height, width):
        raise RejectError("shape_mismatch", f"ROI {roi.label!r} mask {mask.shape} vs {height}x{width}")
    x0, y0, x1, y1 = box_from_mask(mask)  # RejectError('empty_mask') when empty
    if (x0, y0, x1, y1) != tuple(int(v) for v in roi.bbox):
        detail = f"ROI {roi.label!r} box {tuple(roi.bbox)} is not its mask's {(x0, y0, x1, y1)}"
        raise RejectError("bbox_mismatch", detail)
    ys, xs = np.nonzero(mask[y0 : y1 + 1, x0 : x1 + 1])
    area = int(xs.size)
    return {
        "label": roi.label,
        "origin": roi.origin,
        "score": None if roi.score is None else float(roi.score),
        "instance": None if roi.instance is None else int(roi.instance),
        "bbox_x0": x0,
        "bbox_y0": y0,
        "bbox_x1": x1,
        "bbox_y1": y1,
        "bbox_norm": box_norm((x0, y0, x1, y1), width, height),
        "area_px": area,
        "area_frac": area / float(width * height),
        "centroid_x": (float(xs.mean()) + x0 + 0.5) / width,
        "centroid_y": (float(ys.mean()) + y0 + 0.5) / height,
        "position": position_phrase((x0, y0, x1, y1), width, height),
        "rle": rle_encode(mask),
        "n_components": count_components(mask),
    }
