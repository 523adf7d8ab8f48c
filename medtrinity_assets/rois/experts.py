"""ROIs from expert models' label maps (`records.LabelMap`, from the ExpertModels resource).

- semantic maps: one ROI per 8-connected component of every nonzero class, score = mean
  confidence of the class over the component; components under `min_area_px` pixels or
  `score_threshold` are dropped;
- instance maps: one ROI per instance id (its pixels may be several components), score = the
  detection score.
ROIs carry the map's origin (``model:<name>@<version>``) and come in `roi_sort_key` order.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medtrinity_assets.records import ROI, LabelMap

from .components import labelled_components, roi_sort_key
from .geometry import box_from_mask


def _semantic_rois(lm: LabelMap, min_area_px: int, score_threshold: float) -> list[ROI]:
    conf = lm.confidence if lm.confidence is not None else np.ones(lm.ids.shape, np.float32)
    rois: list[ROI] = []
    present = np.flatnonzero(np.bincount(lm.ids.ravel().astype(np.intp, copy=False)))
    for class_id in present[present > 0]:
        name = lm.labels.get(int(class_id), f"class_{int(class_id)}")
        (x0, y0, x1, y1), labelled, k = labelled_components(lm.ids == class_id, min_area_px)
        if k == 0:
            continue
        flat = labelled.ravel()
        sums = np.bincount(flat, weights=conf[y0 : y1 + 1, x0 : x1 + 1].ravel(), minlength=k + 1)
        areas = np.bincount(flat, minlength=k + 1)
        for number, (rows, cols) in enumerate(ndimage.find_objects(labelled, max_label=k), start=1):
            score = float(sums[number] / areas[number])
            if score < score_threshold:
                continue
            mask = np.zeros(lm.ids.shape, dtype=bool)
            mask[y0 + rows.start : y0 + rows.stop, x0 + cols.start : x0 + cols.stop] = labelled[rows, cols] == number
            box = (x0 + cols.start, y0 + rows.start, x0 + cols.stop - 1, y0 + rows.stop - 1)
            rois.append(ROI(name, lm.origin, box, mask, score, number))
    return rois


def _instance_rois(lm: LabelMap, min_area_px: int, score_threshold: float) -> list[ROI]:
    rois: list[ROI] = []
    objects = ndimage.find_objects(lm.ids)
    for index, found in enumerate(objects, start=1):
        if found is None or index not in lm.labels:
            continue
        score = float(lm.scores.get(index, 1.0))
        if score < score_threshold:
            continue
        mask = np.zeros(lm.ids.shape, dtype=bool)
        mask[found] = lm.ids[found] == index
        if int(mask.sum()) < max(min_area_px, 1):
            continue
        rois.append(ROI(lm.labels[index], lm.origin, box_from_mask(mask), mask, score, index))
    return rois


def rois_from_label_map(lm: LabelMap, min_area_px: int = 1, score_threshold: float = 0.0) -> list[ROI]:
    """The ROIs of one label map (see the module docstring)."""
    ids = np.asarray(lm.ids)
    if ids.ndim != 2 or not ids.any():
        return []
    make = _instance_rois if lm.kind == "instance" else _semantic_rois
    rois = make(lm, min_area_px, score_threshold)
    rois.sort(key=roi_sort_key)
    return rois
