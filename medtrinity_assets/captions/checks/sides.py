"""Sides and positions a caption states, compared with the ROI's grid cell and patient side.

Image sides (``upper``/``lower``/``left``/``right``) count only in image-position phrases: a run
of position words followed by a region noun (``upper left part``, ``lower half``), hyphenated
pairs (``upper-left``), ``on/to the left`` at a phrase end or ``... of the image``, ``left of
centre``, and the viewer's frame (``viewer's right``, ``as viewed``); not when followed by ``of
<structure>`` (relative: ``on the left side of the spleen``) or when part of a structure name
from the facts (``left atrium``). Patient sides: ``patient's left``, abdominal quadrants, ``left
hemiabdomen``/``hemithorax``..., ``right-sided``, ``the left abdomen``/``left side of the body``.

The facts: the sides of the grid cell of `GridPosition` (from the position grid, ``grid/grid.yaml``:
by default rows/cols 0-1 = upper/left, 3-4 = lower/right; the middle row/column contradicts
nothing), else the legacy ``roi_position`` phrase; the patient side
of `GridPosition.patient_side`, else the display frame's lateral convention applied to the
column, else ``extra["anatomical_position"]``. A contradiction needs the opposite side and not
the right one.
"""

from __future__ import annotations

import re
from functools import lru_cache

from medtrinity_assets.grid import position_grid
from medtrinity_assets.records import CaptionFacts

from ..vocab import label_text, normalise_dashes, parse_position_words

_POS = r"(?:upper|lower|top|bottom|left|right|central|center|centre|middle|mid)"
_REGION_NOUN = (
    r"(?:region|part|portion|area|quadrant|side|corner|half|aspect|section|field|zone|third|periphery|"
    r"margin|edge|border)s?"
)
_IMAGE_NOUN = r"(?:image|scan|slice|frame|picture|view|field|radiograph|film|micrograph|photograph|display|panel|screen)"
_NOUN_PHRASE = re.compile(rf"\b(?P<words>{_POS}(?:[\s-]+(?:{_POS}|hand))*)[\s-]+(?P<noun>{_REGION_NOUN})\b")
_HYPHENATED = re.compile(rf"\b(?P<words>{_POS}(?:-{_POS})+)\b(?![\s-]+{_REGION_NOUN}\b)")
_ON_THE = re.compile(rf"\b(?:on|to|at|toward|towards|in|within) the (?P<words>{_POS}(?:[\s-]+{_POS})*)\b")
_OF_CENTRE = re.compile(r"\b(?P<words>left|right) of (?:the )?(?:cent(?:er|re)|midline)\b")
_VIEWER = re.compile(
    r"\b(?:viewer|reader|observer|viewer's|reader's|observer's|viewers'|our)'?s?'? (?P<words>(?:upper |lower )?(?:left|right))\b"
    r"|\b(?P<words2>left|right),? (?:as|when) (?:viewed|seen|displayed|looking at the image)\b"
)
_PATIENT_SIDE = re.compile(r"\bpatient'?s?'? (?P<side>left|right)\b(?!\s+of\b)")
_QUADRANT = re.compile(
    r"\b(?:(?P<a>left|right)[\s-]+(?:upper|lower)|(?:upper|lower)[\s-]+(?P<b>left|right))[\s-]+quadrant\b"
    rf"(?!\s+of\s+(?:the\s+)?{_IMAGE_NOUN}\b)"
)
_HEMI = re.compile(r"\b(?P<side>left|right)[\s-]*hemi[a-z]+\b")
_SIDED = re.compile(r"\b(?P<side>left|right)[\s-]+sided\b")
_BODY_REGION = (
    r"(?:abdomen|chest|thorax|pelvis|flank|body|torso|trunk|brain|head|neck|hemithorax|groin|iliac fossa|"
    r"upper abdomen|lower abdomen)"
)
_BODY_SIDE = re.compile(
    rf"\b(?:the |his |her |their )(?P<side>left|right) (?:side of the |half of the |part of the )?{_BODY_REGION}\b"
)
_FOLLOWING_OF = re.compile(r"\s+of\s+(?:the\s+|this\s+)?(?P<what>[a-z]+)")
_PHRASE_END_WORDS = {"and", "or", "while", "with", "where", "which", "whereas", "as", "when"}


def _is_relative(text: str, end: int) -> bool:
    """A match followed by ``of <something other than the image>`` is relative to a structure."""
    m = _FOLLOWING_OF.match(text, end)
    return bool(m) and not re.fullmatch(_IMAGE_NOUN + "s?", m.group("what"))


def _after_patient(text: str, start: int) -> bool:
    return bool(re.search(r"patient'?s?'?\s*$", text[max(0, start - 12) : start]))


def _side_words(words: str) -> set[str]:
    out = set()
    for t in re.split(r"[\s-]+", words):
        if t in ("upper", "top"):
            out.add("upper")
        elif t in ("lower", "bottom"):
            out.add("lower")
        elif t in ("left", "right"):
            out.add(t)
    return out


def strip_names(text: str, names: list[str]) -> str:
    """`text` (lower-case) with every structure name removed, so ``left atrium`` names no side."""
    return _strip(normalise_dashes(text).lower(), tuple(names))


