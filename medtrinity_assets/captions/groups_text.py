"""Wording of a grouped ROI (many instances of one label as one record, `rois/groups.py`).

A grouped ROI is described as the group it is: how many instances, how far they spread over the
image, the range and median of their equivalent diameters (mm where pixel spacing is known, else
pixels) and where the largest one lies; all from the typed `Measurements.instance_*` fields.
"""

from __future__ import annotations

import random

from medtrinity_assets.grid import position_grid
from medtrinity_assets.records import CaptionFacts, Measurements

from .data_files import wording
from .labels import Name, image_place, number_words
from .look_text import capitalise, fill, form


def is_group(m: Measurements | None) -> bool:
    return bool(m is not None and m.instance_count and m.instance_count > 1)


def spread_words(m: Measurements) -> str:
    share = (m.instance_cells or 0) / position_grid().cells
    return next(s.words for s in wording().counts.spread if share >= s.min_share)


def _size(value: float) -> str:
    return f"{value:.0f}" if value >= 2 else f"{value:.1f}"


def share_of(share: str, rng: random.Random) -> str:
    """``about 2% of the image`` in one of its equivalent forms (wording.yaml counts.share_of)."""
    return form(wording().counts.share_of, rng).format(share=share) if share else ""


def group_sentences(name: Name, facts: CaptionFacts, share: str, rng: random.Random) -> list[str]:
    """Where the instances lie and how large they are (two sentences)."""
    m = facts.measurements
    assert m is not None and m.instance_count
    count = number_words(m.instance_count)
    values = {"count": count, "Count": capitalise(count), "many": name.many, "spread": spread_words(m), "share_of": share_of(share, rng)}
    out = [fill("group_location", values, rng)]
    mm = m.instance_diameter_min_mm is not None and m.instance_diameter_max_mm is not None
    low, mid, high = (
        (m.instance_diameter_min_mm, m.instance_diameter_median_mm, m.instance_diameter_max_mm)
        if mm
        else (m.instance_diameter_min_px, m.instance_diameter_median_px, m.instance_diameter_max_px)
    )
    if low is not None and high is not None and mid is not None:
        size = {"dmin": _size(low), "dmed": _size(mid), "dmax": _size(high), "unit": "mm" if mm else "pixels"}
        if m.largest_row is not None and m.largest_col is not None:
            size["largest"] = image_place(m.largest_row, m.largest_col, rng.randrange(12))
        out.append(fill("group_size", size, rng))
    return [s for s in out if s]
