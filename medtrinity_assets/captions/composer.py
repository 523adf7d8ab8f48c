"""Grounded composer: a multigranular description written only from `CaptionFacts`.

The offline default caption writer (no model weights). Every statement comes from the facts:
modality, organs and structures, the ROI's position phrase (image sides) and anatomical
position, its area share, recorded findings, the ROI's relations, and — as clearly framed
background — one cleaned sentence of the best retrieved passage about the ROI's finding.
The colour/texture section says what intensity means for the modality and names appearance
terms found in the retrieved passages, cautiously ("may"). Nothing is claimed about the
ROI's actual appearance that the facts do not state.

Wording varies deterministically with a seed (the request id), choosing among equivalent
templates, so a million captions are not one template.
"""

from __future__ import annotations

import hashlib
import random
import re

from medtrinity_assets.records import CaptionFacts, Passage

from .checks import FORBIDDEN_PATTERNS, REFUSAL_PATTERNS, compile_patterns, sentences
from .prompt import roi_label_of
from .vocab import (
    MODALITIES,
    MODALITY_CODES,
    ORGAN_REGIONS,
    ORGAN_SYNONYMS,
    describe_position,
    join_words,
    label_text,
    modality_families,
    modality_mentions,
    organs_named,
    stem,
    unique,
    word_stems,
)

COMPOSER_VERSION = "mt-composer-v1"

MAX_LISTED_STRUCTURES = 8
KNOWLEDGE_SENTENCE_CHARS = (30, 280)

#: modality family -> noun for what its image intensity measures
_INTENSITY_NOUN = {
    "ct": "attenuation",
    "mri": "signal intensity",
    "xray": "opacity",
    "ultrasound": "echogenicity",
    "microscopy": "staining intensity",
    "pet": "tracer uptake",
    "nuclear": "tracer uptake",
    "mammography": "density",
    "angiography": "opacity",
    "endoscopy": "colour",
    "dermoscopy": "pigmentation",
    "fundus": "colour",
    "oct": "reflectivity",
}

#: words describing disease-related appearance, looked for in retrieved passages
APPEARANCE_NOUNS: tuple[str, ...] = (
    "necrosis",
    "calcification",
    "calcifications",
    "haemorrhage",
    "hemorrhage",
    "fibrosis",
    "edema",
    "oedema",
    "inflammation",
    "enhancement",
    "consolidation",
    "opacity",
    "opacities",
    "nodules",
    "infiltrate",
    "infiltrates",
    "effusion",
    "cavitation",
    "cavities",
    "pigmentation",
    "atypia",
    "thickening",
    "dilation",
    "atrophy",
    "scarring",
    "ulceration",
    "erosion",
    "granulomas",
    "swelling",
    "cysts",
    "fluid",
)
APPEARANCE_ADJECTIVES: tuple[str, ...] = (
    "necrotic",
    "calcified",
    "cystic",
    "fibrotic",
    "inflamed",
    "enhancing",
    "ground-glass",
    "nodular",
    "heterogeneous",
    "homogeneous",
    "irregular",
    "lobulated",
    "spiculated",
    "well-defined",
    "ill-defined",
    "hypodense",
    "hyperdense",
    "hypointense",
    "hyperintense",
    "hypoechoic",
    "hyperechoic",
    "pigmented",
    "pleomorphic",
    "hyperchromatic",
    "glandular",
    "sclerotic",
    "lytic",
    "thickened",
    "dilated",
    "fatty",
)

#: disease names made of appearance words, ignored when looking for appearance terms
_DISEASE_NAMES = re.compile(r"\b(?:cystic fibrosis|fatty liver disease|nodular goiter|lytic lesions? of bone)\b")
TERM_PASSAGES = 2  # appearance terms come from the best passages only

#: words that make a label anatomy rather than a finding (besides organ vocabularies)
_ANATOMY_WORDS = {
    "aorta",
    "vena",
    "cava",
    "vein",
    "artery",
    "vertebra",
    "rib",
    "sternum",
    "muscle",
    "autochthon",
    "gluteus",
    "iliopsoa",
    "hip",
    "femur",
    "humerus",
    "scapula",
    "clavicle",
    "sacrum",
    "lobe",
    "atrium",
    "ventricle",
    "myocardium",
    "trachea",
    "esophagus",
    "duodenum",
    "bowel",
    "intestine",
    "colon",
    "nucleus",
    "cell",
    "tissue",
    "skin",
    "bone",
    "left",
    "right",
    "upper",
    "lower",
    "middle",
    "inferior",
    "superior",
    "portal",
    "splenic",
    "body",
    "lung",
    "organ",
    "gland",
    "cortex",
    "matter",
    "white",
    "grey",
    "gray",
    "whole",
    "t",
    "l",
    "c",
    "s",
}

