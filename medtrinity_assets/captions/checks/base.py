"""Shared pieces of the caption checks: configuration, the YAML word lists, sentence readers.

`CaptionView` is one caption being checked (description, sections, facts, config) with the
readings every checker needs (sentences, which sentences are generic statements, which name
the ROI). Checkers are plain functions ``(view) -> list[str]`` of problem codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from medtrinity_assets.records import CaptionFacts
from medtrinity_resources.yaml_config import read_yaml_mapping

from ..labels import structure_name
from ..sections import SECTION_KEYS
from .sides import strip_names
from ..vocab import label_text, modality_mentions, normalise_dashes, organ_terms, unique, word_stems

HERE = Path(__file__).resolve().parent
LEXICON_FILE = HERE / "lexicon.yaml"
THRESHOLDS_FILE = HERE / "thresholds.yaml"


@lru_cache(maxsize=8)
def load_lexicon(path: str = str(LEXICON_FILE)) -> dict[str, Any]:
    return read_yaml_mapping(path, "caption check lexicon")


@lru_cache(maxsize=8)
def load_thresholds(path: str = str(THRESHOLDS_FILE)) -> dict[str, Any]:
    return read_yaml_mapping(path, "caption check thresholds")


def _patterns(key: str) -> tuple[str, ...]:
    return tuple(load_lexicon()[key])


@dataclass(frozen=True)
class CaptionCheckConfig:
    """Bounds and switches of `check_caption` (word lists and tolerance bands are YAML files)."""

    min_words: int = 25
    # a whole-image record (no ROI) has only modality, region, display frame and findings to state
    min_words_whole_image: int = 12
    max_words: int = 400
    require_sections: bool = True
    check_roi_label: bool = True
    check_organ_region: bool = True
    forbidden_patterns: tuple[str, ...] = field(default_factory=lambda: _patterns("forbidden"))
    refusal_patterns: tuple[str, ...] = field(default_factory=lambda: _patterns("refusal"))
    lexicon_file: str = str(LEXICON_FILE)
    thresholds_file: str = str(THRESHOLDS_FILE)

    @property
    def lexicon(self) -> dict[str, Any]:
        return load_lexicon(self.lexicon_file)

    @property
    def thresholds(self) -> dict[str, Any]:
        return load_thresholds(self.thresholds_file)


@lru_cache(maxsize=256)
def compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """The patterns as one case-insensitive alternation anchored at word starts (cached per tuple)."""
    if not patterns:
        return ()
    return (re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in patterns) + ")", re.IGNORECASE),)


@lru_cache(maxsize=256)
def alternation(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of `patterns` (None when empty)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


@lru_cache(maxsize=4096)
def _organ_terms(name: str) -> tuple[frozenset[str], ...]:
    """`vocab.organ_terms`, plus the label as captions write it ("heart_atrium_right" -> "right atrium")."""
    options = {frozenset(option) for option in organ_terms(name)}
    written = word_stems(structure_name(name).text) - {"the", "of", "and"}
    return tuple(sorted(options | ({frozenset(written)} if written else set()), key=sorted))


def names_organ(text_stems: set[str], name: str) -> bool:
    """`vocab.names_organ` with the name's stem sets cached."""
    return any(option <= text_stems for option in _organ_terms(name))


@lru_cache(maxsize=8192)
def mentions(text: str) -> frozenset[str]:
    """`vocab.modality_mentions`, cached per text."""
    return frozenset(modality_mentions(text))


@lru_cache(maxsize=8192)
def stems_of(text: str) -> frozenset[str]:
    return frozenset(word_stems(text))


def find_any(patterns: tuple[re.Pattern[str], ...], texts: list[str]) -> bool:
    return any(p.search(t) for p in patterns for t in texts if t)


# ----------------------------------------------------------------------------- small readers

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9(\"'])")


def sentences(text: str) -> list[str]:
    """Sentences of a paragraph (split after . ! ? ; before a capital)."""
    return [s.strip() for s in _SENTENCE_SPLIT.split((text or "").strip()) if s.strip()]


def word_count(text: str) -> int:
    return len(re.findall(r"\S+", text or ""))


