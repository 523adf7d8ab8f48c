"""Background knowledge in a caption: whole sentences of passages about the ROI's own concept.

A passage is used only when its `concept_ids` contain the concept of the ROI label
(`facts.roi_concept`) or of a recorded finding (`facts.finding_concepts`); otherwise no
knowledge sentence is written. A sentence is quoted whole, as written in the passage (title
prefix, list markers and reference marks removed), and only when it is a declarative sentence
with a finite verb: definition fragments (``A liver carcinoma that ...``), ontology fields
(``Is a: ...``, ``Also called: ...``), questions, advice, image sides, modality names and organs
not on the image are never quoted, and nothing is glued to a label.
"""

from __future__ import annotations

import re

from medtrinity_assets.records import CaptionFacts, Passage

from .checks import FORBIDDEN_PATTERNS, REFUSAL_PATTERNS, compile_patterns, sentences
from .data_files import wording
from .vocab import modality_mentions, organs_named, word_stems

SENTENCE_CHARS = (30, 280)

_FINITE = re.compile(
    r"\b(?:is|are|was|were|has|have|had|can|may|might|will|causes?|affects?|occurs?|develops?|forms?|"
    r"results?|arises?|contains?|consists?|appears?|involves?|leads?|spreads?|grows?|begins?|starts?)\b",
    re.I,
)
_FRAGMENT = re.compile(r":|^(?:is a|also called|anatomy|synonyms?)\b", re.I)
_SIDE_OR_PERSON = re.compile(
    r"\b(?:left|right|upper|lower|top|bottom|you|your|we|our|us|i|doctor|doctors|treatment|treated|symptoms?)\b", re.I
)


def clean_passage(text: str, title: str = "") -> str:
    """Passage text on one line without its title prefix, list markers, headings or reference marks."""
    text = (text or "").strip()
    if title and text.lower().startswith(title.strip().lower() + ":"):
        text = text[len(title.strip()) + 1 :]
    for relation, words in wording().passage_relation_words.items():
        text = re.sub(r"\b" + relation.replace("_", "[ _]") + r"\b", words, text)
    text = re.sub(r"\bKey Points\b", " ", text)
    text = re.sub(r"(?m)^\s*[-*\u2022]\s*", " ", text)
    text = re.sub(r"\s-\s", " ", text)
    text = re.sub(r"\[\d+(?:[,\u2013-]\d+)*\]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _main_clause(sentence: str) -> str:
    """The part before a relative clause: ``A carcinoma that is ...`` has no verb of its own."""
    return re.split(r"\b(?:that|which|who|whose)\b", sentence, maxsplit=1)[0]


def concept_ids(facts: CaptionFacts) -> list[str]:
    """The concepts background may be about: the ROI's, then the recorded findings' (normal excluded)."""
    refs = [facts.roi_concept, *facts.finding_concepts]
    out: list[str] = []
    for ref in refs:
        if ref is not None and ref.kind != "normal" and ref.concept_id and ref.concept_id not in out:
            out.append(ref.concept_id)
    return out


def sentence_is_usable(sentence: str, facts: CaptionFacts) -> bool:
    """A whole declarative sentence with no sides, persons, modality names or foreign organs."""
    lo, hi = SENTENCE_CHARS
    if not (lo <= len(sentence) <= hi) or "?" in sentence or not sentence.endswith(".") or not sentence[0].isupper():
        return False
    if _FRAGMENT.search(sentence) or not _FINITE.search(_main_clause(sentence)):
        return False
    if _SIDE_OR_PERSON.search(sentence) or modality_mentions(sentence):
        return False
    if any(p.search(sentence) for p in compile_patterns(FORBIDDEN_PATTERNS + REFUSAL_PATTERNS)):
        return False
    known = word_stems(" ".join([*facts.organs, facts.roi_label or "", *facts.other_rois, *facts.image_labels]))
    return all(o in known for o in organs_named(word_stems(sentence)))


def passages_about(facts: CaptionFacts) -> list[Passage]:
    """Retrieved passages whose concept ids include the ROI's or a finding's concept, best first."""
    wanted = concept_ids(facts)
    fitting = [p for p in facts.knowledge if any(c in p.concept_ids for c in wanted)]
    return sorted(fitting, key=lambda p: -p.score)


def knowledge_sentence(facts: CaptionFacts, max_sentences: int = 3) -> str | None:
    """The first usable whole sentence of the best passage about the facts' concepts, or None."""
    for passage in passages_about(facts):
        for sentence in sentences(clean_passage(passage.text, passage.title))[:max_sentences]:
            if sentence_is_usable(sentence, facts):
                return sentence
    return None
