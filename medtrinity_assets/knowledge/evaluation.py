"""Retrieval evaluation built from the indexed corpora themselves.

For a deterministic sample of Disease Ontology terms that have a definition, the query is the
term's name (or its first synonym) and a hit is the term's own definition chunk (chunk 0 of its
document) among the top k passages retrieved from ALL indexed corpora.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from medtrinity_assets.knowledge.retrieval import retrieve_many
from medtrinity_assets.records import RejectError

SYNONYM_DELIMITER = "; "


def definition_queries(
    store: Any,
    n: int,
    seed: int = 0,
    corpus: str = "disease_ontology",
    query_field: Literal["name", "synonym"] = "name",
) -> list[tuple[str, str]]:
    """(query, expected chunk id) for a seeded sample of defined terms (sorted by chunk id before sampling)."""
    candidates = []
    for chunk in store.iter_chunks(corpus, first_only=True):
        if not chunk.metadata.get("has_definition"):
            continue
        if query_field == "name":
            candidates.append((chunk.title, chunk.chunk_id))
        else:
            synonyms = [s for s in str(chunk.metadata.get("synonyms", "")).split(SYNONYM_DELIMITER) if s.strip()]
            if synonyms:
                candidates.append((synonyms[0], chunk.chunk_id))
    if not candidates:
        raise RejectError("empty_evaluation", f"corpus {corpus!r} holds no defined terms (is it indexed?)")
    rng = random.Random(seed)
    return rng.sample(candidates, min(n, len(candidates)))


def evaluate_retrieval(
    store: Any,
    embedder: Any,
    n: int = 200,
    seed: int = 0,
    top_k: int = 5,
    corpus: str = "disease_ontology",
    query_field: Literal["name", "synonym"] = "name",
    name_match: bool = True,
) -> dict[str, Any]:
    """recall@k of each sampled term's own definition chunk; `misses` lists query, expected and got.

    `name_match=False` measures dense + bm25 alone (without the exact-name signal of `retrieve`).
    """
    pairs = definition_queries(store, n, seed=seed, corpus=corpus, query_field=query_field)
    results = retrieve_many(store, embedder, [q for q, _ in pairs], top_k=top_k, name_match=name_match)
    misses = []
    for (query, expected), passages in zip(pairs, results, strict=True):
        got = [p.chunk_id for p in passages]
        if expected not in got:
            misses.append({"query": query, "expected": expected, "got": got})
    return {
        "recall_at_k": round(1.0 - len(misses) / len(pairs), 4),
        "k": top_k,
        "n": len(pairs),
        "query_field": query_field,
        "name_match": name_match,
        "corpora": store.corpora(),
        "n_chunks": store.count(),
        "misses": misses,
    }