_NEGATIVE_LABEL = re.compile(r"^(?:no[\s_-]*finding|normal|healthy|none|negative)$", re.I)
_VERBS = ("overlaps", "borders", "contains", "touches", "surrounds", "abuts", "encloses")
_LOWERABLE = {"a", "an", "the", "this", "it", "in", "most", "many", "these", "some", "there", "when", "each"}
_SIDE_OR_PERSON = re.compile(
    r"\b(?:left|right|upper|lower|top|bottom|you|your|we|our|us|i|doctor|doctors|treatment|treated|symptoms?)\b", re.I
)

# ----------------------------------------------------------------------------- small helpers


def seed_of(value: str | int | None, facts: CaptionFacts) -> int:
    """Integer seed from a request id (or from the facts when none is given)."""
    if isinstance(value, int):
        return value
    key = value if value else f"{facts.coarse_caption}|{facts.roi_label}|{facts.roi_position}"
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


def is_anatomy(label: str) -> bool:
    """Whether a label names normal anatomy (organ, structure, cell) rather than a finding."""
    words = re.findall(r"[a-z]+", label_text(label).lower())
    return bool(words) and all(
        stem(w) in _ANATOMY_WORDS or stem(w) in ORGAN_REGIONS or stem(w) in ORGAN_SYNONYMS for w in words
    )


def modality_display(modality: str) -> tuple[str, str, str | None]:
    """``(noun for "<noun> image", section text, family key)`` for a modality string."""
    raw = (modality or "").strip()
    families = sorted(modality_families(raw))
    if len(families) != 1:
        return (in_sentence(raw) or "medical"), (capitalise(raw) or "Not stated"), None
    fam = MODALITIES[families[0]]
    is_plain = raw.upper() in MODALITY_CODES or raw.lower() in (fam.short.lower(), fam.long.lower())
    noun = fam.short if is_plain else in_sentence(raw)
    section = f"{fam.long[:1].upper()}{fam.long[1:]}" + (
        f" ({fam.short})" if fam.short.lower() != fam.long.lower() else ""
    )
    if not is_plain:
        section = capitalise(raw)
    return noun, section, fam.key


def in_sentence(name: str) -> str:
    """A name as written mid-sentence: ``Nuclear medicine`` -> ``nuclear medicine``; acronyms kept."""
    return " ".join(w[:1].lower() + w[1:] if w[1:].islower() else w for w in name.split())


def readable(text: str) -> str:
    """Structure names inside free text made readable (``the heart_atrium_left`` -> ``the left heart atrium``)."""
    return re.sub(r"\b[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+\b", lambda m: label_text(m.group(0)), text)


def percent(frac: float) -> str:
    value = 100.0 * float(frac)
    if value < 1.0:
        return "less than 1%"
    return f"about {value:.0f}%"


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def is_plural(name: str) -> bool:
    """Whether a structure name is plural (``lungs``, ``cell nuclei``)."""
    words = name.split()
    last = words[-1].lower() if words else ""
    return stem(last) != last


def conjugate(verb: str, plural: bool) -> str:
    """Third-person verb for a singular or plural subject: ``borders`` -> ``border``."""
    if not plural or not verb.endswith("s"):
        return verb
    if verb in ("is", "has", "was"):
        return {"is": "are", "has": "have", "was": "were"}[verb]
    if verb.endswith(("ches", "shes", "sses", "xes")):
        return verb[:-2]
    if len(verb) > 4 and verb.endswith("ies"):
        return verb[:-3] + "y"
    return verb[:-1]


# ----------------------------------------------------------------------------- knowledge


_RELATION_WORDS = {
    "has_material_basis_in": "arises from",
    "has_infectious_agent": "is caused by",
    "transmitted_by": "is transmitted by",
    "located_in": "is located in",
    "composed_of": "is composed of",
    "results_in": "results in",
    "has_symptom": "has the symptom",
    "derives_from": "derives from",
}


