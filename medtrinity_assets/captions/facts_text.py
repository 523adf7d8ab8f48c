"""Typed facts as plain lines for the MLLM prompt (paper structure: position, annotation, measurements).

The prompt gives a real model the same facts the composer writes from: the ROI's grid position
in image terms (and patient terms where the display frame allows), its typed relations and every
structure it touches, its
count among ROIs of the same label, and its measurements with what they mean (the same
thresholds as the composer, data/appearance.yaml), so a model can state appearance that was
measured instead of guessing it.
"""

from __future__ import annotations

from medtrinity_assets.records import CaptionFacts, Measurements

from .appearance import Look, assess, compared_to, diameter_words, comparison_candidates, standardised_difference
from .data_files import appearance
from .groups_text import is_group, spread_words
from .labels import image_place, is_parts, number_words, patient_place, roi_label_of, roi_name, slice_levels, structure_name
from .relations_text import relation_clauses
from .vocab import join_words


def position_text(facts: CaptionFacts) -> str:
    """``the upper left part of the image; patient frame: on the patient's right, anteriorly; ...``."""
    roi = roi_label_of(facts)
    if not roi:
        return "none (no region of interest is marked; describe the whole image)"
    parts = []
    cell = (facts.position.row, facts.position.col) if facts.position else None
    if cell is not None:
        parts.append(f"in {image_place(*cell)} (directions as displayed)")
    patient = patient_place(facts.position)
    if patient:
        parts.append(f"patient frame: {patient}")
    levels = slice_levels(facts)
    if levels:
        parts.append(f"spinal level: this axial slice passes through the {join_words(levels)} {'vertebra' if len(levels) == 1 else 'vertebrae'}")
    m = facts.measurements
    name = roi_name(roi, m)
    subject, touch, cover = ("they", "touch", "cover") if name.plural else ("it", "touches", "covers")  # "they lie", not "it lie"
    if facts.roi_area_frac is not None:
        parts.append(f"{subject} {cover} about {100.0 * float(facts.roi_area_frac):.1f}% of the image area")
    if is_group(m):  # one record for many instances: their count, sizes and where the largest lies
        unit, low, mid, high = (
            ("mm", m.instance_diameter_min_mm, m.instance_diameter_median_mm, m.instance_diameter_max_mm)
            if m.instance_diameter_min_mm is not None
            else ("pixels", m.instance_diameter_min_px, m.instance_diameter_median_px, m.instance_diameter_max_px)
        )
        text = f"it groups all {number_words(m.instance_count)} instances of this label on the image ({spread_words(m)})"
        if low is not None and high is not None and mid is not None:
            text += f"; their equivalent diameters range from {low:.1f} to {high:.1f} {unit} (median {mid:.1f})"
        if m.largest_row is not None and m.largest_col is not None:
            text += f"; the largest lies in {image_place(m.largest_row, m.largest_col)}"
        parts.append(text + "; describe them as a group, not as one structure")
    elif is_parts(m, roi):
        parts.append(
            f"it is one of {number_words(m.label_count)} separate parts of one {structure_name(roi).one} on this slice "
            "(one structure cut into pieces by the slice: describe this part, do not count it as several structures)"
        )
    elif m is not None and m.label_count and m.label_count > 1:
        parts.append(f"it is one of {number_words(m.label_count)} regions with this label on the image")
    clauses = relation_clauses(name, facts, limit=8)
    if clauses:
        parts.append(f"relative position: {subject} " + f"; {subject} ".join(clauses))
    if facts.contacts is not None:  # complete, unlike the relations: all it may be said to touch
        touching = [f"the {structure_name(c).text}" for c in facts.contacts if c != roi]
        touching += [f"a neighbouring {structure_name(roi).one}"] if roi in facts.contacts else []
        parts.append(f"{subject} {touch} {join_words(touching)}, and no other marked structure" if touching else f"{subject} {touch} no other marked structure")
    return "; ".join(parts) if parts else "not available"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _nums(values) -> str:
    return ", ".join(_num(v) for v in values) if values else "n/a"


