"""Grounded composer: a multigranular description written only from typed `CaptionFacts`.

The offline default caption writer (no model weights). It writes the paper's five attributes:

1. modality and the organs / structures on the image (structures related to the ROI first);
2. where the ROI lies (grid cell in image terms; patient side/level where the display frame
   allowed them), its area share, its count among ROIs of the same label ("one of 125 nuclei"),
   its size in mm where pixel spacing is known, recorded findings, and — only when a passage is
   about the ROI's or a finding's concept — one whole background sentence (`background`);
3. colour / texture: its look measured relative to the surrounding ring (`appearance`,
   `look_text`; thresholds and words in data/appearance.yaml), or a sentence saying it could
   not be measured;
4. relations to other structures from the typed `Relation`s (`relations_text`).

Sentence variants live in data/wording.yaml; one is chosen per sentence, deterministically from
the seed (the request id, i.e. the ROI id), so captions vary in structure but repeat exactly.
"""

from __future__ import annotations

import hashlib
import random
import re

from medtrinity_assets.records import CaptionFacts, Measurements

from .appearance import assess
from .background import knowledge_sentence
from .data_files import labels, wording
from .labels import (
    Name,
    conjugations,
    count_phrase,
    image_place,
    is_parts,
    is_plural,
    number_words,
    part_name,
    patient_place,
    roi_label_of,
    roi_name,
    slice_levels,
    structure_name,
    vertebral_levels,
)
from .groups_text import group_sentences, is_group, share_of
from .look_text import capitalise, comparison_sentence, fill, form, look_sentences, no_look_sentence, size_sentence
from .relations_text import modality_display, relation_clauses, related_first
from .vocab import join_words, stem, unique, word_stems

COMPOSER_VERSION = "mt-composer-v13"

MAX_LISTED_STRUCTURES = 2


def seed_of(value: str | int | None, facts: CaptionFacts) -> int:
    """Integer seed from a request id (or from the facts' ROI id / content when none is given)."""
    if isinstance(value, int):
        return value
    key = value or str((facts.extra or {}).get("roi_id") or "")
    key = key or f"{facts.coarse_caption}|{facts.roi_label}|{facts.roi_position}"
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" or noun.startswith(("MR", "X-", "US ")) else "a ") + noun


def _is_negative(label: str) -> bool:
    return " ".join(label.replace("_", " ").lower().split()) in labels().negative_labels


def overview_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    noun, _, _ = modality_display(facts.modality)
    roi = roi_label_of(facts)
    plane = facts.frame.plane if facts.frame else None
    if roi and plane in ("axial", "coronal", "sagittal"):  # the recorded slice plane (whole images: frame sentence)
        noun = f"{plane} {noun}"
    region = join_words([structure_name(o).text for o in unique(facts.organs)])
    labels = related_first(facts)
    names = [structure_name(x).text for x in labels]
    count = facts.measurements.label_count if facts.measurements else None
    if roi and names and count and count > 1 and not is_parts(facts.measurements, roi):  # the ROI's label first, with how many there are
        names[0] = f"{number_words(count)} {structure_name(roi).many}"
    elif roi and names and not is_group(facts.measurements):  # one piece of a plural label: "the vertebra", as the ROI is named
        names[0] = roi_name(roi, facts.measurements).text
    listed = names[: len(listed_labels(labels))]
    if len(names) > len(listed):
        listed.append(form(wording().counts.further, rng).format(n=len(names) - len(listed)))
    items = join_words(listed)
    if roi and region and items and _named_by(region, listed):  # "the peripheral nerve and blood vessels": the region already names them
        items = ""
    single = len(listed) == 1 and not is_plural(listed[0])  # "the skin lesion is", "the liver and spleen are"
    values = {"is_region": "is" if len(unique(facts.organs)) < 2 and not is_plural(region) else "are", "are_items": "is" if single else "are", "appear_items": "appears" if single else "appear", "modality": noun, "a_modality": _a(noun), "A_modality": capitalise(_a(noun)), "region": region, "items": items}
    return fill("overview", values, rng)


def listed_labels(labels: list[str]) -> list[str]:
    """The structures an overview names (the rest it counts): two, or three when that is all."""
    return labels[: MAX_LISTED_STRUCTURES + 1] if len(labels) == MAX_LISTED_STRUCTURES + 1 else labels[:MAX_LISTED_STRUCTURES]