def clean_passage(text: str, title: str = "") -> str:
    """Passage text on one line without its title prefix, list markers, headings or reference marks."""
    text = (text or "").strip()
    if title and text.lower().startswith(title.strip().lower() + ":"):
        text = text[len(title.strip()) + 1 :]
    for relation, words in _RELATION_WORDS.items():
        lead = "(?<!is )(?<!are )" if words.startswith("is ") else ""
        text = re.sub(lead + r"\b" + relation.replace("_", "[ _]") + r"\b", words, text)
    text = re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: m.group(0).replace("_", " "), text)
    text = re.sub(r"\bKey Points\b", " ", text)
    text = re.sub(r"(?m)^\s*[-*\u2022]\s*", " ", text)
    text = re.sub(r"\s-\s", " ", text)
    text = re.sub(r"\[\d+(?:[,\u2013-]\d+)*\]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _topic_stems(topic: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z0-9]+", label_text(topic).lower())}


def _passage_fits(passage: Passage, topic: str, anatomy: bool) -> bool:
    topic_stems = _topic_stems(topic)
    title_stems = word_stems(passage.title)
    if anatomy:  # only a passage about the structure itself, not a disease of it
        return bool(title_stems) and title_stems <= topic_stems | {"the", "human", "anatomy", "of"}
    return topic_stems <= title_stems or topic_stems <= word_stems(clean_passage(passage.text, passage.title)[:300])


def sentence_is_usable(sentence: str, topic: str, facts: CaptionFacts) -> bool:
    """A background sentence may be quoted: on topic, declarative, no sides/modality/other organs."""
    lo, hi = KNOWLEDGE_SENTENCE_CHARS
    if not (lo <= len(sentence) <= hi) or "?" in sentence or not sentence.endswith(".") or not sentence[0].isupper():
        return False
    if not (_topic_stems(topic) & word_stems(sentence)):
        return False
    if _SIDE_OR_PERSON.search(sentence) or modality_mentions(sentence):
        return False
    patterns = compile_patterns(FORBIDDEN_PATTERNS + REFUSAL_PATTERNS)
    if any(p.search(sentence) for p in patterns):
        return False
    known = word_stems(" ".join([*facts.organs, facts.roi_label or "", *facts.other_rois, *facts.image_labels]))
    return all(o in known for o in organs_named(word_stems(sentence)))


def knowledge_topics(facts: CaptionFacts) -> list[str]:
    """What background may be about: the ROI's finding, then the image's findings."""
    topics = [roi_label_of(facts) or ""] + list(facts.image_labels)
    return [t for t in unique(topics) if t and not _NEGATIVE_LABEL.match(t.strip())]


def as_statement(sentence: str, subject: str) -> str:
    """A bare definition (``A liver carcinoma that ...``) given its subject (``X is a liver carcinoma ...``)."""
    first = sentence.split(" ", 1)[0]
    if first in ("A", "An") and subject.lower() not in sentence.lower()[:80]:
        return f"{capitalise(subject)} is {sentence[:1].lower()}{sentence[1:]}"
    return sentence


def knowledge_sentence(facts: CaptionFacts) -> tuple[str, str] | None:
    """``(topic, sentence)``: the first usable sentence of the best passage on a topic, or None."""
    for topic in knowledge_topics(facts):
        anatomy = is_anatomy(topic)
        for passage in facts.knowledge:
            if not _passage_fits(passage, topic, anatomy):
                continue
            subject = passage.title if _topic_stems(topic) <= word_stems(passage.title) else label_text(topic)
            for sentence in sentences(clean_passage(passage.text, passage.title))[:3]:
                sentence = as_statement(sentence, subject.strip())
                if sentence_is_usable(sentence, topic, facts):
                    return topic, sentence
    return None


def _terms_in(text: str, vocabulary: tuple[str, ...]) -> list[str]:
    hits = sorted(
        (m.start(), term) for term in vocabulary if (m := re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text))
    )
    return [t for _, t in hits]


