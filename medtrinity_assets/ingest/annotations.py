"""Box lists (CSV/JSON) and COCO polygon files: one annotation file for many images.

The rows of one image (matched by file name, `MaskRef.image_key`) are rasterised on the image's
stored pixel grid by the ROI package's `rois_from_boxes` / `rois_from_polygons`, one binary
layer per box or object, so they follow the same orientation, slicing and resize as any mask.

Box lists: CSV with a header, or JSON (a list of objects, or {"boxes": [...]}); columns
``image`` (file name), ``label``, and ``x0, y0, x1, y1`` (or ``bbox`` = [4 numbers]) in the
catalog's `box_format`. COCO: ``images`` (id, file_name), ``annotations`` (image_id,
category_id, segmentation), ``categories`` (id, name).
"""

from __future__ import annotations

import csv
import json
import os
from functools import lru_cache
from typing import Any

import numpy as np

from medtrinity_assets.records import MaskRef, RejectError

BOX_COORDS = ("x0", "y0", "x1", "y1")


@lru_cache(maxsize=32)
def _box_rows_by_image(path: str, mtime_ns: int) -> dict[str, list[dict[str, Any]]]:
    try:
        if path.lower().endswith(".csv"):
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        else:
            data = json.loads(open(path).read())
            rows = data["boxes"] if isinstance(data, dict) else data
    except (OSError, ValueError, KeyError, csv.Error) as exc:
        raise RejectError("corrupt_mask", f"box list {os.path.basename(path)}: {type(exc).__name__}") from None
    by_image: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if not isinstance(row, dict) or "image" not in row:
            raise RejectError("unsupported_mask", f"box list {os.path.basename(path)}: every row needs an 'image' field")
        by_image.setdefault(os.path.basename(str(row["image"])), []).append(row)
    return by_image


@lru_cache(maxsize=8)
def _coco_by_image(path: str, mtime_ns: int) -> tuple[dict[str, list[dict]], dict[int, str]]:
    try:
        data = json.loads(open(path).read())
        names = {int(im["id"]): os.path.basename(im["file_name"]) for im in data["images"]}
        categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
        by_image: dict[str, list[dict]] = {}
        for ann in data["annotations"]:
            by_image.setdefault(names[int(ann["image_id"])], []).append(ann)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RejectError("corrupt_mask", f"COCO file {os.path.basename(path)}: {type(exc).__name__}") from None
    return by_image, categories


def annotation_layers(ref: MaskRef, height: int, width: int) -> list[tuple[str, int, np.ndarray]]:
    """(label, instance, boolean mask) for every box/object of `ref.image_key`; [] when it has none."""
    from medtrinity_assets.rois import rois_from_boxes, rois_from_polygons

    mtime = os.stat(ref.path).st_mtime_ns
    if ref.convention == "boxes":
        rows = _box_rows_by_image(ref.path, mtime).get(ref.image_key or "", [])
        coord_keys = BOX_COORDS if rows and all(k in rows[0] for k in BOX_COORDS) else None
        rois = rois_from_boxes(rows, width, height, box_format=ref.box_format, coord_keys=coord_keys, default_label=ref.label or "finding")
    elif ref.convention == "polygons":
        by_image, categories = _coco_by_image(ref.path, mtime)
        anns = by_image.get(ref.image_key or "", [])
        rois = rois_from_polygons(anns, width, height, label_key="category_id", label_table=categories, default_label=ref.label or "finding")
    else:
        raise RejectError("unsupported_mask", f"'{ref.convention}' is not an annotation-file convention")
    return [(r.label, int(r.instance or i + 1), r.mask) for i, r in enumerate(rois)]
