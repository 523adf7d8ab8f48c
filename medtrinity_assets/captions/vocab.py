"""Vocabulary readers shared by the caption writer and the caption checks.

The word lists themselves are data (``captions/data/vocabulary.yaml``, validated and loaded once
by `data_files.vocabulary`); this module holds the small functions that read them:

- **modalities**: families (``ct``, ``mri``, ``xray``, ...) with the words a caption may use for
  them, DICOM codes, and which families may be named for one another (mammography is an X-ray).
- **positions**: the image-position phrases of the ``position`` column (``"upper left-center"``)
  read into a vertical and a horizontal side; typed `GridPosition`s are worded by
  `captions.labels.place_words`.
- **organs**: organ names with adjectives/plurals (for "does the caption name the organ") and
  the body region of each unambiguous organ (for "does it name an organ from another region").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medtrinity_assets.grid import position_grid

from .data_files import vocabulary

_VOCAB = vocabulary()

# ----------------------------------------------------------------------------- text helpers

_IRREGULAR: dict[str, str] = dict(_VOCAB.irregular_singulars)

_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Crude singular form: ``lungs`` -> ``lung``, ``nuclei`` -> ``nucleus``, ``bodies`` -> ``body``."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def word_stems(text: str) -> set[str]:
    """Stems of every alphanumeric word of `text`."""
    return {stem(w) for w in _WORD.findall(text.lower())}


def normalise_dashes(text: str) -> str:
    """Unicode dashes and non-breaking spaces to plain ASCII."""
    return re.sub(r"[\u2010-\u2015\u2212]", "-", text).replace("\u00a0", " ")


_SIDE_WORDS = ("left", "right")


def label_text(label: str) -> str:
    """Human form of a structure label: ``heart_atrium_left`` -> ``left heart atrium``.

    Underscores become spaces and a trailing side word moves to the front; anything else is
    kept (``vertebrae_T9`` -> ``vertebrae T9``).
    """
    words = [w for w in re.split(r"[_\s]+", (label or "").strip()) if w]
    if len(words) > 1 and words[-1].lower() in _SIDE_WORDS:
        words = [words[-1]] + words[:-1]
    return " ".join(words)


def join_words(items: list[str], conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def unique(items) -> list[str]:
    """Non-empty strings, first occurrence kept, order preserved (case-insensitive)."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = (item or "").strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(item.strip())
    return out


# ----------------------------------------------------------------------------- modalities


@dataclass(frozen=True)
class ModalityFamily:
    """One imaging modality: display names, and the words that name it in free text."""

    key: str
    short: str  # "CT"
    long: str  # "computed tomography"
    # terms that name this modality in a caption; matched on word boundaries. Terms written
    # in capitals are matched case-sensitively (so "US" is not the pronoun "us").
    terms: tuple[str, ...]
    contrast_words: tuple[str, str]  # (low, high) appearance words, e.g. hypodense / hyperdense
    intensity_noun: str  # what image brightness measures: attenuation, signal intensity...


MODALITIES: dict[str, ModalityFamily] = {
    key: ModalityFamily(key, e.short, e.long, e.terms, e.contrast_words, e.intensity_noun)
    for key, e in _VOCAB.modalities.items()
}

#: DICOM Modality codes and catalog spellings that are not themselves caption terms.
MODALITY_CODES: dict[str, str] = dict(_VOCAB.modality_codes)

#: Families a caption may name for the image's modality without being wrong (one-way).
COMPATIBLE_MODALITIES: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _VOCAB.compatible_modalities.items()}


def _term_regex(term: str) -> str:
    return re.escape(term).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]?")


def _is_case_sensitive(term: str) -> bool:
    return term.isupper() or term in ("fMRI", "PET/CT", "PET-CT")


def _family_scanner(case_sensitive: bool) -> re.Pattern[str]:
    """One alternation over every family's terms; the matching group's name is the family."""
    groups = []
    for key, fam in MODALITIES.items():
        terms = sorted((t for t in fam.terms if _is_case_sensitive(t) == case_sensitive), key=len, reverse=True)
        if terms:
            groups.append(f"(?P<{key}>" + "|".join(_term_regex(t) for t in terms) + ")")
    return re.compile(r"(?<![\w-])(?:" + "|".join(groups) + r")(?!\w)", 0 if case_sensitive else re.IGNORECASE)


_SCANNERS = (_family_scanner(True), _family_scanner(False))


def modality_mentions(text: str) -> set[str]:
    """Families named anywhere in `text` (terms in capitals match case-sensitively: "US" is not "us")."""
    found: set[str] = set()
    for scanner in _SCANNERS:
        found |= {m.lastgroup for m in scanner.finditer(text or "") if m.lastgroup}
    return found


def modality_families(modality: str) -> set[str]:
    """Families of a catalog/DICOM modality string (``"PET/CT"`` -> ``{"pet", "ct"}``); empty if unknown."""
    value = (modality or "").strip()
    if not value:
        return set()
    code = MODALITY_CODES.get(value.upper())
    if code:
        return {code}
    families = modality_mentions(value)
    if "pet" in families and "ct" not in families and re.search(r"(?<![a-z])ct(?![a-z])", value, re.I):
        families.add("ct")
    return families


