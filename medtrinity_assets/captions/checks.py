"""Checks of a written description against the structured truth it was written from.

`check_caption` returns problem codes (empty list = passes), in this order:

==========================  ===============================================================
``refusal``                 the writer declined ("I'm sorry", "as an AI", "I cannot view...")
``forbidden_phrase``        mentions the marking or the inputs (bounding box, mask, caption,
                            annotation, overlay, "highlighted region", "provided knowledge"...)
``missing_modality``        the description never names the image's modality (or a synonym)
``wrong_modality``          names another modality as the image's (modality section, first
                            sentence, or a "this ... image/scan" sentence)
``missing_organ``           names none of the facts' organs / structures
``wrong_organ``             names an organ from a body region that cannot be on this image
                            (e.g. brain on an abdominal CT; neighbouring regions are allowed)
``missing_roi_label``       does not name the ROI's structure / finding
``side_contradiction``      image sides contradict ``facts.roi_position`` (left vs right, upper
                            vs lower), or patient sides contradict ``facts.extra
                            ["anatomical_position"]``
``missing_section:<key>``   a labelled section is empty (when sections are required)
``too_short`` / ``too_long`` description word count outside the configured bounds
==========================  ===============================================================

Side reading: position words count only in image-position phrases — a run of position words
followed by a region noun (``upper left part``, ``lower half``), hyphenated pairs
(``upper-left``), ``on/to the left`` at a phrase end, ``left of centre`` — and not when followed
by ``of <structure>`` (relative: ``on the left side of the spleen``) or when part of a
structure name from the facts (``left atrium``). ``patient's left/right`` and abdominal
quadrants are patient sides. A contradiction needs the opposite side and not the right one;
centre facts contradict nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medtrinity_assets.records import CaptionFacts

from .sections import SECTION_KEYS
from .vocab import (
    ADJACENT_REGIONS,
    COMPATIBLE_MODALITIES,
    ORGAN_REGIONS,
    label_text,
    modality_families,
    modality_mentions,
    names_organ,
    normalise_dashes,
    organs_named,
    parse_position_words,
    regions_of,
    unique,
    word_stems,
)

FORBIDDEN_PATTERNS: tuple[str, ...] = (
    r"bounding[\s-]*box(?:es)?",
    r"\bbox(?:es|ed)?\b",
    r"\bcaption(?:s|ed)?\b",
    r"\bannotat\w*",
    r"\bmask(?:s|ed|ing)?\b",
    r"\boverlaid\b|\boverlays?\b",
    r"\b(?:outlined|highlighted|marked|boxed|circled|indicated) (?:region|area|structure|zone|portion|part|object)\b",
    r"\b(?:red|green|blue|yellow|white|coloured|colored) (?:line|lines|contour|outline|border|rectangle|marking)\b",
    r"\b(?:provided|given|retrieved|supplied) (?:knowledge|information|context|text|passages?)\b",
    r"\bmedical knowledge\b",
    r"\bregion of interest\b.{0,20}\b(?:is|was) (?:outlined|marked|highlighted)\b",
)

REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'m| am) sorry\b",
    r"\bI apologi[sz]e\b",
    r"\bas an AI\b",
    r"\bas a (?:large )?language model\b",
    r"\bI (?:cannot|can't|can ?not|am unable to|am not able to|'m unable to|'m not able to|"
    r"do not have the ability to)\b",
    r"\b(?:cannot|can't|unable to|not able to) "
    r"(?:view|see|access|analy[sz]e|interpret|process|open|display|provide a description of) "
    r"(?:the |this |that |any |your )?(?:image|picture|file|scan|photo)",
    r"\bcannot provide (?:a |any )?(?:medical )?(?:diagnosis|description|analysis|interpretation)\b",
    r"\bconsult (?:a|your) (?:doctor|physician|healthcare)",
)


@dataclass(frozen=True)
class CaptionCheckConfig:
    """Bounds and switches of `check_caption`."""

    min_words: int = 25
    max_words: int = 400
    require_sections: bool = True
    check_roi_label: bool = True
    check_organ_region: bool = True
    forbidden_patterns: tuple[str, ...] = FORBIDDEN_PATTERNS
    refusal_patterns: tuple[str, ...] = REFUSAL_PATTERNS


@lru_cache(maxsize=64)
def compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """The patterns as one case-insensitive alternation anchored at word starts (cached per tuple)."""
    if not patterns:
        return ()
    return (re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in patterns) + ")", re.IGNORECASE),)


DEFAULT_CONFIG = CaptionCheckConfig()

# ----------------------------------------------------------------------------- small readers

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def sentences(text: str) -> list[str]:
    """Sentences of a paragraph (split after . ! ? before a capital)."""
    return [s.strip() for s in _SENTENCE_SPLIT.split((text or "").strip()) if s.strip()]


def word_count(text: str) -> int:
    return len(re.findall(r"\S+", text or ""))


def find_any(patterns: tuple[re.Pattern[str], ...], texts: list[str]) -> bool:
    return any(p.search(t) for p in patterns for t in texts if t)


# ----------------------------------------------------------------------------- sides

_POS = r"(?:upper|lower|top|bottom|left|right|central|center|centre|middle|mid)"
_REGION_NOUN = (
    r"(?:region|part|portion|area|quadrant|side|corner|half|aspect|section|field|zone|third|periphery|"
    r"margin|edge|border)s?"
)
_IMAGE_NOUN = r"(?:image|scan|slice|frame|picture|view|field|radiograph|film|micrograph|photograph|display|panel)"
_NOUN_PHRASE = re.compile(rf"\b(?P<words>{_POS}(?:[\s-]+(?:{_POS}|hand))*)[\s-]+(?P<noun>{_REGION_NOUN})\b")
_HYPHENATED = re.compile(rf"\b(?P<words>{_POS}(?:-{_POS})+)\b(?![\s-]+{_REGION_NOUN}\b)")
_ON_THE = re.compile(rf"\b(?:on|to|at|toward|towards|in|within) the (?P<words>{_POS}(?:[\s-]+{_POS})*)\b")
_OF_CENTRE = re.compile(r"\b(?P<words>left|right) of (?:the )?(?:cent(?:er|re)|midline)\b")
_PATIENT_SIDE = re.compile(r"\bpatient'?s?'? (?P<side>left|right)\b(?!\s+of\b)")
_QUADRANT = re.compile(
    r"\b(?:(?P<a>left|right)[\s-]+(?:upper|lower)|(?:upper|lower)[\s-]+(?P<b>left|right))[\s-]+quadrant\b"
    rf"(?!\s+of\s+(?:the\s+)?{_IMAGE_NOUN}\b)"
)
_FOLLOWING_OF = re.compile(r"\s+of\s+(?:the\s+|this\s+)?(?P<what>[a-z]+)")
_PHRASE_END_WORDS = {"and", "or", "while", "with", "where", "which", "whereas"}


def _is_relative(text: str, end: int) -> bool:
    """A match followed by ``of <something other than the image>`` is relative to a structure."""
    m = _FOLLOWING_OF.match(text, end)
    return bool(m) and not re.fullmatch(_IMAGE_NOUN + "s?", m.group("what"))


def _after_patient(text: str, start: int) -> bool:
    return bool(re.search(r"patient'?s?'?\s*$", text[max(0, start - 12) : start]))


def _side_words(words: str) -> set[str]:
    tokens = re.split(r"[\s-]+", words)
    out = set()
    for t in tokens:
        if t in ("upper", "top"):
            out.add("upper")
        elif t in ("lower", "bottom"):
            out.add("lower")
        elif t in ("left", "right"):
            out.add(t)
    return out


def strip_names(text: str, names: list[str]) -> str:
    """`text` (lower-case) with every structure name removed, so ``left atrium`` names no side."""
    out = normalise_dashes(text).lower()
    forms = set()
    for name in names:
        for form in (label_text(name), name.replace("_", " "), name):
            form = form.strip().lower()
            if form:
                forms.add(form)
                words = form.split()
                if len(words) > 1 and words[0] in ("left", "right"):
                    forms.add(" ".join(words[1:] + words[:1]))  # "left atrium" / "atrium left"
    for form in sorted(forms, key=len, reverse=True):
        out = re.sub(rf"(?<![\w]){re.escape(form)}(?![\w])", " ", out)
    return out


def image_sides(text: str) -> set[str]:
    """Image sides (``upper``/``lower``/``left``/``right``) stated as absolute positions in `text`."""
    found: set[str] = set()
    for m in _NOUN_PHRASE.finditer(text):
        if _is_relative(text, m.end()) or _after_patient(text, m.start()):
            continue
        if m.group("noun").startswith("quadrant") and not re.match(
            rf"\s+of\s+(?:the\s+)?{_IMAGE_NOUN}\b", text[m.end() :]
        ):
            continue  # anatomical quadrant: patient side
        found |= _side_words(m.group("words"))
    for m in _HYPHENATED.finditer(text):
        if not _is_relative(text, m.end()) and not _after_patient(text, m.start()):
            found |= _side_words(m.group("words"))
    for m in _ON_THE.finditer(text):
        nxt = re.match(r"\s*([a-z]+)?", text[m.end() :])
        word = nxt.group(1) if nxt else None
        if word is None or word in _PHRASE_END_WORDS or (word == "of" and not _is_relative(text, m.end())):
            found |= _side_words(m.group("words"))
    for m in _OF_CENTRE.finditer(text):
        found |= _side_words(m.group("words"))
    return found


def patient_sides(text: str) -> set[str]:
    """Patient sides (``left``/``right``) stated as absolute positions in `text`."""
    found = {m.group("side") for m in _PATIENT_SIDE.finditer(text)}
    found |= {m.group("a") or m.group("b") for m in _QUADRANT.finditer(text)}
    return found


def _contradicts(fact: str | None, said: set[str], pair: tuple[str, str]) -> bool:
    if fact not in pair:
        return False
    opposite = pair[1] if fact == pair[0] else pair[0]
    return opposite in said and fact not in said


def side_contradiction(texts: list[str], facts: CaptionFacts) -> bool:
    """Whether any of the texts, read on its own, places the ROI on the wrong image or patient side."""
    names = [n for n in [facts.roi_label or "", *facts.other_rois, *facts.organs, *facts.image_labels] if n]
    fact = parse_position_words(facts.roi_position)
    anatomical = str((facts.extra or {}).get("anatomical_position") or "").lower()
    patient = re.search(r"patient'?s? (left|right)", anatomical)
    for text in texts:
        if not text:
            continue
        cleaned = strip_names(text, names)
        said = image_sides(cleaned)
        if _contradicts(fact.vertical, said, ("upper", "lower")) or _contradicts(
            fact.horizontal, said, ("left", "right")
        ):
            return True
        if patient and _contradicts(patient.group(1), patient_sides(cleaned), ("left", "right")):
            return True
    return False


# ----------------------------------------------------------------------------- modality / organs

_THIS_IMAGE = re.compile(
    r"\b(?:this|the present|the current)\b[^.]{0,40}?\b(?:image|scan|slice|study|examination|section|view)\b", re.I
)


def modality_claims(description: str, modality_section: str) -> set[str]:
    """Families the text names as the image's own modality."""
    parts = [modality_section]
    sents = sentences(description)
    if sents:
        parts.append(sents[0])
    parts += [s for s in sents[1:] if _THIS_IMAGE.search(s)]
    claims: set[str] = set()
    for p in parts:
        claims |= modality_mentions(p)
    return claims


