"""Question–answer pairs derived from released records (the seed's downstream VQA step).

Two generators, one output schema (`VQA_SCHEMA`):

- **rules** (the offline default, used with the grounded-composer backend): closed (yes/no) and
  open questions built only from structured fields, so every answer is true by construction —
  modality (open; yes and, when enabled, a "no" about another modality family), organ (open;
  yes), ROI location (open; yes/no about image halves and sides, in IMAGE terms), ROI
  finding/structure (open; yes and a "no" naming another label of the same source), ROI size
  (open), ROI contact (closed; yes about a structure its mask touches: vqa_contacts.py),
  image-level findings (open; yes, or "no abnormal finding" for normal images), and from the
  pixel measurements the ROI's appearance, size in mm and the slice's spinal level (vqa_looks.py).
  Image-level questions are asked once per image (on the clean image); ROI questions once per
  ROI (on its overlay), at most ``max_rois_per_image`` ROIs per image (largest first).
- **mllm** (``transformers`` / ``openai`` backends; vqa_model.py): `MLLMResource.describe_text` writes pairs as
  JSON from the caption and its facts; malformed pairs, pairs outside `CATEGORIES` (contact and
  appearance questions are rule-made only) and pairs that contradict the record's modality or ROI side are
  dropped, and a record left with no valid pair gets the rule pairs.

Pairs inherit their record's split, so no question crosses a split boundary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.captions.labels import structure_name
from medtrinity_assets.captions.vocab import (
    COMPATIBLE_MODALITIES,
    MODALITIES,
    join_words,
    modality_families,
    modality_names,
    word_stems,
)
from medtrinity_assets.grid import position_grid

from .config import VqaSettings
from .schema import VQA_SCHEMA
from .vqa_contacts import CATEGORY as CONTACT_CATEGORY, contact_questions
from .vqa_looks import ImageContext, image_contexts, level_questions, look_questions, outlined_name

VQA_RULES_VERSION = "vqa-rules-v3"  # v2: contact questions; v3: measured appearance, size in mm, spinal level
CATEGORIES = ("modality", "organ", "location", "finding", "size")
ANSWER_TYPES = ("closed", "open")
#: modality families offered as the "no" alternative, in this order of preference
NEGATIVE_MODALITY_FAMILIES = ("ct", "mri", "xray", "ultrasound", "microscopy", "pet", "endoscopy")
NORMAL_LABELS = {"no finding", "normal", "no abnormality"}
MAX_OPEN_ANSWER_WORDS = 40

_OPPOSITE = {"upper": "lower", "lower": "upper", "left": "right", "right": "left"}


def grid_cell_of(r: dict) -> tuple[int, int] | None:
    """(row, col) of a record's ROI on the position grid, from its typed columns."""
    if r.get("grid_row") is None or r.get("grid_col") is None:
        return None
    return int(r["grid_row"]), int(r["grid_col"])


def image_location(row: int, col: int) -> str:
    """Image-frame wording of a grid cell, naming its sides ("the upper part of the image, left of centre");
    the sides and the columns near the centre line come from the position grid (grid/grid.yaml)."""
    v, h = position_grid().named_sides(row, col)
    if h and position_grid().near_centre(col):
        base = f"the {v} part of the image" if v else "the middle of the image"
        return f"{base}, {h} of centre"
    if v and h:
        return f"the {v} {h} part of the image"
    if v:
        return f"the {v} central part of the image"
    if h:
        return f"the {h} side of the image, at mid-height"
    return "the central part of the image"


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    answer_type: str  # closed | open
    category: str
    on_overlay: bool = False  # about the outlined ROI: asked on the overlay image


def _stable_pick(options: list[str], key: str) -> str | None:
    if not options:
        return None
    return options[int(hashlib.sha1(key.encode()).hexdigest(), 16) % len(options)]


def allowed_families(modality: str) -> set[str]:
    """Families that may be named for this modality (its own plus compatible ones, both ways)."""
    own = modality_families(modality)
    allowed = set(own)
    for f in own:
        allowed |= COMPATIBLE_MODALITIES.get(f, frozenset())
    allowed |= {f for f, compat in COMPATIBLE_MODALITIES.items() if compat & own}
    return allowed


