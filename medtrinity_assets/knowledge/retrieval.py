"""Hybrid retrieval: dense (chromadb, every corpus collection) + keyword (FTS5 bm25) + exact concept
names (titles and synonyms), fused by reciprocal rank fusion."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from medtrinity_assets.knowledge.concepts import unique_concepts
from medtrinity_assets.records import Passage, RejectError

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
MIN_CANDIDATES = 20  # per side, per query
MAX_QUERY_TERMS = 32
_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "into", "is", "it", "its"}
    | {"of", "on", "or", "that", "the", "their", "this", "to", "was", "were", "what", "which", "with", "without"}
)
NON_FINDINGS = frozenset(
    {"", "normal", "no finding", "no findings", "healthy", "background", "negative", "none", "other", "unknown"}
)


def fts_match_expression(query: str, max_terms: int = MAX_QUERY_TERMS) -> str:
    """Free text -> a safe FTS5 MATCH expression: every word quoted, OR-ed (bm25 ranks the matches).

    FTS5 syntax (quotes, parentheses, '-', '*', ':', AND/OR/NOT/NEAR) cannot leak through; common
    stop words are dropped unless nothing else is left.
    """
    words = list(dict.fromkeys(w.casefold() for w in _WORD.findall(query)))
    content = [w for w in words if w not in STOPWORDS] or words
    return " OR ".join(f'"{w}"' for w in content[:max_terms])


def query_names(query: str) -> list[str]:
    """Candidate concept names in a query: the whole query and each ','/';'/'|'-separated part."""
    parts = [query, *re.split(r"[,;|]", query)]
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def order_like(ids: Sequence[str], *rankings: Sequence[str]) -> list[str]:
    """`ids` ordered by their best position in `rankings` (unranked last, then by id)."""
    best: dict[str, int] = {}
    for ranking in rankings:
        for pos, item in enumerate(ranking):
            best[item] = min(best.get(item, pos), pos)
    return sorted(ids, key=lambda i: (best.get(i, len(best) + 1), i))


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum 1 / (k + rank), rank from 1; ties by first appearance."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(i for r in rankings for i in r))}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def retriever_id(embedder: Any) -> str:
    """Provenance of retrieved passages: fusion settings + embedder model id."""
    return f"hybrid-rrf{RRF_K}(dense+fts5-bm25+name)|{embedder.model_id}"


def resolve_corpora(store: Any, embedder: Any, corpora: Iterable[str] | None) -> list[str]:
    """The corpora to search; each must be indexed, and with this embedder."""
    indexed = store.corpora()
    names = list(dict.fromkeys(corpora)) if corpora is not None else indexed
    for name in names:
        if name not in indexed:
            raise RejectError("unknown_corpus", f"corpus {name!r} is not indexed (indexed: {indexed})")
        built_with = store.embedder_of(name)
        if built_with != embedder.model_id:
            raise RejectError(
                "embedder_mismatch",
                f"corpus {name!r} was indexed with {built_with}, query embedder is {embedder.model_id}",
            )
    return names


def retrieve_many(
    store: Any,
    embedder: Any,
    queries: Sequence[str],
    top_k: int = 5,
    corpora: Iterable[str] | None = None,
    concept_ids: Iterable[str] | None = None,
    name_match: bool = True,
) -> list[list[Passage]]:
    """`retrieve` for many queries: identical queries are answered once, all embedded in one batch."""
    if top_k <= 0:
        return [[] for _ in queries]
    names = resolve_corpora(store, embedder, corpora)
    concepts = unique_concepts(concept_ids) if concept_ids is not None else None
    allowed = store.chunk_ids_for_concepts(concepts, names) if concepts is not None else None
    unique = [q for q in dict.fromkeys(" ".join(q.split()) for q in queries) if q]
    n_candidates = max(top_k * 4, MIN_CANDIDATES)
    vectors = embedder.embed(unique) if unique else np.zeros((0, 1), dtype=np.float32)
    dense = store.dense_query(vectors, n_candidates, corpora=names, allowed_ids=allowed) if unique else []
    fused: dict[str, list[tuple[str, float]]] = {}
    for query, dense_hits in zip(unique, dense, strict=True):
        keyword_hits = store.keyword_query(
            fts_match_expression(query), n_candidates, corpora=names, concept_ids=concepts
        )
        dense_ids, keyword_ids = [h.chunk_id for h in dense_hits], [h.chunk_id for h in keyword_hits]
        rankings = [dense_ids, keyword_ids]
        if name_match:
            named = store.name_query(query_names(query), n_candidates, corpora=names, concept_ids=concepts)
            rankings.append(order_like(named, dense_ids, keyword_ids))
        fused[query] = reciprocal_rank_fusion(rankings)[:top_k]
    stored = store.fetch({cid for ranked in fused.values() for cid, _ in ranked})
    answers = {
        query: [
            Passage(
                chunk_id=cid, corpus=stored[cid].corpus, title=stored[cid].title, text=stored[cid].text, score=score
            )
            for cid, score in ranked
            if cid in stored
        ]
        for query, ranked in fused.items()
    }
    return [list(answers.get(" ".join(q.split()), [])) for q in queries]


def retrieve(
    store: Any,
    embedder: Any,
    query: str,
    top_k: int = 5,
    corpora: Iterable[str] | None = None,
    concept_ids: Iterable[str] | None = None,
    name_match: bool = True,
) -> list[Passage]:
    """Top-k passages for `query`: dense, bm25 and exact-name candidates fused by reciprocal rank.

    The name list holds documents whose title or synonym equals the query or one of its
    comma-separated parts (e.g. a label in a `knowledge_query`), ordered by their dense/keyword rank;
    `name_match=False` leaves it out (dense + bm25 only).

    `corpora` limits the search (default: every indexed corpus); `concept_ids` keeps only chunks
    tagged with one of them (DOID:…, UMLS:C…/bare CUI, MESH:…, NCI:…). Passage.score is the RRF score.
    """
    return retrieve_many(
        store, embedder, [query], top_k=top_k, corpora=corpora, concept_ids=concept_ids, name_match=name_match
    )[0]


def _label_phrase(label: str | None) -> str:
    return " ".join(str(label or "").replace("_", " ").split())


def knowledge_query(
    modality: str | None, organs: Sequence[str] | None, labels: Sequence[str] | None, roi_label: str | None
) -> str:
    """Retrieval query for a record: ROI label and disease/finding labels first, then organs, then modality.

    Non-findings ('normal', 'no finding', 'background', ...) are left out; duplicates are dropped
    case-insensitively, and an organ already named inside a finding is not repeated.
    """
    parts: list[str] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        key = text.casefold()
        if key not in NON_FINDINGS and key not in seen:
            seen.add(key)
            parts.append(text)

    for label in [roi_label, *(labels or [])]:
        add(_label_phrase(label))
    findings_text = " ".join(parts).casefold()
    for organ in organs or []:
        phrase = _label_phrase(organ)
        if phrase and not re.search(rf"\b{re.escape(phrase.casefold())}\b", findings_text):
            add(phrase)
    add(_label_phrase(modality))
    return ", ".join(parts)
