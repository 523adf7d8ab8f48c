"""Typed relations between ROIs on one image: containment, overlap, contact, relative direction.

Per ROI, in this order and at most `max_relations` entries (directions of one reference count
as one entry; one slot is kept for them when a directional reference exists):

1. ``Relation("within", "liver")`` — >= 90 % of its pixels lie inside a larger reference ROI
   (smallest container first);
2. ``Relation("overlaps", "spleen")`` — shares pixels with a reference but is not within it
   (largest shared fraction first);
3. ``Relation("borders", "aorta")`` — no shared pixel, but touching after a 1-pixel
   (8-connected) dilation (longest contact first);
4. ``Relation("contains", "nucleus", count=3)`` — references lying within it, per label;
5. direction to the two nearest references (centroid distance), skipping references it is within
   or contains and references whose label several ROIs share: local landmarks, as a reader names
   them ("anterior to the L2 vertebra"), not the largest structure across the image. One
   ``Relation("direction", other, d)`` per named axis, d in image terms (above | below | left |
   right) unless the display frame allows more: image-up anterior -> anterior | posterior,
   superior -> superior | inferior; a lateral convention -> patient_right | patient_left (relative sides need no world frame); sagittal
   with a known anterior side -> anterior | posterior horizontally. An axis is named when its
   offset is >= 0.414 x the larger one (8 sectors of 45 degrees).

References are the other ROIs, or only those whose label is in `organ_labels` when given (e.g.
the layers of an organ label map). `roi_neighbourhood` also returns each ROI's complete contact
set (every ROI label it touches or overlaps, references or not): the relations are capped for
wording, the contact set is what a caption's contact claims are checked against. A reference is named by its label only: when several ROIs
share a label the wording layer says so (no instance numbers).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medtrinity_assets.records import ROI, DisplayFrame, Relation, RejectError

from .geometry import EIGHT_CONNECTED, Box, boxes_touch

WITHIN_FRACTION = 0.9
SECTOR_RATIO = 0.414  # tan(22.5 deg)
DIRECTION_REFERENCES = 2  # nearest references a direction is given to


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


def directions(dx: float, dy: float, frame: DisplayFrame | None) -> list[str]:
    """Directions (vertical first) of a point offset by (dx, dy) pixels (image axes, y down)."""
    span = max(abs(dx), abs(dy))
    if span < 1.0:
        return []
    frame = frame or DisplayFrame()
    out = []
    if abs(dy) >= SECTOR_RATIO * span:
        up = dy < 0
        if frame.up == "anterior":
            out.append("anterior" if up else "posterior")
        elif frame.up == "superior":
            out.append("superior" if up else "inferior")
        else:
            out.append("above" if up else "below")
    if abs(dx) >= SECTOR_RATIO * span:
        side = "left" if dx < 0 else "right"
        if frame.lateral is not None and frame.plane != "sagittal":
            patient = side if frame.lateral == "neurological" else ("right" if side == "left" else "left")
            out.append(f"patient_{patient}")
        elif frame.plane == "sagittal" and frame.anterior_side in ("left", "right"):
            out.append("anterior" if side == frame.anterior_side else "posterior")
        else:
            out.append(side)
    return out


def _contains(inside: list[int], rois: list[ROI]) -> list[Relation]:
    by_label: dict[str, int] = {}
    for j in inside:
        by_label[rois[j].label] = by_label.get(rois[j].label, 0) + 1
    return [Relation("contains", label, count=n) for label, n in sorted(by_label.items())]


def _relations_for(
    i: int,
    rois: list[ROI],
    shapes: list[_Shape],
    pairs: dict[tuple[int, int], _Pair],
    refs: list[int],
    frame: DisplayFrame | None,
    max_relations: int,
) -> list[Relation]:
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
    structural = [Relation("within", rois[j].label) for _, j in sorted(within)]
    structural += [Relation("overlaps", rois[j].label) for _, j in sorted(overlaps)]
    structural += [Relation("borders", rois[j].label) for _, j in sorted(borders)]
    structural += _contains(sorted(inside), rois)
    structural = list(dict.fromkeys(structural))  # one entry per (kind, label)

    nested = {j for _, j in within} | set(inside)
    label_counts: dict[str, int] = {}
    for j in refs:
        label_counts[rois[j].label] = label_counts.get(rois[j].label, 0) + 1
    # a direction to "the nucleus" means nothing when there are several: only unique references
    candidates = [
        j for j in refs if j != i and j not in nested and shapes[j].area > 0 and label_counts[rois[j].label] == 1
    ]
    groups: list[list[Relation]] = []
    if candidates:
        nearest = heapq.nsmallest(DIRECTION_REFERENCES, candidates, key=lambda j: ((shapes[j].cx - me.cx) ** 2 + (shapes[j].cy - me.cy) ** 2, j))
        for j in nearest:
            found = [Relation("direction", rois[j].label, d) for d in directions(me.cx - shapes[j].cx, me.cy - shapes[j].cy, frame)]
            if found and found not in groups:
                groups.append(found)
    if groups:  # keep one slot for direction
        structural = structural[: max_relations - 1]
    out = list(structural)
    for group in groups[: max(max_relations - len(structural), 0)]:
        out.extend(group)
    return out


@dataclass(frozen=True)
class Neighbourhood:
    """Per ROI (same order as the input): its typed relations (at most `max_relations`) and the
    labels of every ROI it touches or overlaps (8-connected, all ROIs, sorted, each once)."""

    relations: list[list[Relation]]
    contacts: list[tuple[str, ...]]


def roi_neighbourhood(
    rois: list[ROI],
    width: int,
    height: int,
    frame: DisplayFrame | None = None,
    organ_labels: set[str] | None = None,
    max_relations: int = 4,
) -> Neighbourhood:
    """Typed relations and complete contact sets of one image's ROIs (one pass over the pairs)."""
    shapes = [_shape(roi, width, height) for roi in rois]
    refs = [j for j, roi in enumerate(rois) if organ_labels is None or roi.label in organ_labels]
    pairs: dict[tuple[int, int], _Pair] = {}
    for i in range(len(rois)):
        for j in range(i + 1, len(rois)):
            if shapes[i].area and shapes[j].area and boxes_touch(shapes[i].box, shapes[j].box):
                pairs[(i, j)] = _pair(rois[i], rois[j], shapes[i], shapes[j], width, height)
    touching: list[set[str]] = [set() for _ in rois]
    for (i, j), pair in pairs.items():
        if pair.inter or pair.contact:
            touching[i].add(rois[j].label)
            touching[j].add(rois[i].label)
    return Neighbourhood(
        [_relations_for(i, rois, shapes, pairs, refs, frame, max_relations) for i in range(len(rois))],
        [tuple(sorted(t)) for t in touching],
    )


def roi_relations(rois: list[ROI], width: int, height: int, frame: DisplayFrame | None = None, **options) -> list[list[Relation]]:
    """Typed relations of each ROI (same order as `rois`); `options` as for `roi_neighbourhood`
    (organ_labels, max_relations)."""
    return roi_neighbourhood(rois, width, height, frame, **options).relations