def appearance_terms(facts: CaptionFacts, limit: int = 3) -> tuple[str, list[str], list[str]] | None:
    """``(topic, nouns, adjectives)``: appearance words in passages about a finding, or None."""
    for topic in knowledge_topics(facts):
        if is_anatomy(topic):
            continue
        nouns: list[str] = []
        adjectives: list[str] = []
        fitting = [p for p in facts.knowledge if _passage_fits(p, topic, False)][:TERM_PASSAGES]
        for passage in fitting:
            text = _DISEASE_NAMES.sub(" ", clean_passage(passage.text, passage.title).lower())
            nouns += _terms_in(text, APPEARANCE_NOUNS)
            adjectives += _terms_in(text, APPEARANCE_ADJECTIVES)
        nouns, adjectives = unique(nouns)[:limit], unique(adjectives)[:limit]
        if nouns or adjectives:
            return topic, nouns, adjectives
    return None


# ----------------------------------------------------------------------------- sentences


def _structures(facts: CaptionFacts) -> list[str]:
    roi = roi_label_of(facts)
    names = unique([roi or "", *facts.other_rois])
    return [label_text(n) for n in names]


def modality_organ_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    noun, _, _ = modality_display(facts.modality)
    region = join_words([label_text(o) for o in unique(facts.organs)])
    structures = _structures(facts)
    listed = structures[:MAX_LISTED_STRUCTURES]
    more = len(structures) - len(listed)
    items = join_words(listed + ([f"{more} further structures"] if more > 0 else []))
    article = "an" if re.match(r"[aeiouAEIOU]|MR|X-|US\b", noun) else "a"
    if region and items:
        return rng.choice(
            [
                f"This {noun} image shows the {region}, including the {items}.",
                f"The image is {article} {noun} view of the {region} in which the {items} can be identified.",
                f"This is {article} {noun} image of the {region}; the structures seen include the {items}.",
                f"Shown here is {article} {noun} image of the {region}, depicting the {items}.",
            ]
        )
    if region or items:
        what = region or items
        return rng.choice(
            [
                f"This {noun} image shows the {what}.",
                f"The image is {article} {noun} view of the {what}.",
                f"This is {article} {noun} image depicting the {what}.",
            ]
        )
    return rng.choice([f"This is {article} {noun} image.", f"The image is {article} {noun} acquisition."])


def roi_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    roi = roi_label_of(facts)
    if not roi:
        return rng.choice(
            [
                "No single region is singled out, so the description covers the whole image.",
                "The description applies to the image as a whole rather than to one region.",
                "No particular region is the focus here; the whole field of view is described.",
            ]
        )
    name = label_text(roi)
    plural = is_plural(name)
    lies, is_, occupies, covers, takes = (conjugate(v, plural) for v in ("lies", "is", "occupies", "covers", "takes"))
    where = describe_position(facts.roi_position) if facts.roi_position else ""
    anatomical = str((facts.extra or {}).get("anatomical_position") or "").strip()
    place = f"{where} ({anatomical})" if where and anatomical else where
    area = percent(facts.roi_area_frac) + " of the image area" if facts.roi_area_frac is not None else ""
    if place and area:
        return rng.choice(
            [
                f"The {name} {lies} in {place} and {occupies} {area}.",
                f"The {name} {is_} located in {place} and {covers} {area}.",
                f"The {name} {occupies} {area} and {is_} situated in {place}.",
                f"Situated in {place}, the {name} {takes} up {area}.",
            ]
        )
    if place:
        return f"The {name} {lies} in {place}."
    if area:
        return f"The {name} {occupies} {area}."
    return f"The {name} {is_} the structure of interest in this image."


def findings_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    labels = unique(facts.image_labels)
    if not labels:
        return ""
    if all(_NEGATIVE_LABEL.match(x.strip()) for x in labels):
        return "No abnormal finding is recorded for this image."
    positive = [label_text(x) for x in labels if not _NEGATIVE_LABEL.match(x.strip())]
    names = join_words(positive)
    several = len(positive) > 1
    return rng.choice(
        [
            f"The finding{'s' if several else ''} recorded for this image {'are' if several else 'is'} {names}.",
            f"This image is recorded with the finding{'s' if several else ''} of {names}.",
            f"Finding{'s' if several else ''} recorded for this image: {names}.",
        ]
    )


def background_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    found = knowledge_sentence(facts)
    if not found:
        return ""
    topic, sentence = found
    first = sentence.split(" ", 1)[0]
    if first.lower() in _LOWERABLE and first[1:].islower() or first.lower() in ("a", "i"):
        lead = rng.choice(["By way of background, ", "In general terms, ", "For context, "])
        return lead + sentence[:1].lower() + sentence[1:]
    return sentence


