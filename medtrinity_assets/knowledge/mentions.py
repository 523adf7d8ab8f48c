"""Which diseases a text names: Disease Ontology concepts found by their names and synonyms.

Used to measure the knowledge use policy on written captions: a caption that names a disease
not recorded for its image (anywhere, background sentences included) counts against the policy.
Matching is on whole word sequences of the vocabulary's finding names (case-folded, punctuation as
spaces), longest first; generic one-word names ("disease", "syndrome", "cancer", "lesion") and
names of four letters or fewer are not counted, since they say nothing about a specific disease;
a name right after "non" ("non-ossifying fibroma") is not that disease.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from medtrinity_assets.knowledge.vocabulary import FINDING, ConceptVocabulary, label_key

GENERIC = frozenset({"disease", "syndrome", "cancer", "lesion", "disorder", "tumor", "tumour", "infection", "injury", "neoplasm"})
MAX_WORDS = 8


@lru_cache(maxsize=4)
def _disease_names(vocabulary: ConceptVocabulary) -> dict[str, str]:
    """Name key -> concept id for every finding concept (a key shared by several concepts keeps the first)."""
    out: dict[str, str] = {}
    for concept in vocabulary.by_id.values():
        if concept.kind != FINDING:
            continue
        for name in concept.names:
            key = label_key(name)
            if len(key) <= 4 or key in GENERIC or len(key.split()) > MAX_WORDS:
                continue
            out.setdefault(key, concept.concept_id)
    return out


def disease_mentions(text: str, vocabulary: ConceptVocabulary) -> set[str]:
    """Disease concept ids named in `text` (longest match wins; overlapping shorter names are not counted)."""
    names = _disease_names(vocabulary)
    words = label_key(text).split()
    found: set[str] = set()
    i = 0
    while i < len(words):
        for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
            cid = names.get(" ".join(words[i : i + n]))
            if cid:
                if not (i and words[i - 1] == "non"):  # "non-ossifying fibroma" is not "ossifying fibroma"
                    found.add(cid)
                i += n
                break
        else:
            i += 1
    return found


def unrecorded_diseases(text: str, recorded_labels: Iterable[str], vocabulary: ConceptVocabulary) -> set[str]:
    """Disease ids the text names that are not among the image's recorded findings (by concept id)."""
    recorded = {vocabulary.lookup(label, role="finding").concept_id for label in recorded_labels}
    recorded |= {ref for label in recorded_labels for ref in disease_mentions(label, vocabulary)}
    return disease_mentions(text, vocabulary) - recorded