def measurement_lines(m: Measurements | None) -> list[str]:
    """One line per measured property, with the reading the composer would give it (or none)."""
    if m is None:
        return ["- none (no region measured)"]
    look: Look = assess(m)
    words = appearance()
    unit = m.intensity_unit or "n/a"
    lines = []
    if m.mean is not None:
        mean_unit = " HU" if unit == "HU" else f" ({unit} units)"
        line = f"- intensity: mean {_num(m.mean, 1 if unit == 'HU' else 3)}{mean_unit}, surrounding ring {_num(m.ring_mean, 1 if unit == 'HU' else 3)}"
        line += f", standardised contrast {_num(m.contrast)}"
        if look.contrast:
            degree = words.degree.get(look.degree or "", "")
            line += f" -> {degree}{look.contrast} than the surrounding tissue" if look.contrast != "similar" else " -> similar to the surroundings"
        else:
            line += " -> no reliable brightness difference (do not claim one)"
        if look.hu_band:
            line += f"; mean attenuation {look.hu_band}"
        lines.append(line)
    if m.std is not None:
        reading = words.reference("texture_words", look.texture, "not assessed")
        lines.append(f"- texture: standard deviation {_num(m.std, 3)}, entropy {_num(m.entropy)} bits, GLCM homogeneity {_num(m.glcm_homogeneity)} -> {reading}")
    if m.hue_delta is not None or m.saturation_delta is not None:
        reading = words.reference("colour_words", look.colour, "no clear colour difference")
        lines.append(f"- colour vs surroundings: hue {_num(m.hue_delta, 1)} degrees, saturation {_num(m.saturation_delta)} -> {reading}")
    if look.colour_name:
        ring = f"; surrounding ring {_nums(m.ring_rgb_mean)} -> {look.ring_colour_name}" if look.ring_colour_name else ""
        lines.append(f"- mean colour (R, G, B 0..1): {_nums(m.rgb_mean)} -> {look.colour_name}{ring}")
    if m.circularity is not None:
        shape = words.reference("shape_words", look.shape, "not assessed")
        lines.append(f"- shape: circularity {_num(m.circularity)}, elongation {_num(m.elongation)}, solidity {_num(m.solidity)} -> {shape}")
    if m.margin_sharpness is not None:
        margin = words.reference("margin_words", look.margin, "neither clearly sharp nor blurred")
        lines.append(f"- margin sharpness {_num(m.margin_sharpness)} (border vs inside gradient) -> {margin}")
    size = f"- size: {m.area_px} pixels" if m.area_px is not None else "- size: n/a"
    if look.diameter_mm is not None:
        size += f", about {diameter_words(look.diameter_mm)} across (equivalent diameter)"
    else:
        size += " (pixel spacing unknown: give no size in mm)"
    if m.n_components and m.n_components > 1 and not is_group(m):
        size += f"; in {number_words(m.n_components)} separate parts"
    lines.append(size)
    return lines


def comparison_lines(facts: CaptionFacts, limit: int = 3) -> list[str]:
    """The ROI's mean against the measured means of the alike structures it may be compared with
    (`appearance.comparison_candidates`), with
    the reading the checks hold a comparison to (``- vs the spleen: mean 13.3 vs 30.5 HU,
    standardised difference -0.95 -> darker``)."""
    m = facts.measurements
    if m is None or m.mean is None:
        return []
    lines = []
    for other in comparison_candidates(facts):
        c = standardised_difference(m, other)
        if c is None:
            continue
        name = structure_name(other.label).text
        digits, unit = (1, " HU") if other.unit == "HU" else (3, f" ({other.unit} units)")
        reading = compared_to(m, other)
        said = f"{reading} than the {name}" if reading in ("darker", "brighter") else (
            f"similar to the {name}" if reading else "no reliable difference (do not claim one)"
        )
        lines.append(f"- vs the {name}: mean {_num(m.mean, digits)} vs {_num(other.mean, digits)}{unit}, standardised difference {_num(c)} -> {said}")
        if len(lines) >= limit:
            break
    return lines
