"""The use policy of retrieved knowledge: which passages an ROI may get, trimmed to what fits.

- Disease knowledge only for findings recorded for the image (the image's labels, or an ROI label
  that maps to a disease); passages are selected by concept id, never by embedding similarity
  alone, so "non-ossifying fibroma" never gets the "ossifying fibroma" definition.
- Normal anatomy gets passages of the anatomy corpus about its own structure; a sided structure
  with none of its own gets those of the structure it is a kind of ("left kidney" -> kidney,
  `ConceptVocabulary.unsided`, tagged with the kidney's id); else none.
- Unmapped labels and explicit non-findings ("no finding") get no passage.
- A passage is trimmed to whole sentences about its concept (the concept's own ontology
  definition: its definition sentences without the "Is a: / Anatomy: / Symptoms:" fragments;
  other documents: only sentences that name the concept or a synonym; no questions); each carries
  ``concept_ids = (the concept's id,)``.
- Candidates are the concept's own definition, chunks tagged with the concept id or its xrefs, and
  documents whose title is the concept's name or a synonym (e.g. a MedQuAD question's focus).
- Ranking is deterministic: the concept's own definition first, then by hybrid retrieval score
  (dense + bm25 + name, restricted to the tagged chunks), then by chunk id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from medtrinity_assets.knowledge.retrieval import retrieve_many
from medtrinity_assets.knowledge.vocabulary import ANATOMY, FINDING, Concept, ConceptVocabulary
from medtrinity_assets.records import ConceptRef, Passage

PER_CONCEPT = 2  # passages per concept
MAX_SENTENCES = 3  # per passage
CANDIDATES = 20
_STRUCTURED = re.compile(r"\s*\b(?:Also called|Is a|Anatomy|Symptoms|Inheritance|Onset):\s[^.]*\.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


@dataclass(frozen=True)
class KnowledgeRequest:
    """What one ROI asks of the knowledge base (hashable: identical requests are answered once)."""

    query: str  # ranking text: label, findings, organs, modality (`knowledge_query`)
    roi: ConceptRef
    findings: tuple[ConceptRef, ...] = ()


def wanted_concepts(roi: ConceptRef, findings: Iterable[ConceptRef]) -> list[ConceptRef]:
    """Mapped concepts in passage order: the ROI's own concept, then the image's findings (no repeats)."""
    out: list[ConceptRef] = []
    for ref in [roi, *findings]:
        if ref.concept_id and ref.kind in (ANATOMY, FINDING) and ref.concept_id not in {r.concept_id for r in out}:
            out.append(ref)
    return out


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def mentions(sentence: str, names: Iterable[str]) -> bool:
    low = sentence.casefold()
    return any(re.search(rf"(?<!\w){re.escape(n.casefold())}(?!\w)", low) for n in names if len(n) > 2)


def about_sentences(chunk: Any, concept: Concept) -> str:
    """Whole sentences of `chunk` (a KnowledgeChunk) about `concept`, at most MAX_SENTENCES; '' if none."""
    text = chunk.text
    if chunk.title and text.startswith(f"{chunk.title}: "):
        text = text[len(chunk.title) + 2 :]
    sentences = split_sentences(_STRUCTURED.sub("", text))
    if chunk.chunk_no > 0 and sentences and not sentences[0][:1].isupper():
        sentences = sentences[1:]  # a word window starting mid-sentence
    sentences = [s for s in sentences if s[-1:] in ".!" and len(s.split()) >= 4]  # whole statements only
    own = chunk.doc_id == concept.concept_id
    if not own:
        sentences = [s for s in sentences if mentions(s, concept.names)]
    return " ".join(sentences[:MAX_SENTENCES])


def corpora_for(kind: str, store: Any, anatomy_corpora: Sequence[str]) -> list[str]:
    indexed = store.corpora()
    if kind == ANATOMY:
        return [c for c in indexed if c in anatomy_corpora]
    return [c for c in indexed if c not in anatomy_corpora]


def concept_passages(
    store: Any,
    embedder: Any,
    concept: Concept,
    query: str,
    corpora: Sequence[str],
    per_concept: int = PER_CONCEPT,
) -> list[Passage]:
    """Up to `per_concept` trimmed passages about `concept` from `corpora` (see the module docstring)."""
    if not corpora or per_concept <= 0:
        return []
    filter_ids = (concept.concept_id,) if concept.kind == ANATOMY else concept.filter_ids
    ranked = retrieve_many(store, embedder, [query or concept.name], top_k=CANDIDATES, corpora=corpora, concept_ids=filter_ids)[0]
    own_ids = [f"{c}:{concept.concept_id}:0" for c in corpora]
    named = store.name_query(concept.names, CANDIDATES, corpora=corpora)  # documents titled with the concept's name
    stored = store.fetch([*own_ids, *(p.chunk_id for p in ranked), *named])
    order = {cid: i for i, cid in enumerate(own_ids)}
    scores = {p.chunk_id: p.score for p in ranked}
    ids = sorted(stored, key=lambda cid: (0 if cid in order else 1, order.get(cid, 0), -scores.get(cid, 0.0), cid))
    out: list[Passage] = []
    seen_texts: set[str] = set()
    for cid in ids:
        chunk = stored[cid]
        text = about_sentences(chunk, concept)
        if not text or text in seen_texts:
            continue
        seen_texts.add(text)
        out.append(
            Passage(
                chunk_id=cid,
                corpus=chunk.corpus,
                title=chunk.title,
                text=text,
                score=float(scores.get(cid, 1.0 if cid in order else 0.0)),
                concept_ids=(concept.concept_id,),
            )
        )
        if len(out) >= per_concept:
            break
    return out


def select_passages(
    store: Any,
    embedder: Any,
    vocab: ConceptVocabulary,
    request: KnowledgeRequest,
    top_k: int = 5,
    anatomy_corpora: Sequence[str] = ("anatomy",),
) -> list[Passage]:
    """The passages an ROI may get under the policy, at most `top_k`, in a deterministic order."""
    out: list[Passage] = []
    for ref in wanted_concepts(request.roi, request.findings):
        concept = vocab.by_id.get(ref.concept_id) or Concept(ref.concept_id, ref.kind, ref.name)
        corpora = corpora_for(ref.kind, store, anatomy_corpora)
        passages = concept_passages(store, embedder, concept, request.query, corpora)
        broader = vocab.unsided(ref.concept_id) if not passages else None
        if broader is not None:
            passages = concept_passages(store, embedder, broader, request.query, corpora)
        out.extend(p for p in passages if p.chunk_id not in {q.chunk_id for q in out})
        if len(out) >= top_k:
            break
    return out[:top_k]


def select_many(
    store: Any,
    embedder: Any,
    vocab: ConceptVocabulary,
    requests: Sequence[KnowledgeRequest],
    top_k: int = 5,
    anatomy_corpora: Sequence[str] = ("anatomy",),
) -> list[list[Passage]]:
    """`select_passages` for many ROIs; identical requests are answered once."""
    answers = {r: select_passages(store, embedder, vocab, r, top_k, anatomy_corpora) for r in dict.fromkeys(requests)}
    return [answers[r] for r in requests]