def level_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    """The spinal level of an axial slice from its numbered vertebra labels ("The slice is at the
    level of the L2 vertebra."); "" for other planes, no numbered vertebra, or when the ROI or the
    overview already names the vertebrae."""
    levels = slice_levels(facts) if roi_label_of(facts) else []
    if not levels or set(levels) <= set(vertebral_levels(listed_labels(related_first(facts)))):
        return ""
    noun = "vertebra" if len(levels) == 1 else "vertebrae"
    return fill("level", {"levels": f"{join_words(levels)} {noun}"}, rng)


def _named_by(region: str, listed: list[str]) -> bool:
    """Every listed structure's head noun already appears in the region's words."""
    words = word_stems(region)
    return bool(listed) and all(stem(x.split()[-1]) in words for x in listed)


def place_of(facts: CaptionFacts, pick: int = 0, side_pick: int = 0) -> str:
    cell = (facts.position.row, facts.position.col) if facts.position else None
    if cell is None:
        return ""
    patient = patient_place(facts.position, side_pick)
    return image_place(*cell, pick) + (f", {patient}" if patient else "")


def _share(frac: float | None) -> str:
    if frac is None:
        return ""
    value = 100.0 * float(frac)
    if value < 0.95:  # 0.95..1 rounds to "about 1%", not "about 1.0%"
        return "less than 1%" if value < 0.1 else f"about {value:.1f}%"
    return f"about {value:.0f}%"


def location_sentence(name: Name, facts: CaptionFacts, rng: random.Random) -> str:
    m = facts.measurements
    if is_parts(m, roi_label_of(facts) or ""):  # one piece of a structure the slice cuts into several
        return part_location_sentence(facts, rng)
    values = {
        **conjugations(name.plural),
        "name": name.text,
        "Name": capitalise(name.text),
        "name_one": name.one,
        "place": place_of(facts, rng.randrange(12), rng.randrange(12)),
        "share_of": share_of(_share(facts.roi_area_frac), rng),
        "Share_cap": capitalise(_share(facts.roi_area_frac)),
        "count_phrase": count_phrase(name, m.label_count if m else None, rng.randrange(3)),
    }
    if m and m.label_count and m.label_count > 1:
        values["many_count"] = f"the {number_words(m.label_count)} {name.many} in the image"
    text = fill("location", values, rng)
    return text or f"{capitalise(name.text)} {conjugations(name.plural)['is']} the structure described here."


def part_location_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    """``The liver appears in two separate parts on this slice; the part described here lies in ...``"""
    m = facts.measurements
    assert m is not None and m.label_count
    one = structure_name(roi_label_of(facts) or "").one
    values = {
        "one": one,
        "n": number_words(m.label_count),
        "place": place_of(facts, rng.randrange(12), rng.randrange(12)),
        "share_of": share_of(_share(facts.roi_area_frac), rng),
    }
    return fill("location_part", values, rng)


def frame_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    """A whole-image record's display frame: plane, display convention, pixel size (where recorded)."""
    f, w = facts.frame, wording().frame
    plane = (f.plane if f else None) or ""
    convention = ""
    if f is not None:
        parts = [w.lateral.get(f.lateral or "", ""), w.anterior_side.get(f.anterior_side or "", "") if f.plane == "sagittal" else ""]
        parts = [p for p in parts if p]
        up = w.up.get(f.up or "", "")
        convention = (" and ".join(parts) + (f", {up}" if up else "")) if parts else ""
    spacing = facts.spacing_mm or (f.spacing_rc if f else None)
    size = ""
    if spacing:
        mean = (float(spacing[0]) + float(spacing[1])) / 2.0
        size = f"{mean:.2f}" if mean < 1 else f"{mean:.1f}"
    values = {"plane": plane, "a_plane": _a(plane) if plane else "", "kind": w.kind.get(plane, ""), "convention": convention, "spacing": size}
    return fill("frame", values, rng)


def findings_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    labels = unique(facts.image_labels)
    if not labels:
        return ""
    positive = [structure_name(x).text for x in labels if not _is_negative(x)]
    if not positive:
        return fill("findings", {"x": "x"}, rng, "none")
    names = join_words(positive)
    return fill("findings", {"names": names, "Names": capitalise(names)}, rng, "one" if len(positive) == 1 else "many")


def background_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    sentence = knowledge_sentence(facts)
    if not sentence:
        return ""
    first = sentence.split(" ", 1)[0]
    if first in ("A", "An", "The", "It", "In", "Most", "Many", "These", "Some") and first[1:].islower():
        lead = rng.choice(wording().variants("background_lead"))
        return lead + sentence[:1].lower() + sentence[1:]
    return sentence


