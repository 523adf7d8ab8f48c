"""Measured-appearance questions about an outlined ROI, and the spinal level of an axial slice.

Since ``vqa-rules-v3``. Every answer is read from the record's own pixel measurements through the
readings the composer words (`captions.appearance.assess` and `compared_to`, thresholds in
captions/data/appearance.yaml), so a question is asked only where the caption could state the fact:

- brightness against the surrounding ring ("Is the outlined left kidney hypodense relative to its
  surroundings?" Yes; with negatives the opposite reading, No), and open ("How does ... appear
  relative to the surrounding tissue?");
- against another measured structure of the same image that the captions may compare it with
  (`appearance.candidates_for`: alike structures it relates to or touches, or of its own class;
  means from `structure_intensities` of the image's records), picked per record;
- mean attenuation in HU (CT), internal texture, outline shape, margin, equivalent diameter in mm;
- image level: the vertebral level of an axial slice, from its numbered vertebra labels.

A field the measurements cannot support (unreliable contrast, a multi-instance group's shape, no
spacing) gets no question. Questions are (question, answer, answer_type, category) tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from medtrinity_assets.captions.appearance import Look, assess, candidates_for, compared_to
from medtrinity_assets.captions.data_files import appearance, wording
from medtrinity_assets.captions.composer import described_name
from medtrinity_assets.captions.labels import Name, structure_name, vertebral_levels
from medtrinity_assets.captions.look_text import capitalise, diameter_words, form
from medtrinity_assets.captions.relations_text import modality_display
from medtrinity_assets.captions.vocab import join_words
from medtrinity_assets.records import Intensity, Measurements
from medtrinity_assets.stages.captions import structure_intensities
from medtrinity_assets.stages.facts import measurements_from_row

CATEGORY = "appearance"
Pair = tuple[str, str, str, str]  # question, answer, answer_type, category
_OPPOSITE = {"darker": "brighter", "brighter": "darker"}


@dataclass(frozen=True)
class ImageContext:
    """What the other records of an image contribute: its spinal levels and measured structures."""

    levels: list[str] = field(default_factory=list)
    intensities: dict[str, Intensity] = field(default_factory=dict)


def image_contexts(records: pl.DataFrame) -> dict[str, ImageContext]:
    """image_id -> its `ImageContext`, from the ROI records of each image."""
    if records.is_empty() or "roi_label" not in records.columns:
        return {}
    rois = records.filter(pl.col("roi_label").is_not_null())
    measured = structure_intensities(rois.rename({"roi_label": "label"})) if "m_mean" in rois.columns else {}
    out: dict[str, ImageContext] = {}
    for (image_id,), group in rois.group_by("image_id"):
        first = group.row(0, named=True)
        axial = first.get("frame_plane") == "axial"
        levels = vertebral_levels(group["roi_label"].to_list()) if axial else []
        out[image_id] = ImageContext(levels, {i.label: i for i in measured.get(image_id, [])})
    return out


def outlined_name(r: dict) -> Name:
    """The ROI's name as its caption gives it (`composer.described_name`)."""
    return described_name(r.get("roi_label") or "", measurements_from_row(r))


def level_questions(r: dict, context: ImageContext | None) -> list[Pair]:
    """The vertebral level of an axial slice ("L2", "T12 and L1")."""
    if context is None or not context.levels:
        return []
    return [("At which vertebral level is this axial slice?", join_words(context.levels), "open", "location")]


def _words(family: str | None):
    cfg = appearance()
    return cfg.intensity_words.get(family or "", cfg.intensity_words["default"])


def _reading(family: str | None, reading: str, surround: str) -> str:
    """The reference wording of a reading against a surround ("hypodense relative to the spleen")."""
    return form(getattr(_words(family), reading), None).format(surround=surround)


def _is(name: Name) -> str:
    return "Are" if name.plural else "Is"


def contrast_questions(name: Name, look: Look, family: str | None, negatives: bool) -> list[Pair]:
    if look.contrast is None:
        return []
    surround, own = form(wording().surround.default, None), ("their" if name.plural else "its") + " surroundings"
    degree = appearance().degree.get(look.degree or "", "")
    out = [
        (f"How {'do' if name.plural else 'does'} the outlined {name.text} appear relative to {surround}?", capitalise(degree + _reading(family, look.contrast, surround)), "open", CATEGORY),
        (f"{_is(name)} the outlined {name.text} {_reading(family, look.contrast, own)}?", "Yes", "closed", CATEGORY),
    ]
    if negatives:
        opposite = _OPPOSITE.get(look.contrast, "brighter")
        out.append((f"{_is(name)} the outlined {name.text} {_reading(family, opposite, own)}?", "No", "closed", CATEGORY))
    return out


def comparison_questions(r: dict, m: Measurements, name: Name, context: ImageContext | None, family: str | None, negatives: bool, pick: Callable[[list[str], str], str | None]) -> list[Pair]:
    """One alike structure the ROI may be compared with (`appearance.candidates_for`), with a
    reliable reading against its mean."""
    if context is None:
        return []
    related = [x.get("other") for x in r.get("relations") or []] + list(r.get("contacts") or [])
    candidates = candidates_for(r.get("roi_label") or "", related, list(context.intensities.values()))
    readings = {i.label: compared_to(m, i) for i in candidates}
    other = pick(sorted(o for o, reading in readings.items() if reading), r["sample_id"])
    if other is None:
        return []
    reading, that = readings[other], "the " + structure_name(other).text
    out = [(f"{_is(name)} the outlined {name.text} {_reading(family, reading, that)}?", "Yes", "closed", CATEGORY)]
    if negatives and reading in _OPPOSITE:
        out.append((f"{_is(name)} the outlined {name.text} {_reading(family, _OPPOSITE[reading], that)}?", "No", "closed", CATEGORY))
    return out


def look_questions(r: dict, name: Name, context: ImageContext | None, negatives: bool, pick: Callable[[list[str], str], str | None]) -> list[Pair]:
    """Every appearance and measured-size question the record's measurements support."""
    m = measurements_from_row(r)
    if m is None:
        return []
    cfg, look, family = appearance(), assess(m), modality_display(r.get("modality") or "")[2]
    label, be = name.text, _is(name)
    out = contrast_questions(name, look, family, negatives)
    out += comparison_questions(r, m, name, context, family, negatives, pick)
    if look.mean_hu is not None:
        out.append((f"What is the mean attenuation of the outlined {label}?", f"About {round(look.mean_hu)} HU", "open", CATEGORY))
    if look.texture is not None:  # answers in the reference words of the captions (appearance.yaml)
        out.append((f"{be} the outlined {label} homogeneous or heterogeneous?", capitalise(cfg.reference("texture_words", look.texture)), "open", CATEGORY))
    if look.shape is not None:
        out.append((f"What shape {be.lower()} the outlined {label} on this image?", capitalise(cfg.reference("shape_words", look.shape)), "open", CATEGORY))
    if look.margin in ("well", "ill"):
        out.append((f"Are the margins of the outlined {label} well defined?", "Yes" if look.margin == "well" else "No", "closed", CATEGORY))
    if look.diameter_mm is not None:
        out.append((f"What is the equivalent diameter of the outlined {label}?", f"About {diameter_words(look.diameter_mm)}", "open", "size"))
    return out

