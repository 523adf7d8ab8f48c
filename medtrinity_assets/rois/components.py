"""Ground-truth mask layers -> ROIs, one per 8-connected component (or one per label).

Unlike the MedTrinity-25M paper (which kept two components and burned a box into the image),
every component above a minimum area is kept, as data: label, inclusive box, full-size mask.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy import ndimage

from medtrinity_assets.records import ROI, RejectError, Slice2D

from .geometry import EIGHT_CONNECTED, Box, as_bool_mask, box_from_mask

GROUND_TRUTH = "ground_truth"


def labelled_components(mask: np.ndarray, min_area_px: int = 1) -> tuple[Box, np.ndarray, int]:
    """Label the 8-connected components of `mask` inside its bounding box, keeping big ones.

    Returns ``(crop_box, labels, k)``: `labels` covers `crop_box` only and numbers the kept
    components 1..k in raster order of their first pixel (0 elsewhere). Empty mask: k = 0.
    """
    m = as_bool_mask(mask)
    if not m.any():
        return (0, 0, -1, -1), np.zeros((0, 0), np.int32), 0
    crop_box = box_from_mask(m)
    x0, y0, x1, y1 = crop_box
    labelled, n = ndimage.label(m[y0 : y1 + 1, x0 : x1 + 1], structure=EIGHT_CONNECTED)
    areas = np.bincount(labelled.ravel(), minlength=n + 1)
    keep = np.flatnonzero(areas >= max(int(min_area_px), 1))
    keep = keep[keep > 0]
    if keep.size < n:  # drop small components, renumber the rest 1..k (order preserved)
        lut = np.zeros(n + 1, dtype=labelled.dtype)
        lut[keep] = np.arange(1, keep.size + 1, dtype=labelled.dtype)
        labelled = lut[labelled]
    return crop_box, labelled, int(keep.size)


def mask_components(mask: np.ndarray, min_area_px: int = 1) -> list[tuple[Box, np.ndarray]]:
    """8-connected components of `mask` with at least `min_area_px` pixels.

    Returns ``(box, full_size_bool_mask)`` pairs in raster order of each component's first pixel
    (top row first, then leftmost), which is the order scipy.ndimage.label numbers them.
    """
    m = as_bool_mask(mask)
    (x0, y0, _, _), labelled, k = labelled_components(m, min_area_px)
    out: list[tuple[Box, np.ndarray]] = []
    for index, region in enumerate(ndimage.find_objects(labelled, max_label=k) if k else [], start=1):
        rows, cols = region
        full = np.zeros(m.shape, dtype=bool)
        full[y0 + rows.start : y0 + rows.stop, x0 + cols.start : x0 + cols.stop] = labelled[rows, cols] == index
        box = (x0 + cols.start, y0 + rows.start, x0 + cols.stop - 1, y0 + rows.stop - 1)
        out.append((box, full))
    return out


def check_layer_shapes(sl: Slice2D) -> None:
    """RejectError('shape_mismatch') unless every mask layer is (H, W) of the slice's pixels."""
    expected = (sl.height, sl.width)
    for layer in sl.masks:
        if tuple(np.shape(layer.mask)) != expected:
            raise RejectError(
                "shape_mismatch",
                f"mask layer {layer.label!r} is {np.shape(layer.mask)}, pixels are {expected}",
            )


def roi_sort_key(roi: ROI) -> tuple:
    """Deterministic order: label, then top-left (row, column), then instance."""
    return (roi.label, roi.bbox[1], roi.bbox[0], roi.instance if roi.instance is not None else -1)


def _component_rois(sl: Slice2D, min_area_px: int) -> list[ROI]:
    rois: list[ROI] = []
    for layer in sl.masks:
        for box, mask in mask_components(layer.mask, min_area_px):
            rois.append(ROI(layer.label, GROUND_TRUTH, box, mask, None, layer.instance))
    rois.sort(key=roi_sort_key)
    numbers: dict[str, int] = defaultdict(int)
    for roi in rois:  # layers without an instance id: number components 1..n per label
        if roi.instance is None:
            numbers[roi.label] += 1
            roi.instance = numbers[roi.label]
    return rois


def _merged_rois(sl: Slice2D, min_area_px: int) -> list[ROI]:
    unions: dict[str, np.ndarray] = {}
    for layer in sl.masks:
        m = as_bool_mask(layer.mask)
        unions[layer.label] = unions[layer.label] | m if layer.label in unions else m.copy()
    rois: list[ROI] = []
    for label, union in unions.items():
        kept = np.zeros(union.shape, dtype=bool)
        for _, mask in mask_components(union, min_area_px):
            kept |= mask
        if kept.any():
            rois.append(ROI(label, GROUND_TRUTH, box_from_mask(kept), kept, None, None))
    rois.sort(key=roi_sort_key)
    return rois


def rois_from_masks(sl: Slice2D, min_area_px: int = 16, merge_per_label: bool = False) -> list[ROI]:
    """Every 8-connected component (>= `min_area_px` pixels) of every mask layer, as an ROI.

    ``instance`` is the layer's instance id when it has one, else the component's number
    (1..n per label, in sorted order). With `merge_per_label`, one ROI per label: the union of
    its kept components (``instance`` None). Order: label, then top-left corner (row, column).
    """
    check_layer_shapes(sl)
    if merge_per_label:
        return _merged_rois(sl, min_area_px)
    return _component_rois(sl, min_area_px)
