"""Short relation sentences between ROIs on one image: containment, overlap, contact, position.

Per ROI, in this order and at most `max_relations` sentences (one slot is kept for position
when a positional reference exists):

1. ``"within the liver"`` — >= 90 % of its pixels lie inside a larger reference ROI
   (smallest container first);
2. ``"overlaps the spleen"`` — shares pixels with a reference but is not within it
   (largest shared fraction first);
3. ``"borders the aorta"`` — no shared pixel, but touching after a 1-pixel (8-connected)
   dilation (longest contact first);
4. ``"contains the lesion"`` / ``"contains 3 nucleus regions"`` — references lying within it;
5. relative position to the nearest reference (centroid distance) and to the largest one,
   skipping references it is within or contains: ``"above the aorta"``,
   ``"left of the aorta (image side)"``; with a known lateral convention
   ``"to the patient's right of the aorta"``; with image-up known (see
   `position.display_convention`) ``"anterior to"`` / ``"posterior to"`` (axial) or
   ``"superior to"`` / ``"inferior to"``; in sagittal images with a known anterior side,
   ``"anterior to"`` / ``"posterior to"`` horizontally. A direction is named when its offset is
   >= 0.414 x the larger one (8 sectors of 45 degrees).

References are the other ROIs, or only those whose label is in `organ_labels` when given
(e.g. the layers of a TotalSegmentator-style organ label map). A reference is named by its
label (``"the liver"``), or ``"the nucleus #12"`` when several ROIs share that label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medtrinity_assets.records import ROI, RejectError

from .geometry import EIGHT_CONNECTED, Box, boxes_touch
from .position import display_convention

WITHIN_FRACTION = 0.9
SECTOR_RATIO = 0.414  # tan(22.5 deg)


@dataclass(frozen=True)
class _Shape:
    area: int
    cx: float
    cy: float
    box: Box


@dataclass(frozen=True)
class _Pair:
    inter: int
    contact: int  # reference pixels touching the ROI after 1-px dilation (0 when overlapping)


def _shape(roi: ROI, width: int, height: int) -> _Shape:
    if roi.mask.shape != (height, width):
        raise RejectError("shape_mismatch", f"ROI {roi.label!r} mask {roi.mask.shape} vs {height}x{width}")
    x0, y0, x1, y1 = roi.bbox
    crop = roi.mask[y0 : y1 + 1, x0 : x1 + 1]
    ys, xs = np.nonzero(crop)
    if xs.size == 0:
        return _Shape(0, 0.0, 0.0, roi.bbox)
    return _Shape(int(xs.size), float(xs.mean()) + x0 + 0.5, float(ys.mean()) + y0 + 0.5, roi.bbox)


def _pair(a: ROI, b: ROI, sa: _Shape, sb: _Shape, width: int, height: int) -> _Pair:
    x0 = max(min(sa.box[0], sb.box[0]) - 1, 0)
    y0 = max(min(sa.box[1], sb.box[1]) - 1, 0)
    x1 = min(max(sa.box[2], sb.box[2]) + 1, width - 1)
    y1 = min(max(sa.box[3], sb.box[3]) + 1, height - 1)
    ma = a.mask[y0 : y1 + 1, x0 : x1 + 1]
    mb = b.mask[y0 : y1 + 1, x0 : x1 + 1]
    inter = int(np.count_nonzero(ma & mb))
    if inter:
        return _Pair(inter, 0)
    grown = ndimage.binary_dilation(ma, structure=EIGHT_CONNECTED)
    return _Pair(0, int(np.count_nonzero(grown & mb)))


def reference_names(rois: list[ROI]) -> list[str]:
    """``"the <label>"``, or ``"the <label> #<instance>"`` when the label is not unique."""
    counts: dict[str, int] = {}
    for roi in rois:
        counts[roi.label] = counts.get(roi.label, 0) + 1
    names = []
    for index, roi in enumerate(rois):
        if counts[roi.label] == 1:
            names.append(f"the {roi.label}")
        else:
            tag = roi.instance if roi.instance is not None else index + 1
            names.append(f"the {roi.label} #{tag}")
    return names


def direction_phrase(dx: float, dy: float, orientation: str, reference: str) -> str | None:
    """Where a point offset by (dx, dy) pixels (image axes, y down) lies relative to `reference`."""
    span = max(abs(dx), abs(dy))
    if span < 1.0:
        return None
    convention = display_convention(orientation)
    vertical = horizontal = image_side = None
    if abs(dy) >= SECTOR_RATIO * span:
        up = dy < 0
        if convention.up == "anterior":
            vertical = "anterior to" if up else "posterior to"
        elif convention.up == "superior":
            vertical = "superior to" if up else "inferior to"
        else:
            vertical = "above" if up else "below"
    if abs(dx) >= SECTOR_RATIO * span:
        side = "left" if dx < 0 else "right"
        if convention.has_sides:
            patient = side if convention.lateral == "neurological" else ("right" if side == "left" else "left")
            horizontal = f"to the patient's {patient} of"
        elif convention.plane == "sagittal" and convention.anterior_side:
            horizontal = "anterior to" if side == convention.anterior_side else "posterior to"
        else:
            horizontal, image_side = f"{side} of", side
    if vertical and horizontal:
        if vertical.endswith(" to") and horizontal.endswith(" to"):  # "superior and anterior to"
            phrase = f"{vertical[:-3]} and {horizontal} {reference}"
        else:
            phrase = f"{vertical} and {horizontal} {reference}"
    else:
        phrase = f"{vertical or horizontal} {reference}"
    if image_side:
        phrase += " (image side)"
    return phrase


def _contains_sentences(inside: list[int], rois: list[ROI], names: list[str]) -> list[str]:
    by_label: dict[str, list[int]] = {}
    for j in inside:
        by_label.setdefault(rois[j].label, []).append(j)
    out = []
    for label in sorted(by_label):
        members = by_label[label]
        out.append(f"contains {names[members[0]]}" if len(members) == 1 else f"contains {len(members)} {label} regions")
    return out


def _relations_for(
    i: int,
    rois: list[ROI],
    shapes: list[_Shape],
    pairs: dict[tuple[int, int], _Pair],
    refs: list[int],
    names: list[str],
    orientation: str,
    max_relations: int,
) -> list[str]:
    me = shapes[i]
    within, overlaps, borders, inside = [], [], [], []
    for j in refs:
        if j == i or shapes[j].area == 0:
            continue
        pair = pairs.get((min(i, j), max(i, j)))
        if pair is None:
            continue
        if pair.inter:
            if pair.inter >= WITHIN_FRACTION * me.area and shapes[j].area > me.area:
                within.append((shapes[j].area, j))
            elif pair.inter >= WITHIN_FRACTION * shapes[j].area and me.area > shapes[j].area:
                inside.append(j)
            else:
                overlaps.append((-pair.inter / me.area, j))
        elif pair.contact:
            borders.append((-pair.contact, j))
    structural = [f"within {names[j]}" for _, j in sorted(within)]
    structural += [f"overlaps {names[j]}" for _, j in sorted(overlaps)]
    structural += [f"borders {names[j]}" for _, j in sorted(borders)]
    structural += _contains_sentences(sorted(inside), rois, names)

    nested = {j for _, j in within} | set(inside)
    candidates = [j for j in refs if j != i and j not in nested and shapes[j].area > 0]
    positional: list[str] = []
    if candidates:
        nearest = min(candidates, key=lambda j: ((shapes[j].cx - me.cx) ** 2 + (shapes[j].cy - me.cy) ** 2, j))
        largest = min(candidates, key=lambda j: (-shapes[j].area, j))
        for j in dict.fromkeys((nearest, largest)):
            phrase = direction_phrase(me.cx - shapes[j].cx, me.cy - shapes[j].cy, orientation, names[j])
            if phrase:
                positional.append(phrase)
    if positional:  # keep one slot for position
        structural = structural[: max_relations - 1]
    return (structural + positional)[:max_relations]


def roi_relations(
    rois: list[ROI],
    width: int,
    height: int,
    orientation: str,
    organ_labels: set[str] | None = None,
    max_relations: int = 4,
) -> list[list[str]]:
    """Relation sentences for each ROI (same order as `rois`), at most `max_relations` each."""
    shapes = [_shape(roi, width, height) for roi in rois]
    names = reference_names(rois)
    refs = [j for j, roi in enumerate(rois) if organ_labels is None or roi.label in organ_labels]
    ref_set = set(refs)
    pairs: dict[tuple[int, int], _Pair] = {}
    for i in range(len(rois)):
        for j in range(i + 1, len(rois)):
            involved = i in ref_set or j in ref_set
            if involved and shapes[i].area and shapes[j].area and boxes_touch(shapes[i].box, shapes[j].box):
                pairs[(i, j)] = _pair(rois[i], rois[j], shapes[i], shapes[j], width, height)
    return [
        _relations_for(i, rois, shapes, pairs, refs, names, orientation, max_relations)
        for i in range(len(rois))
    ]
