"""What an ROI looks like, decided from its measurements (thresholds in data/appearance.yaml).

`assess(measurements, family)` turns `records.Measurements` into a typed `Look`: brightness
relative to the surrounding ring (darker | brighter | similar, with a degree), CT mean HU and its
range, texture (homogeneous | mild | heterogeneous), outline (round | oval | elongated |
irregular), margin (well | ill defined), colour (deeper | paler, hue shift; the names of the ROI's
and the ring's mean colours, `captions.colour_names`) and size. A field is
None when its measurement is null or unreliable: an ROI below ``min_area_px``, no ring, a
contrast at the cap (a tiny pooled deviation), a raw difference of means below
``min_difference``, a shape of a small or multi-part mask. The composer words a `Look`; the
quality report (`captions.quality`) re-derives it to verify captions. `compared_to(m, other)`
reads the ROI against another structure of the image (`records.Intensity`) with the same bands;
`comparison_candidates(facts)` lists the alike structures it may be compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medtrinity_assets.records import CaptionFacts, Intensity, Measurements

from .colour_names import colour_name
from .data_files import appearance
from .labels import roi_label_of, side_of, structure_key


@dataclass(frozen=True)
class Look:
    contrast: str | None = None  # darker | brighter | similar
    degree: str | None = None  # slight | clear | marked (None for similar)
    mean_hu: float | None = None
    hu_band: str | None = None  # reference words of the CT range (data/appearance.yaml ct_bands)
    texture: str | None = None  # homogeneous | mild | heterogeneous
    shape: str | None = None  # round | oval | elongated | irregular
    margin: str | None = None  # well | ill
    parts: int | None = None  # connected parts (when more than one)
    colour: str | None = None  # deeper | paler
    hue_differs: bool = False
    colour_name: str | None = None  # name of the ROI's mean colour (data/appearance.yaml colour_names)
    ring_colour_name: str | None = None  # ... of the surrounding ring's
    diameter_mm: float | None = None

    @property
    def claims(self) -> bool:
        """Whether anything about the ROI's look (not only its size) can be said."""
        return any(v is not None for v in (self.contrast, self.mean_hu, self.texture, self.shape, self.margin, self.colour, self.colour_name))


def _big_enough(m: Measurements) -> bool:
    return m.area_px is not None and m.area_px >= appearance().reliability.min_area_px


def contrast_of(m: Measurements) -> tuple[str | None, str | None]:
    """``(darker|brighter|similar, slight|clear|marked)`` or ``(None, None)`` when unreliable."""
    cfg = appearance()
    unit = m.intensity_unit or ""
    if m.contrast is None or m.mean is None or m.ring_mean is None or not _big_enough(m):
        return None, None
    if abs(m.contrast) >= cfg.reliability.contrast_cap or unit not in cfg.reliability.min_difference:
        return None, None
    c, diff = float(m.contrast), float(m.mean) - float(m.ring_mean)
    if abs(c) < cfg.contrast["similar"]:
        if abs(diff) < cfg.reliability.similar_max_difference.get(unit, 0.0):
            return "similar", None
        return None, None  # a raw difference within a widely varying surround: no claim either way
    if abs(diff) < cfg.reliability.min_difference[unit] or (diff > 0) != (c > 0):
        return None, None  # standardised difference from a tiny spread: not a visible difference
    degree = "slight" if abs(c) < cfg.contrast["clear"] else "clear" if abs(c) < cfg.marked_contrast else "marked"
    visible = michelson(m)
    if degree == "slight" and unit in cfg.slight_michelson_max and visible is not None and visible >= cfg.slight_michelson_max[unit]:
        degree = "clear"  # a large visible difference within a widely varying surround
    return ("darker" if c < 0 else "brighter"), degree


def standardised_difference(m: Measurements, other: Intensity) -> float | None:
    """(ROI mean - other structure's mean) / pooled standard deviation, as the ring contrast is
    made; None when the two are not comparable (different units, no mean, either too small)."""
    minimum = appearance().reliability.min_area_px
    if m.mean is None or m.std is None or (m.intensity_unit or "") != other.unit or not _big_enough(m) or other.area_px < minimum:
        return None
    pooled = math.sqrt((float(m.std) ** 2 + other.std**2) / 2)
    return (float(m.mean) - other.mean) / pooled if pooled > 0 else None


def comparable(label: str, other: str) -> bool:
    """Whether two structures are alike enough to compare (`compare_classes` / `compare_across`
    in data/appearance.yaml); a structure of no class is comparable with any."""
    cfg = appearance()
    a, b = cfg.compare_class(structure_key(label)), cfg.compare_class(structure_key(other))
    return a is None or b is None or a == b or (a, b) in cfg.compare_across or (b, a) in cfg.compare_across


def comparison_candidates(facts: CaptionFacts) -> list[Intensity]:
    """The measured structures (`CaptionFacts.other_intensities`) the ROI may be compared with
    (`candidates_for`)."""
    roi = roi_label_of(facts)
    related = [*(r.other for r in facts.relations), *(facts.contacts or [])]
    return candidates_for(roi, related, facts.other_intensities) if roi else []


def candidates_for(roi: str, related: list[str], measured: list[Intensity]) -> list[Intensity]:
    """In order: the measured structures of `related` (the ROI's relations, then its contacts), then
    the other measured structures of the ROI's own comparison class (the spleen for the liver; the
    same structure on the other side first, then those on the ROI's side); only comparable ones,
    never the ROI's own label."""
    cfg, by_label, key = appearance(), {i.label: i for i in measured}, structure_key(roi)
    own = cfg.compare_class(key)
    same = [i.label for i in measured if own is not None and cfg.compare_class(structure_key(i.label)) == own]
    same.sort(key=lambda label: (structure_key(label) != key, side_of(label) != side_of(roi)))  # the counterpart, then the same side
    labels = dict.fromkeys([*related, *same])
    return [by_label[label] for label in labels if label in by_label and label != roi and comparable(roi, label)]