def texture_sentences(facts: CaptionFacts, rng: random.Random) -> str:
    _, _, family = modality_display(facts.modality)
    intensity = _INTENSITY_NOUN.get(family or "", "intensity")
    general = (
        f"On {MODALITIES[family].short}, tissue is told apart by its {MODALITIES[family].intensity_noun}." if family else "Tissue appearance is described by its intensity and texture."
    )
    roi = roi_label_of(facts)
    subject = f"the {label_text(roi)}" if roi else "the depicted structures"
    specific = rng.choice(
        [
            f"{capitalise(subject)} can be told apart from neighbouring tissue by {intensity} and texture.",
            f"{capitalise(subject)} {'are' if is_plural(subject) else 'is'} distinguished from the adjacent tissue "
            f"by differences in {intensity} and texture."
            if roi
            else f"{capitalise(subject)} are distinguished from one another by differences in {intensity} and texture.",
        ]
    )
    parts = [general, specific]
    terms = appearance_terms(facts)
    if terms:
        topic, nouns, adjectives = terms
        affected = (
            f"the {label_text(roi)}"
            if roi and label_text(roi).lower() != label_text(topic).lower()
            else "the affected tissue"
        )
        said = []
        if nouns:
            said.append(f"mention {join_words(nouns)}")
        if adjectives:
            said.append(f"describe it as {join_words(adjectives, 'or')}")
        parts.append(
            rng.choice(["Reference descriptions", "Published descriptions"])
            + f" of {label_text(topic)} {' and '.join(said)}, "
            + rng.choice(
                [
                    f"which may alter the {intensity} of {affected}.",
                    f"features that can change the {intensity} of {affected}.",
                ]
            )
        )
    return " ".join(parts)


def relation_sentence(facts: CaptionFacts, rng: random.Random) -> str:
    roi = roi_label_of(facts)
    others = [label_text(x) for x in unique(facts.other_rois) if x != roi][:MAX_LISTED_STRUCTURES]
    if not roi:
        if others:
            return f"The {join_words(others)} are described together as parts of the whole image."
        return "No separate regions are compared, as the whole image is described."
    name = label_text(roi)
    plural = is_plural(name)
    rels = [readable(r.strip()) for r in facts.roi_relations if r and r.strip()]
    if rels:
        verbs = [r for r in rels if r.split(" ", 1)[0] in _VERBS]
        placed = [r for r in rels if r.split(" ", 1)[0] not in _VERBS]
        clauses = [conjugate(r.split(" ", 1)[0], plural) + " " + r.split(" ", 1)[1] for r in verbs if " " in r]
        clauses += [f"{conjugate('lies', plural)} {join_words(placed)}"] if placed else []
        lead = rng.choice(["", "Relative to its surroundings, ", "In relation to neighbouring structures, "])
        subject = f"the {name}" if lead else f"The {name}"
        return f"{lead}{subject} {join_words(clauses)}."
    if others:
        return rng.choice(
            [
                f"Other structures identified in the image include the {join_words(others)}.",
                f"Besides the {name}, the image also contains the {join_words(others)}.",
            ]
        )
    return f"No neighbouring structure is identified for comparison with the {name}."


# ----------------------------------------------------------------------------- entry point


def compose_caption(facts: CaptionFacts, seed: str | int | None = None) -> tuple[str, dict[str, str]]:
    """``(description, sections)`` written only from the facts; deterministic for (facts, seed)."""
    rng = random.Random(seed_of(seed, facts))
    _, modality_section, _ = modality_display(facts.modality)
    s_overview = modality_organ_sentence(facts, rng)
    s_roi = roi_sentence(facts, rng)
    s_findings = findings_sentence(facts, rng)
    s_background = background_sentence(facts, rng)
    s_texture = texture_sentences(facts, rng)
    s_relations = relation_sentence(facts, rng)
    organs = unique([label_text(o) for o in facts.organs])
    structures = _structures(facts)
    organs_section = (
        "; ".join(x for x in (capitalise(join_words(organs)) if organs else "", ", ".join(structures)) if x)
        or "Not specified"
    )
    sections = {
        "modality": modality_section,
        "organs": organs_section,
        "roi": " ".join(x for x in (s_roi, s_findings, s_background) if x),
        "texture": s_texture,
        "relations": s_relations,
    }
    body = [s_overview, s_roi, s_findings, s_background, s_texture, s_relations]
    description = " ".join(x for x in body if x)
    return description, sections