def other_modality(modality: str, key: str) -> str | None:
    """Short name of a modality family this image is certainly not (None when the modality is unknown)."""
    if not modality_families(modality):
        return None
    allowed = allowed_families(modality)
    options = [MODALITIES[f].short for f in NEGATIVE_MODALITY_FAMILIES if f not in allowed]
    return _stable_pick(options, key)


def size_phrase(area_frac: float) -> str:
    if area_frac < 0.01:
        return "less than 1% of the image"
    if area_frac < 0.05:
        return "between 1% and 5% of the image"
    if area_frac < 0.25:
        return "between 5% and 25% of the image"
    return "more than a quarter of the image"


def image_questions(r: dict, negatives: bool, context: ImageContext | None = None) -> list[QA]:
    """Modality, organ and image-level finding questions for one image (from any of its records)."""
    out: list[QA] = []
    modality = (r.get("modality") or "").strip()
    if modality:
        short, _ = modality_names(modality)
        out.append(QA("What imaging modality was used to acquire this image?", modality, "open", "modality"))
        out.append(QA(f"Is the imaging modality of this image {short}?", "Yes", "closed", "modality"))
        other = other_modality(modality, r["image_id"]) if negatives else None
        if other:
            out.append(QA(f"Is the imaging modality of this image {other}?", "No", "closed", "modality"))
    organs = [o for o in (r.get("organs") or []) if o]
    if organs:
        out.append(QA("Which organ or body region is shown in this image?", join_words(organs).capitalize(), "open", "organ"))
        out.append(QA(f"Does this image show the {organs[0]}?", "Yes", "closed", "organ"))
    labels = [lab for lab in (r.get("labels") or []) if lab]
    findings = [lab for lab in labels if lab.lower() not in NORMAL_LABELS]
    if findings:
        out.append(QA("What finding is reported for this image?", join_words(findings), "open", "finding"))
        out.append(QA(f"Is {findings[0]} present in this image?", "Yes", "closed", "finding"))
    elif labels:
        out.append(QA("Does this image show any abnormal finding?", "No", "closed", "finding"))
    return out + [QA(*p) for p in level_questions(r, context)]


def roi_questions(r: dict, other_labels: list[str], negatives: bool, context: ImageContext | None = None) -> list[QA]:
    """Structure, location, size, contact and appearance questions about one outlined ROI, naming
    it as the caption does (`outlined_name`: "left kidney", "part of the liver") with agreement."""
    name = outlined_name(r)
    if not name.text:
        return []
    label, be = name.text, ("are" if name.plural else "is")
    Be = be.capitalize()
    out = [
        QA("What structure is outlined in this image?", label, "open", "finding", True),
        QA(f"Is the outlined structure the {label}?", "Yes", "closed", "finding", True),
    ]
    if negatives:
        own = word_stems(structure_name(r["roi_label"]).text)
        candidates = sorted({structure_name(o).text for o in other_labels if o and not (word_stems(structure_name(o).text) & own)})
        wrong = _stable_pick(candidates, r["sample_id"])
        if wrong:
            out.append(QA(f"Is the outlined structure the {wrong}?", "No", "closed", "finding", True))
    cell = grid_cell_of(r)
    if cell is not None:
        where = image_location(*cell).removeprefix("the ")
        out.append(QA(f"Where {be} the outlined {label} located in the image?", where[:1].upper() + where[1:], "open", "location", True))
        half, side = position_grid().named_sides(*cell)
        if half:
            out.append(QA(f"{Be} the outlined {label} in the {half} half of the image?", "Yes", "closed", "location", True))
            if negatives:
                out.append(QA(f"{Be} the outlined {label} in the {_OPPOSITE[half]} half of the image?", "No", "closed", "location", True))
        if side:
            out.append(QA(f"{Be} the outlined {label} on the {side} side of the image?", "Yes", "closed", "location", True))
            if negatives:
                out.append(QA(f"{Be} the outlined {label} on the {_OPPOSITE[side]} side of the image?", "No", "closed", "location", True))
        if not half and not side:
            out.append(QA(f"{Be} the outlined {label} near the centre of the image?", "Yes", "closed", "location", True))
    if r.get("area_frac") is not None:
        out.append(QA(f"How large {be} the outlined {label} relative to the whole image?", size_phrase(float(r["area_frac"])).capitalize(), "open", "size", True))
    out += [QA(q, a, "closed", CONTACT_CATEGORY, True) for q, a in contact_questions(r, name, _stable_pick)]
    return out + [QA(*p, on_overlay=True) for p in look_questions(r, name, context, negatives, _stable_pick)]