def compared_to(m: Measurements, other: Intensity) -> str | None:
    """``darker`` | ``brighter`` | ``similar``: the ROI against another structure of the image, with
    the ring's bands and reliability rules (a capped contrast, or a raw difference below
    ``min_difference``, gives no claim; "similar" needs a small raw difference too)."""
    cfg = appearance()
    unit = other.unit
    c = standardised_difference(m, other)
    if c is None or abs(c) >= cfg.reliability.contrast_cap or unit not in cfg.reliability.min_difference:
        return None
    diff = float(m.mean) - other.mean  # type: ignore[arg-type]
    if abs(c) < cfg.contrast["similar"]:
        return "similar" if abs(diff) < cfg.reliability.similar_max_difference.get(unit, 0.0) else None
    if abs(diff) < cfg.reliability.min_difference[unit]:
        return None
    return "darker" if c < 0 else "brighter"


def michelson(m: Measurements) -> float | None:
    """|mean - ring mean| / (mean + ring mean) for non-negative intensities (relative, rgb), else None."""
    if m.mean is None or m.ring_mean is None or (m.intensity_unit or "") == "HU" or m.mean < 0 or m.ring_mean < 0:
        return None
    total = float(m.mean) + float(m.ring_mean)
    return abs(float(m.mean) - float(m.ring_mean)) / total if total > 0 else None


def hu_of(m: Measurements) -> tuple[float | None, str | None]:
    """CT: ``(mean HU, range words)``; the range only for a fairly uniform ROI."""
    cfg = appearance()
    if m.intensity_unit != "HU" or m.mean is None or not _big_enough(m):
        return None, None
    band = None
    if m.std is not None and m.std <= cfg.max_std_hu:
        band = next(b.words[0] for b in cfg.ct_bands if m.mean < b.below)
    return float(m.mean), band


def texture_of(m: Measurements) -> str | None:
    cfg = appearance()
    bounds = cfg.heterogeneity.get(m.intensity_unit or "")
    if bounds is None or m.std is None or not _big_enough(m):
        return None
    if m.std <= bounds.homogeneous:
        return "homogeneous"
    return "heterogeneous" if m.std >= bounds.heterogeneous else "mild"


def shape_of(m: Measurements) -> str | None:
    rules = appearance().shape
    if m.area_px is None or m.area_px < rules.min_shape_px or (m.n_components or 1) != 1:
        return None
    if m.solidity is None or m.circularity is None or m.elongation is None:
        return None
    if m.solidity < rules.irregular_solidity or m.circularity < rules.irregular_circularity:
        return "irregular"
    if m.elongation < rules.elongated:
        return "elongated"
    if m.elongation >= rules.round_elongation and m.circularity >= rules.round_circularity:
        return "round"
    return "oval"


def margin_of(m: Measurements) -> str | None:
    cfg = appearance().margin
    if m.margin_sharpness is None or not _big_enough(m):
        return None
    if m.margin_sharpness >= cfg["well_defined"]:
        return "well"
    return "ill" if m.margin_sharpness <= cfg["ill_defined"] else None


def colour_of(m: Measurements) -> tuple[str | None, bool]:
    cfg = appearance().colour
    if m.intensity_unit != "rgb" or not _big_enough(m):
        return None, False
    colour = None
    if m.saturation_delta is not None and abs(m.saturation_delta) >= cfg["saturation"]:
        colour = "deeper" if m.saturation_delta > 0 else "paler"
    hue = m.hue_delta is not None and abs(m.hue_delta) >= cfg["hue"]
    return colour, hue


def colour_names_of(m: Measurements) -> tuple[str | None, str | None]:
    """Names of the ROI's and the ring's mean colours; none for a region recorded achromatic (a grey
    image stored as RGB) or too small to measure reliably."""
    if m.intensity_unit != "rgb" or not _big_enough(m) or m.unmeasured.get("saturation_delta") == "achromatic":
        return None, None
    roi = colour_name(m.rgb_mean)
    return roi, colour_name(m.ring_rgb_mean) if roi else None


def assess(m: Measurements | None) -> Look:
    """The typed look of an ROI from its measurements (an empty `Look` for None)."""
    if m is None:
        return Look()
    contrast, degree = contrast_of(m)
    hu, band = hu_of(m)
    colour, hue = colour_of(m)
    named, ring_named = colour_names_of(m)
    group = bool(m.instance_count and m.instance_count > 1)  # a union of instances: no one outline or size
    diameter = None if group else m.equivalent_diameter_mm
    if diameter is not None and diameter < appearance().size["min_diameter_mm"]:
        diameter = None
    return Look(
        contrast=contrast,
        degree=degree,
        mean_hu=hu,
        hu_band=band,
        texture=texture_of(m),
        shape=None if group else shape_of(m),
        margin=margin_of(m),
        parts=m.n_components if (m.n_components or 0) > 1 and not group else None,
        colour=colour,
        hue_differs=hue,
        colour_name=named,
        ring_colour_name=ring_named,
        diameter_mm=diameter,
    )


def diameter_words(mm: float) -> str:
    """``about 7 mm``-style rounding: mm below 10 cm, then centimetres to one decimal."""
    if mm < 10:
        return f"{mm:.0f} mm" if mm >= 1.5 else f"{mm:.1f} mm"
    if mm < 100:
        return f"{round(mm):.0f} mm"
    return f"{mm / 10:.1f} cm".replace(".0 cm", " cm")