def relations_sentence(name: Name | None, facts: CaptionFacts, rng: random.Random) -> str:
    roi = roi_label_of(facts)
    others = [structure_name(x).text for x in unique(facts.other_rois) if x != roi][:MAX_LISTED_STRUCTURES]
    if name is None:
        if others:
            return fill("whole_relations", {"others": join_words(others)}, rng)
        return fill("whole_alone", {"x": "x"}, rng)  # the section's text; not in the description
    clauses = relation_clauses(name, facts, pick=rng.randrange(6))  # 6: uniform over 2- and 3-form lists
    values = {**conjugations(name.plural), "name": name.text, "Name": capitalise(name.text)}
    if clauses:
        joined = join_words(clauses)
        if len(clauses) > 1 and any(" and " in c or "," in c for c in clauses):  # "borders A and B, and lies ..."
            joined = ", ".join(clauses[:-1]) + ", and " + clauses[-1]
        return fill("relations", {**values, "clauses": joined}, rng)
    if others:
        return fill("others", {**values, "others": join_words(others)}, rng)
    return fill("no_neighbour", values, rng)


def organs_section(facts: CaptionFacts) -> str:
    organs = unique([structure_name(o).text for o in facts.organs])
    structures = unique([structure_name(x).text for x in [roi_label_of(facts) or "", *facts.other_rois] if x])
    text = "; ".join(x for x in (capitalise(join_words(organs)) if organs else "", ", ".join(structures)) if x)
    return text or "Not specified"


def this_part(text: str, label: str) -> str:
    """Later mentions of a piece the location sentence introduced: "this part of the liver", not
    "the part of the liver"."""
    one = re.escape(structure_name(label).one)
    return re.sub(rf"\b([Tt])he (?=part of the {one}\b)", lambda m: m.group(1) + "his ", text)


def described_name(roi: str, m: Measurements | None) -> Name:
    """How a caption names its ROI: many instances as one record in the plural ("nuclei"), one piece
    of a structure the slice cuts into several as "part of the liver", else `roi_name` (one
    connected piece of a plural label may be singular: "vertebra")."""
    if is_group(m):
        n = structure_name(roi)
        return Name(n.many, n.one, n.many, True)
    return part_name(roi) if is_parts(m, roi) else roi_name(roi, m)


def compose_caption(facts: CaptionFacts, seed: str | int | None = None) -> tuple[str, dict[str, str]]:
    """``(description, sections)`` written only from the facts; deterministic for (facts, seed)."""
    rng = random.Random(seed_of(seed, facts))
    _, modality_section, family = modality_display(facts.modality)
    roi = roi_label_of(facts)
    m = facts.measurements
    name = described_name(roi, m) if roi else None
    look = assess(m) if roi else assess(None)
    overview = overview_sentence(facts, rng)
    if name is None:
        region = join_words([structure_name(o).text for o in unique(facts.organs)])
        whole = fill("whole_image", {"region": region, "is_region": "are" if len(unique(facts.organs)) > 1 or is_plural(region) else "is"}, rng)
        where = [s for s in (frame_sentence(facts, rng), whole) if s]
    elif is_group(m):
        where = group_sentences(name, facts, _share(facts.roi_area_frac), rng)
    else:
        where = [level_sentence(facts, rng), location_sentence(name, facts, rng), size_sentence(name, look, facts, rng)]
    findings, background = findings_sentence(facts, rng), background_sentence(facts, rng)
    looks = look_sentences(name, look, facts, family, rng) if name is not None else []
    texture = " ".join(looks)
    relations = relations_sentence(name, facts, rng)
    compared = comparison_sentence(name, facts, family, rng) if name is not None else ""
    relations = " ".join(s for s in (relations, compared) if s)
    roi_part = [s for s in (*where, findings, background) if s]
    sections = {
        "modality": modality_section,
        "organs": organs_section(facts),
        "roi": " ".join(roi_part),
        "texture": texture or no_look_sentence(name, facts, rng),
        "relations": relations,
    }
    # the description states facts only: what could not be measured or compared stays in the
    # sections (which must answer every heading) and out of the description
    said_relation = name is not None and (facts.relations or facts.other_rois)
    seen = [texture, relations if said_relation else ""]
    if rng.random() < 0.35:  # clause order varies per record: neighbours before appearance
        seen.reverse()
    body = [overview, *(roi_part[:-1] if background else roi_part), *seen]
    if background:
        body.append(background)  # background last: what is seen comes first
    text = " ".join(s for s in body if s)
    if roi and is_parts(m, roi):
        text, sections = this_part(text, roi), {k: this_part(v, roi) for k, v in sections.items()}
    return text, sections