def modality_problems(description: str, sections: dict[str, str], facts: CaptionFacts) -> list[str]:
    if not (facts.modality or "").strip():
        return []
    families = modality_families(facts.modality)
    problems = []
    if families:
        if not (modality_mentions(description) & families):
            problems.append("missing_modality")
        allowed = set(families)
        for f in families:
            allowed |= COMPATIBLE_MODALITIES.get(f, frozenset())
        if modality_claims(description, sections.get("modality", "")) - allowed:
            problems.append("wrong_modality")
    elif facts.modality.strip().lower() not in description.lower():
        problems.append("missing_modality")
    return problems


def organ_problems(
    description: str, sections: dict[str, str], facts: CaptionFacts, config: CaptionCheckConfig
) -> list[str]:
    problems = []
    roi = (facts.roi_label or "").strip()
    named = unique([*facts.organs, roi, *facts.other_rois])
    stems = word_stems(description)
    if named and not any(names_organ(stems, n) for n in named):
        problems.append("missing_organ")
    if config.check_organ_region:
        regions = regions_of(named)
        if regions and "*" not in regions:
            allowed = set().union(*(ADJACENT_REGIONS.get(r, frozenset({r})) for r in regions))
            said = organs_named(word_stems(" ".join([description, *sections.values()])))
            supported = word_stems(" ".join([*named, *facts.image_labels, facts.coarse_caption]))
            if any(ORGAN_REGIONS[o] not in allowed and o not in supported for o in said):
                problems.append("wrong_organ")
    if config.check_roi_label and roi and not names_organ(stems, roi):
        problems.append("missing_roi_label")
    return problems


# ----------------------------------------------------------------------------- entry point


def check_caption(
    text: str, sections: dict[str, str], facts: CaptionFacts, config: CaptionCheckConfig | None = None
) -> list[str]:
    """Problem codes for a description and its sections (see the module table); ``[]`` = passes."""
    config = config or DEFAULT_CONFIG
    sections = sections or {}
    texts = [text or "", *[sections.get(k, "") for k in SECTION_KEYS]]
    problems: list[str] = []
    if find_any(compile_patterns(config.refusal_patterns), texts):
        problems.append("refusal")
    if find_any(compile_patterns(config.forbidden_patterns), texts):
        problems.append("forbidden_phrase")
    problems += modality_problems(text or "", sections, facts)
    problems += organ_problems(text or "", sections, facts, config)
    if (facts.roi_label or "").strip() and side_contradiction([sections.get("roi", ""), text or ""], facts):
        problems.append("side_contradiction")
    if config.require_sections:
        problems += [f"missing_section:{k}" for k in SECTION_KEYS if not (sections.get(k) or "").strip()]
    n = word_count(text)
    if n < config.min_words:
        problems.append("too_short")
    elif n > config.max_words:
        problems.append("too_long")
    return problems
