"""Does a piece of text look like PHI? Pattern kinds for output fields and for burned-in image text.

Only kinds leave these functions (``date``, ``time``, ``id``, ``phone``, ``email``, ``postal``,
``name``, ``header_name``); matched values are never returned, logged or stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from medtrinity_assets.phi.config import load_settings

_WORD_RE = re.compile(r"[A-Za-z]+")
_NORM_RE = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=1)
def _text_patterns() -> dict[str, list[re.Pattern[str]]]:
    return load_settings().compiled_text()


@lru_cache(maxsize=1)
def _pixel_patterns() -> dict[str, list[re.Pattern[str]]]:
    return load_settings().compiled_pixel()


def normalise(text: str) -> str:
    """Lower case, every run of non-alphanumerics one space (how identity phrases are compared)."""
    return _NORM_RE.sub(" ", text.lower()).strip()


def text_kinds(text: str | None) -> list[str]:
    """PHI pattern kinds found in an output text field (sorted, unique)."""
    if not text:
        return []
    return sorted(kind for kind, regexes in _text_patterns().items() if any(rx.search(text) for rx in regexes))


def scrub_text(text: str | None) -> str:
    """The text with every PHI pattern match replaced by ``<kind>`` (for reject details and logs)."""
    if not text:
        return text or ""
    for kind, regexes in _text_patterns().items():
        for rx in regexes:
            text = rx.sub(f"<{kind}>", text)
    return text


def unknown_words(text: str, min_len: int = 3) -> list[str]:
    """Words of burned-in text that are not known annotation words (possible names or institutions)."""
    safe = load_settings().safe_words
    return [w for w in _WORD_RE.findall(text) if len(w) >= min_len and w.lower() not in safe]


def contains_phrase(text: str, phrases: Iterable[str]) -> bool:
    """Whether a normalised phrase occurs in the text on word boundaries."""
    padded = f" {normalise(text)} "
    return any(p and f" {p} " in padded for p in phrases)


def _squashed_match(text: str, phrases: Iterable[str], min_len: int = 5) -> bool:
    """OCR often drops or adds spaces: compare without them (long phrases only)."""
    squashed = normalise(text).replace(" ", "")
    return any(len(q) >= min_len and q in squashed for q in (p.replace(" ", "") for p in phrases))


def pixel_kinds(text: str, identity_phrases: Iterable[str] = ()) -> list[str]:
    """PHI kinds of one region of burned-in text read by OCR (sorted, unique; empty = not PHI-like)."""
    kinds = {kind for kind, regexes in _pixel_patterns().items() if any(rx.search(text) for rx in regexes)}
    if unknown_words(text):
        kinds.add("name")
    if contains_phrase(text, identity_phrases) or _squashed_match(text, identity_phrases):
        kinds.add("header_name")
    return sorted(kinds)
