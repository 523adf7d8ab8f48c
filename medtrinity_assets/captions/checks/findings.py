"""Findings a caption states about the image, compared with the recorded ones.

- ``negated_finding``: the caption denies a recorded finding ("no evidence of hepatocellular
  carcinoma", "X is ruled out") or calls an image with a recorded abnormal finding normal;
- ``wrong_finding``: a diagnosis other than the recorded one(s) ("cavernous hemangioma" on an HCC
  record; any diagnosis on an image recorded as normal);
- ``unsupported_finding``: a diagnosis on an image with no recorded finding, or an imaging feature
  (wash-out, capsule, calcification, a lesion...) that neither a recorded finding (through the
  equivalence groups of lexicon.yaml), a structure name, nor a retrieved passage supports.

Only sentences about this image count: generic statements ("Published descriptions of HCC mention
necrosis", "Tuberculosis is a disease caused by...") and negated mentions ("no calcification")
state nothing about it.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache

from ..vocab import label_text, stem, word_stems
from .base import CaptionView, is_normal_label

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _phrase_regex(phrase: str) -> str:
    words = [re.escape(w) for w in re.split(r"[\s_+\-]+", phrase.strip().lower()) if w]
    return r"\b" + r"[\s-]+".join(words) + r"s?\b"


def _stems(text: str) -> set[str]:
    return word_stems(label_text(text).replace("-", " "))


class FindingFacts:
    """What the record says about findings, read once per caption."""

    def __init__(self, view: CaptionView) -> None:
        self.view = view
        self.lex = view.lex
        f = view.facts
        names = [x for x in f.image_labels if x and not is_normal_label(x, self.lex)]
        names += [c.name for c in f.finding_concepts if c.kind == "finding" and c.name]
        if f.roi_concept is not None and f.roi_concept.kind == "finding":
            names.append(f.roi_concept.name)
        self.recorded = [n for n in dict.fromkeys(names) if n.strip()]
        self.labelled = bool([x for x in f.image_labels if x] or f.finding_concepts)

    @cached_property
    def support(self) -> set[str]:
        """Word stems a stated finding may use: recorded findings and their equivalents, structure
        names, and the retrieved passages."""
        f = self.view.facts
        recorded: set[str] = set()
        for name in self.recorded:
            recorded |= _stems(name)
        stems = set(recorded)
        for group in self.lex["finding_equivalents"]:
            group_stems = {stem(w) for w in group}
            if recorded & group_stems:  # equivalents of a recorded word (not of an equivalent)
                stems |= group_stems
        for name in [f.roi_label or "", *f.other_rois, *f.organs]:
            stems |= _stems(name)
        for p in f.knowledge:
            stems |= word_stems(f"{p.title} {p.text}".replace("-", " "))
        return stems

    def supported(self, term: str) -> bool:
        return _stems(term) <= self.support


def _negated_before(sentence: str, start: int, negator: re.Pattern[str]) -> bool:
    return bool(negator.search(sentence[max(0, start - 30) : start]))


def negated_finding(view: CaptionView, facts: FindingFacts) -> bool:
    if not facts.recorded:
        return False
    templates = view.lex["negations"]
    for name in facts.recorded:
        forms = {label_text(name).lower()}
        words = label_text(name).lower().split()
        if len(words) > 1:
            forms.add(words[-1])
        for form in forms:
            rx = re.compile("|".join(t.replace("{X}", _phrase_regex(form)) for t in templates), re.I)
            if any(rx.search(s) for s in view.claim_sentences if not view.is_generic(s)):
                return True
    # equivalents of a recorded finding, denied in a sentence about the ROI naming no other structure
    recorded = set()
    for name in facts.recorded:
        recorded |= _stems(name)
    equivalents = set()
    for group in view.lex["finding_equivalents"]:
        if recorded & {stem(w) for w in group}:
            equivalents |= {w for w in group if w in view.lex["negation_equivalents"]}
    if equivalents:
        rx = re.compile("|".join(t.replace("{X}", "(?:" + "|".join(_phrase_regex(w) for w in sorted(equivalents)) + ")") for t in templates), re.I)
        for s in view.claim_sentences:
            if not view.is_generic(s) and rx.search(s) and not (view.names_other(s) and not view.names_roi(s)):
                return True
    normal = re.compile("|".join(view.lex["normal_claims"]), re.I)
    return any(normal.search(s) for s in view.image_sentences)


@lru_cache(maxsize=32)
def term_scanner(vocabulary: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern over the vocabulary, longest terms first (so a term inside a longer one is not
    matched on its own)."""
    return re.compile("|".join(_phrase_regex(t) for t in sorted(vocabulary, key=len, reverse=True)), re.I)


def stated_terms(sentence: str, vocabulary: tuple[str, ...], negator: re.Pattern[str]) -> list[str]:
    """Terms of `vocabulary` the sentence states, as written (negated mentions left out)."""
    low = sentence.lower()
    return [m.group(0) for m in term_scanner(vocabulary).finditer(low) if not _negated_before(low, m.start(), negator)]


def suffix_diagnoses(sentence: str, view: CaptionView, negator: re.Pattern[str]) -> list[str]:
    suffixes = tuple(view.lex["diagnosis_suffixes"])
    excluded = set(view.lex["not_diagnoses"])
    out = []
    low = sentence.lower()
    for m in _WORD.finditer(low):
        w = m.group(0)
        if len(w) > 5 and w.endswith(suffixes) and w not in excluded and not _negated_before(low, m.start(), negator):
            out.append(w)
    return out


def finding_problems(view: CaptionView) -> list[str]:
    facts = FindingFacts(view)
    problems: set[str] = set()
    if negated_finding(view, facts):
        problems.add("negated_finding")
    negator = re.compile(view.lex["appearance_negators"], re.I)
    diagnoses = tuple(view.lex["diagnoses"])
    features = tuple(view.lex["features"])
    for s in view.image_sentences:
        for term in stated_terms(s, diagnoses, negator) + suffix_diagnoses(s, view, negator):
            if not facts.supported(term):
                problems.add("wrong_finding" if facts.labelled else "unsupported_finding")
        for term in stated_terms(s, features, negator):
            if not facts.supported(term):
                problems.add("unsupported_finding")
    return sorted(problems)