@lru_cache(maxsize=256)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    forms = set()
    for name in names:
        for form in (label_text(name), name.replace("_", " "), name):
            form = form.strip().lower()
            if form:
                forms.add(form)
                words = form.split()
                if len(words) > 1 and words[0] in ("left", "right"):
                    forms.add(" ".join(words[1:] + words[:1]))  # "left atrium" / "atrium left"
    if not forms:
        return None
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + r")(?![\w])")


@lru_cache(maxsize=4096)
def _strip(text: str, names: tuple[str, ...]) -> str:
    rx = _names_pattern(names)
    return rx.sub(" ", text) if rx else text


def image_sides(text: str) -> set[str]:
    """Image sides (``upper``/``lower``/``left``/``right``) stated as absolute positions in `text`."""
    text = text.lower()
    found: set[str] = set()
    for m in _NOUN_PHRASE.finditer(text):
        if _is_relative(text, m.end()) or _after_patient(text, m.start()):
            continue
        if m.group("noun").startswith("quadrant") and not re.match(rf"\s+of\s+(?:the\s+)?{_IMAGE_NOUN}\b", text[m.end() :]):
            continue  # anatomical quadrant: patient side
        found |= _side_words(m.group("words"))
    for m in _HYPHENATED.finditer(text):
        if not _is_relative(text, m.end()) and not _after_patient(text, m.start()):
            found |= _side_words(m.group("words"))
    for m in _ON_THE.finditer(text):
        nxt = re.match(r"[\s,]*([a-z]+)?", text[m.end() :])
        word = nxt.group(1) if nxt else None
        if word is None or word in _PHRASE_END_WORDS or (word == "of" and not _is_relative(text, m.end())):
            found |= _side_words(m.group("words"))
    for m in _OF_CENTRE.finditer(text):
        found |= _side_words(m.group("words"))
    for m in _VIEWER.finditer(text):
        found |= _side_words(m.group("words") or m.group("words2"))
    return found


def patient_sides(text: str, regional: bool = True) -> set[str]:
    """Patient sides (``left``/``right``) stated as absolute positions in `text`: ``patient's left``
    and quadrants; with `regional`, also ``left hemi...``, ``right-sided`` and ``the left abdomen``
    (read only in sentences about the ROI: "the left hemisphere is unremarkable" places nothing)."""
    text = text.lower()
    found = {m.group("side") for m in _PATIENT_SIDE.finditer(text)}
    found |= {m.group("a") or m.group("b") for m in _QUADRANT.finditer(text)}
    if regional:
        for rx in (_HEMI, _SIDED, _BODY_SIDE):
            found |= {m.group("side") for m in rx.finditer(text)}
    return found


def _contradicts(fact: str | None, said: set[str], pair: tuple[str, str]) -> bool:
    if fact not in pair:
        return False
    opposite = pair[1] if fact == pair[0] else pair[0]
    return opposite in said and fact not in said


def image_side_facts(facts: CaptionFacts) -> tuple[str | None, str | None]:
    """(vertical, horizontal) image side of the ROI: upper|middle|lower, left|center|right."""
    pos = facts.position
    if pos is not None:
        return position_grid().sides(pos.row, pos.col)
    words = parse_position_words(facts.roi_position)
    return words.vertical, words.horizontal


def patient_side_fact(facts: CaptionFacts) -> str | None:
    """The ROI's patient side (left|right), or None when no side is recorded or may be claimed."""
    pos = facts.position
    if pos is not None and pos.patient_side:
        return pos.patient_side if pos.patient_side in ("left", "right") else None
    frame = facts.frame
    if pos is not None and frame is not None and frame.lateral in ("radiological", "neurological") and frame.plane in ("axial", "coronal"):
        image = position_grid().named_sides(pos.row, pos.col)[1]
        if image is None:
            return None
        flipped = {"left": "right", "right": "left"}[image]
        return flipped if frame.lateral == "radiological" else image
    anatomical = str((facts.extra or {}).get("anatomical_position") or "").lower()
    m = re.search(r"patient'?s? (left|right)", anatomical)
    return m.group(1) if m else None


def side_contradiction(texts: list[str], facts: CaptionFacts, names: list[str], about_roi: list[str] = ()) -> bool:
    """Whether any of the texts, or any sentence about the ROI, read on its own, places the ROI on
    the wrong image or patient side."""
    vertical, horizontal = image_side_facts(facts)
    patient = patient_side_fact(facts)
    for text, regional in [*((t, False) for t in texts), *((t, True) for t in about_roi)]:
        if not text:
            continue
        cleaned = strip_names(text, names)
        said = image_sides(cleaned)
        if _contradicts(vertical, said, ("upper", "lower")) or _contradicts(horizontal, said, ("left", "right")):
            return True
        if patient and _contradicts(patient, patient_sides(cleaned, regional), ("left", "right")):
            return True
    return False


def sides_disagree(a: str, b: str, names: list[str]) -> bool:
    """Two texts name opposite image or patient sides (and neither names both)."""
    sa, sb = image_sides(strip_names(a, names)), image_sides(strip_names(b, names))
    pa, pb = patient_sides(strip_names(a, names), False), patient_sides(strip_names(b, names), False)
    for x, y in ((sa, sb), (pa, pb)):
        for one, other in (("left", "right"), ("upper", "lower")):
            if (one in x and other in y and one not in y and other not in x) or (other in x and one in y and other not in y and one not in x):
                return True
    return False