def modality_names(modality: str) -> tuple[str, str]:
    """``(short, long)`` display names, e.g. ``("CT", "computed tomography")``; the input itself if unknown."""
    families = sorted(modality_families(modality))
    if len(families) != 1:
        value = (modality or "").strip() or "medical"
        return value, value
    fam = MODALITIES[families[0]]
    return fam.short, fam.long


# ----------------------------------------------------------------------------- positions
#
# A phrase of the position grid (the ``position`` column: a row name and a column name of
# grid/grid.yaml) reads as the sides the grid gives that cell. Any other phrase is read with the
# position phrase vocabulary (tolerant; any mix of spaces, hyphens, underscores and commas
# between words):
#   vertical words   upper | top -> "upper";  lower | bottom -> "lower"
#   horizontal words left -> "left";  right -> "right"
#   centre words     middle | mid | center | centre | central: fill whichever axis has no
#                    side word ("middle left" -> middle/left, "upper center" -> upper/center)
# With the default grid both readings agree: the refinements ("-middle", "-center") only pull
# towards the centre and do not change the side, so "upper-middle left-center" reads as upper/left.

_VERTICAL_WORDS: dict[str, str] = dict(_VOCAB.position_words.vertical)
_HORIZONTAL_WORDS: dict[str, str] = dict(_VOCAB.position_words.horizontal)
_CENTRE_WORDS: frozenset[str] = frozenset(_VOCAB.position_words.centre)


@dataclass(frozen=True)
class PositionWords:
    """Sides named by a position phrase; ``None`` when the phrase says nothing about an axis."""

    vertical: str | None  # "upper" | "middle" | "lower"
    horizontal: str | None  # "left" | "center" | "right"


def parse_position_words(phrase: str | None) -> PositionWords:
    """Read a position phrase (see the vocabulary above) into its vertical and horizontal sides."""
    cell = position_grid().cell_of_phrase(phrase)
    if cell is not None:
        return PositionWords(*position_grid().sides(*cell))
    words = [w for w in re.split(r"[\s\-_,/]+", normalise_dashes(phrase or "").lower()) if w]
    vertical = next((_VERTICAL_WORDS[w] for w in words if w in _VERTICAL_WORDS), None)
    horizontal = next((_HORIZONTAL_WORDS[w] for w in words if w in _HORIZONTAL_WORDS), None)
    if any(w in _CENTRE_WORDS for w in words):
        if vertical is None:
            vertical = "middle"
        if horizontal is None:
            horizontal = "center"
    return PositionWords(vertical, horizontal)


# ----------------------------------------------------------------------------- organs

#: organ -> words that name it (adjectives, plurals beyond the crude stemmer, common synonyms)
ORGAN_SYNONYMS: dict[str, tuple[str, ...]] = dict(_VOCAB.organ_synonyms)

#: unambiguous organ -> body region (organs spanning regions, e.g. aorta or spine, are left out)
ORGAN_REGIONS: dict[str, str] = dict(_VOCAB.organ_regions)

#: body-region words (in facts) -> region
REGION_WORDS: dict[str, str] = dict(_VOCAB.region_words)

#: regions whose organs may legitimately appear together on one image
ADJACENT_REGIONS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _VOCAB.adjacent_regions.items()}

#: words that make a label normal anatomy rather than a finding (besides organ vocabularies)
ANATOMY_WORDS: frozenset[str] = frozenset(_VOCAB.anatomy_words)

_WHOLE_BODY = re.compile(r"\b(whole[\s-]?body|full[\s-]?body|torso|trunk)\b", re.I)


def organ_terms(name: str) -> list[set[str]]:
    """Alternative stem sets that count as naming `name` (each set must be fully present)."""
    words = [stem(w) for w in _WORD.findall(label_text(name).lower())]
    words = [w for w in words if w not in ("the", "of", "and")]
    if not words:
        return []
    options = [set(words)]
    if len(words) == 1:
        options += [{stem(s)} for s in ORGAN_SYNONYMS.get(words[0], ())]
    else:
        # a multi-word structure ("lung upper lobe left") is named when its head organ is
        options += [{w} for w in words if w in ORGAN_SYNONYMS or w in ORGAN_REGIONS]
    return options


def names_organ(text_stems: set[str], name: str) -> bool:
    """Whether a text (given as its word stems) names the organ/structure `name`."""
    return any(option <= text_stems for option in organ_terms(name))


def regions_of(names: list[str]) -> set[str]:
    """Body regions implied by organ/region names; ``{"*"}`` for whole-body, empty if unknown."""
    regions: set[str] = set()
    for name in names:
        if _WHOLE_BODY.search(name or ""):
            return {"*"}
        for w in _WORD.findall(label_text(name).lower()):
            s = stem(w)
            if s in ORGAN_REGIONS:
                regions.add(ORGAN_REGIONS[s])
            elif s in REGION_WORDS:
                regions.add(REGION_WORDS[s])
    return regions


#: adjectives that name a region-bearing organ unambiguously (for `organs_named`)
_ORGAN_ADJECTIVES: dict[str, tuple[str, ...]] = dict(_VOCAB.organ_adjectives)


def organs_named(text_stems: set[str]) -> set[str]:
    """Region-bearing organs (keys of ORGAN_REGIONS) named in a text, by noun or adjective."""
    return {
        organ
        for organ in ORGAN_REGIONS
        if organ in text_stems or any(a in text_stems for a in _ORGAN_ADJECTIVES.get(organ, ()))
    }
