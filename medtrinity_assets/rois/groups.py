"""Grouping many small same-label instances of one image into one ROI (catalog `rois.instances: group`).

A dataset of images with dozens of nuclei or cells wants one record per label per image, not one
near-identical record per instance: above `group_above` instances of a label, those instances
become one ROI whose mask is their exact union, and `InstanceGroup` keeps what a reader needs
about them as typed values (count, equivalent-diameter distribution, spread over the position
grid of `medtrinity_assets.grid`, the largest instance's grid cell). Labels with fewer instances stay one ROI each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from medtrinity_assets.records import ROI, Measurements

from .geometry import box_from_mask
from .position import grid_cell


@dataclass(frozen=True)
class InstanceGroup:
    """What one grouped ROI unites: `count` instances, their equivalent diameters (px, and mm where
    spacing is known), how many grid cells hold an instance centre, the largest instance's cell."""

    count: int
    diameters_px: tuple[float, ...]
    diameters_mm: tuple[float, ...] | None
    cells: int
    largest_cell: tuple[int, int]


def _diameter(area: float) -> float:
    return math.sqrt(4.0 * area / math.pi)


def describe_group(instances: list[ROI], width: int, height: int, spacing_rc: tuple[float, float] | None) -> InstanceGroup:
    """The typed summary of `instances` (same label, one image)."""
    areas = [int(np.count_nonzero(r.mask)) for r in instances]
    cells = {grid_cell(tuple(int(v) for v in r.bbox), width, height) for r in instances}
    largest = instances[int(np.argmax(areas))]
    mm = None
    if spacing_rc:
        pixel_mm2 = float(spacing_rc[0]) * float(spacing_rc[1])
        mm = tuple(sorted(_diameter(a * pixel_mm2) for a in areas))
    return InstanceGroup(
        count=len(instances),
        diameters_px=tuple(sorted(_diameter(a) for a in areas)),
        diameters_mm=mm,
        cells=len(cells),
        largest_cell=grid_cell(tuple(int(v) for v in largest.bbox), width, height),
    )


def group_instances(
    rois: list[ROI], width: int, height: int, spacing_rc: tuple[float, float] | None, group_above: int
) -> tuple[list[ROI], dict[int, InstanceGroup]]:
    """``(rois, groups)``: labels with more than `group_above` ROIs become one union ROI each
    (``instance`` None, score the mean of the instances' scores where all have one); `groups` maps
    the index of each group ROI in the returned list to its `InstanceGroup`. Order: first
    appearance of each label, as in `rois`."""
    by_label: dict[str, list[ROI]] = {}
    for roi in rois:
        by_label.setdefault(roi.label, []).append(roi)
    out: list[ROI] = []
    groups: dict[int, InstanceGroup] = {}
    done: set[str] = set()
    for roi in rois:
        members = by_label[roi.label]
        if len(members) <= group_above:
            out.append(roi)
            continue
        if roi.label in done:
            continue
        done.add(roi.label)
        union = np.zeros(members[0].mask.shape, dtype=bool)
        for m in members:
            union |= np.asarray(m.mask, dtype=bool)
        scores = [m.score for m in members]
        score = float(np.mean(scores)) if all(s is not None for s in scores) else None
        groups[len(out)] = describe_group(members, width, height, spacing_rc)
        out.append(ROI(roi.label, roi.origin, box_from_mask(union), union, score, None))
    return out, groups


def _r(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def with_group(m: Measurements, group: InstanceGroup) -> Measurements:
    """Measurements of a group ROI with its instance summary (label_count = the instances)."""
    px, mm = group.diameters_px, group.diameters_mm
    return replace(
        m,
        label_count=group.count,
        count_kind="instances",
        instance_count=group.count,
        instance_diameter_min_px=_r(px[0]),
        instance_diameter_median_px=_r(float(np.median(px))),
        instance_diameter_max_px=_r(px[-1]),
        instance_diameter_min_mm=_r(mm[0]) if mm else None,
        instance_diameter_median_mm=_r(float(np.median(mm))) if mm else None,
        instance_diameter_max_mm=_r(mm[-1]) if mm else None,
        instance_cells=group.cells,
        largest_row=group.largest_cell[0],
        largest_col=group.largest_cell[1],
    )
