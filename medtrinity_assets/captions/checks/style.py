"""How the caption is written: degenerate output, hedging, the writer talking about itself, and
sections that disagree with the description."""

from __future__ import annotations

import re
from collections import Counter

from .base import CaptionView, alternation, compile_patterns, mentions, sentences
from .claims import _PERCENT, allowed_families
from .sides import sides_disagree

_NORM = re.compile(r"[^a-z0-9 ]+")


def _norm(sentence: str) -> str:
    return " ".join(_NORM.sub(" ", sentence.lower()).split())


def repetition(view: CaptionView) -> bool:
    """A sentence said twice, or a word n-gram looping (``the liver the liver the liver ...``)."""
    th = view.th["style"]
    for text in view.texts:
        said = Counter(_norm(s) for s in sentences(text))
        if any(n >= 2 and len(s.split()) >= th["repeated_sentence_min_words"] for s, n in said.items()):
            return True
        words = _norm(text).split()
        k = th["ngram"]
        grams = Counter(tuple(words[i : i + k]) for i in range(len(words) - k + 1))
        if grams and max(grams.values()) >= th["ngram_repeats"]:
            return True
    return False


def truncated(view: CaptionView) -> bool:
    """The description stops mid-sentence (no closing punctuation, or a dangling word)."""
    text = view.text.strip()
    if not text:
        return False
    if not re.search(r"[.!?][\"')\]]*$", text):
        return True
    return bool(re.search(r"\b(?:and|or|the|a|an|of|with|to|in|is|are)\s*\.$", text, re.I))


def hedging(view: CaptionView) -> bool:
    """Most of what the caption says is hedging or deferral, not content."""
    rx = alternation(tuple(view.lex["hedging"]))
    if rx is None:
        return False
    th = view.th["style"]
    sents = sentences(view.text)
    hedged = [s for s in sents if rx.search(s)]
    return len(hedged) >= th["hedging_min_sentences"] and len(hedged) >= th["hedging_min_share"] * max(len(sents), 1)


def ai_self_reference(view: CaptionView) -> bool:
    compiled = compile_patterns(tuple(view.lex["ai_self_reference"]))
    if not compiled:
        return False
    rx = compiled[0]
    # "I" only counts as the pronoun (capital, not "type I" / "grade I")
    return any(
        m for t in view.texts if t for m in rx.finditer(t) if not re.match(r"i\b", m.group(0)) and not re.search(r"(?:type|grade|stage|class|phase|level|zone)\s+$", t[max(0, m.start() - 8) : m.start()], re.I)
    )


def section_contradiction(view: CaptionView) -> bool:
    """A section states something the description contradicts: another modality, the opposite
    side, or another share of the image."""
    desc = view.text
    if not desc.strip():
        return False
    allowed = allowed_families(view.facts.modality or "")
    desc_modalities = mentions(desc)
    for key in ("modality", "texture", "roi", "relations"):
        section = view.sections.get(key, "")
        named = mentions(section) if section.strip() else set()
        if not named:
            continue
        if desc_modalities and not (named & desc_modalities) and not (named <= allowed and desc_modalities <= allowed):
            return True  # the section and the description name different modalities
        if key in ("modality", "texture") and not (named & allowed):
            return True  # the section names only another modality
    roi = view.sections.get("roi", "")
    if roi and sides_disagree(roi, desc, view.structure_names):
        return True
    if roi:
        p_roi = {round(float(m.group("n"))) for m in _PERCENT.finditer(roi)}
        p_desc = {round(float(m.group("n"))) for m in _PERCENT.finditer(desc)}
        if p_roi and p_desc and not any(abs(a - b) <= 2 for a in p_roi for b in p_desc):
            return True
    return False