def name_forms(name: str) -> list[str]:
    """Lower-case spellings of a structure name (``inferior_vena_cava`` -> ``inferior vena cava``)."""
    forms = {label_text(name).strip().lower(), name.replace("_", " ").strip().lower()}
    return [f for f in forms if f]


def is_normal_label(label: str, lexicon: dict) -> bool:
    return label_text(label).strip().lower() in {n.lower() for n in lexicon["normal_labels"]}


#: where a claim clause ends (the appearance and HU checks read claims clause by clause)
CLAIM_CLAUSE = re.compile(r"[,;:()]|\b(?:while|whereas|but|although)\b", re.I)
_CLAUSE = re.compile(r"[,;:()]|\b(?:while|whereas|but|although|which|where)\b", re.I)


class CaptionView:
    """One caption under check, with cached readings shared by the checkers."""

    def __init__(self, text: str, sections: dict[str, str], facts: CaptionFacts, config: CaptionCheckConfig) -> None:
        self.text = normalise_dashes(text or "")
        self.sections = {k: normalise_dashes(v or "") for k, v in (sections or {}).items()}
        self.facts = facts
        self.config = config
        self.lex = config.lexicon
        self.th = config.thresholds

    # texts -------------------------------------------------------------------------------
    @cached_property
    def texts(self) -> list[str]:
        """The description and the labelled sections (the roi section second)."""
        return [self.text, *[self.sections.get(k, "") for k in SECTION_KEYS]]

    @cached_property
    def claim_sentences(self) -> list[str]:
        """Sentences of the description and of the free-text sections (no duplicates)."""
        parts = [self.text, *[self.sections.get(k, "") for k in ("roi", "texture", "relations")]]
        return unique([s for p in parts for s in sentences(p)])

    @cached_property
    def _generic(self) -> re.Pattern[str] | None:
        return alternation(tuple(self.lex["generic_cues"]))

    def is_generic(self, sentence: str) -> bool:
        """A knowledge or physics statement (``Tumours are often...``), not a claim about this image."""
        return bool(self._generic and self._generic.search(sentence))

    @cached_property
    def image_sentences(self) -> list[str]:
        """Claim sentences that speak about this image (not generic statements)."""
        return [s for s in self.claim_sentences if not self.is_generic(s)]

    # names -------------------------------------------------------------------------------
    @cached_property
    def roi(self) -> str:
        return (self.facts.roi_label or "").strip()

    @cached_property
    def structure_names(self) -> list[str]:
        f = self.facts
        return unique([n for n in [f.roi_label or "", *f.other_rois, *f.organs, *f.image_labels] if n])

    @cached_property
    def other_structures(self) -> list[str]:
        roi_stems = word_stems(label_text(self.roi))
        return [n for n in unique(self.facts.other_rois) if word_stems(label_text(n)) != roi_stems]

    def names_roi(self, sentence: str) -> bool:
        return bool(self.roi) and names_organ(stems_of(sentence), self.roi)

    def about_roi(self, sentence: str) -> bool:
        """The sentence speaks about the ROI (names it, or starts with ``It``/``The region``...)."""
        anaphora = re.match(self.lex["subject_anaphora"], sentence.strip(), re.IGNORECASE)
        return self.names_roi(sentence) or bool(anaphora)

    def names_other(self, sentence: str) -> bool:
        """The sentence names a structure other than the ROI as something compared with."""
        stems = stems_of(sentence)
        return any(names_organ(stems, n) for n in self.other_structures)

    @cached_property
    def roi_clauses(self) -> list[str]:
        """Clauses that speak about the ROI: a clause naming it, or, in a sentence about it, a
        clause naming no other structure ("..., which lies near the spleen" is left out)."""
        out = []
        for s in self.image_sentences:
            about = self.about_roi(s)
            for clause in _CLAUSE.split(s):
                if not clause.strip():
                    continue
                rest = strip_names(clause, self.other_structures)  # "the right kidney" does not name the left one
                if self.names_roi(rest) or (about and not self.names_other(clause)):
                    out.append(clause)
        return out

    @cached_property
    def measurements(self):
        return self.facts.measurements