# ----------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class VqaTarget:
    """A record questions are asked about: image-level questions (first record of an image) and/or ROI questions."""

    record: dict
    image_level: bool
    roi_level: bool


def vqa_targets(records: pl.DataFrame, settings: VqaSettings) -> list[VqaTarget]:
    """Per image: its first record carries the image-level questions; up to N largest ROIs get ROI questions."""
    targets: list[VqaTarget] = []
    if records.is_empty():
        return targets
    ordered = records.sort(["image_id", "sample_id"])
    for _, group in ordered.group_by("image_id", maintain_order=True):
        rows = group.to_dicts()
        rois = [r for r in rows if r["roi_origin"] != "none" and r.get("roi_label")]
        rois = sorted(rois, key=lambda r: (-(r.get("area_frac") or 0.0), r["sample_id"]))[: settings.max_rois_per_image]
        roi_ids = {r["sample_id"] for r in rois}
        first = rows[0]
        if first["sample_id"] not in roi_ids:
            targets.append(VqaTarget(first, True, False))
            for r in rois:
                targets.append(VqaTarget(r, False, True))
        else:
            for r in rois:
                targets.append(VqaTarget(r, r["sample_id"] == first["sample_id"], True))
    return targets


def labels_by_dataset(records: pl.DataFrame) -> dict[str, list[str]]:
    if records.is_empty():
        return {}
    rois = records.filter(pl.col("roi_label").is_not_null())
    return {ds: sorted(set(g["roi_label"].to_list())) for (ds,), g in rois.group_by("dataset")}


def pair_rows(target: VqaTarget, pairs: list[QA], generator: str) -> list[dict]:
    r = target.record
    base = r["sample_id"] if target.roi_level else r["image_id"]
    counters: dict[str, int] = {}
    rows = []
    for qa in pairs:
        n = counters.get(qa.category, 0)
        counters[qa.category] = n + 1
        rows.append(
            {
                "qa_id": f"{base}|{qa.category}|{n}",
                "sample_id": r["sample_id"],
                "image_id": r["image_id"],
                "split": r["split"],
                "dataset": r["dataset"],
                "image": r["overlay"] if qa.on_overlay else r["image"],
                "question": qa.question,
                "answer": qa.answer,
                "answer_type": qa.answer_type,
                "category": qa.category,
                "generator": generator,
            }
        )
    return rows


def rule_pairs_for(target: VqaTarget, other_labels: list[str], settings: VqaSettings, context: ImageContext | None = None) -> list[QA]:
    pairs: list[QA] = []
    if target.image_level:
        pairs += image_questions(target.record, settings.negatives, context)
    if target.roi_level:
        pairs += roi_questions(target.record, other_labels, settings.negatives, context)
    return pairs


def rule_based_pairs(records: pl.DataFrame, settings: VqaSettings) -> pl.DataFrame:
    """Every rule question for the records (see the module docstring)."""
    others, contexts = labels_by_dataset(records), image_contexts(records)
    rows: list[dict] = []
    for t in vqa_targets(records, settings):
        pairs = rule_pairs_for(t, others.get(t.record["dataset"], []), settings, contexts.get(t.record["image_id"]))
        rows += pair_rows(t, pairs, f"rules:{VQA_RULES_VERSION}")
    return pl.DataFrame(rows, schema=VQA_SCHEMA) if rows else pl.DataFrame(schema=VQA_SCHEMA)


def vqa_summary(pairs: pl.DataFrame) -> dict:
    """Pairs per split, category and answer type; yes/no balance of closed questions."""
    if pairs.is_empty():
        return {"pairs": 0}
    closed = pairs.filter(pl.col("answer_type") == "closed")
    return {
        "pairs": pairs.height,
        "per_split": dict(pairs.group_by("split").len().sort("split").iter_rows()),
        "per_category": dict(pairs.group_by("category").len().sort("category").iter_rows()),
        "per_answer_type": dict(pairs.group_by("answer_type").len().sort("answer_type").iter_rows()),
        "closed_yes": int((closed["answer"] == "Yes").sum()),
        "closed_no": int((closed["answer"] == "No").sum()),
    }
