"""Retrieval evaluations.

1. The labelled ROI-query set (`evaluate_policy`, data/knowledge/evaluation/): precision@1/@5 of
   finding queries, the share of normal-anatomy queries given a disease passage, passages about a
   disease other than the recorded one, for the concept policy and for the retrieval before it.
2. Name -> own definition (`evaluate_retrieval`, built from the indexed corpora themselves):
   for a deterministic sample of Disease Ontology terms that have a definition, the query is the
term's name (or its first synonym) and a hit is the term's own definition chunk (chunk 0 of its
document) among the top k passages retrieved from ALL indexed corpora.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
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


# ---------------------------------------------------------------- labelled ROI-query evaluation

FINDING_CATEGORIES = ("finding", "abbreviation", "near_miss")
ANATOMY_CATEGORIES = ("anatomy", "anatomy_with_finding")


def default_queries_path() -> Path:
    from medtrinity_assets.knowledge.vocabulary import knowledge_data_file

    return knowledge_data_file("evaluation/queries.jsonl")


def load_queries(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The labelled queries (data/knowledge/evaluation/queries.jsonl, see its README.md)."""
    p = Path(path) if path is not None else default_queries_path()
    if not p.is_file():
        raise RejectError("evaluation_missing", f"{p} does not exist")
    out = []
    for line_no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            q = json.loads(line)
            missing = {"id", "category", "modality", "organs", "roi_label", "image_labels", "expected"} - set(q)
            if missing:
                raise RejectError("bad_evaluation_query", f"{p} line {line_no}: missing {sorted(missing)}")
            out.append(q)
    return out


def query_request(vocab: Any, q: dict[str, Any]) -> Any:
    from medtrinity_assets.knowledge.policy import KnowledgeRequest
    from medtrinity_assets.knowledge.retrieval import knowledge_query

    roi = vocab.lookup(q["roi_label"], "roi")
    findings = tuple(vocab.lookup(label, "finding") for label in q["image_labels"])
    text = knowledge_query(q["modality"], q["organs"], q["image_labels"], q["roi_label"])
    return KnowledgeRequest(query=text, roi=roi, findings=findings)


def baseline_passages(store: Any, embedder: Any, requests: list[Any], anatomy_corpora: Iterable[str]) -> list[list[Any]]:
    """The retrieval before the policy: hybrid top 5 for the query text over the disease corpora,
    each passage labelled with the concept ids its chunk carries."""
    from medtrinity_assets.records import Passage

    corpora = [c for c in store.corpora() if c not in set(anatomy_corpora)]
    results = retrieve_many(store, embedder, [r.query for r in requests], top_k=5, corpora=corpora)
    stored = store.fetch({p.chunk_id for ps in results for p in ps})
    return [
        [
            Passage(p.chunk_id, p.corpus, p.title, p.text, p.score, stored[p.chunk_id].concept_ids if p.chunk_id in stored else ())
            for p in ps
        ]
        for ps in results
    ]


def score_queries(queries: list[dict[str, Any]], answers: list[list[Any]], vocab: Any) -> dict[str, Any]:
    """precision@1/@5 for finding queries, disease passages on anatomy queries, wrong-disease passages."""

    def is_disease(cid: str) -> bool:
        concept = vocab.by_id.get(cid)
        return concept.kind == "finding" if concept is not None else cid.upper().startswith("DOID:")

    p1, p5, anatomy_disease, anatomy_p1, wrong, failures = [], [], [], [], 0, []
    for q, passages in zip(queries, answers, strict=True):
        expected = set(q["expected"])
        forbidden = set(q.get("forbidden") or [])
        about = [set(p.concept_ids) for p in passages[:5]]
        diseases = {c for ids in about for c in ids if is_disease(c)}
        bad = (diseases - expected) if q["category"] != "finding" or not expected else diseases & forbidden
        bad |= {c for ids in about for c in ids} & forbidden
        wrong += bool(bad)
        ok = True
        if q["category"] in FINDING_CATEGORIES and expected:
            hit1 = bool(about) and bool(about[0] & expected)
            p1.append(hit1)
            p5.append(sum(bool(ids & expected) for ids in about) / len(about) if about else 0.0)
            ok = hit1
        if q["category"] in ANATOMY_CATEGORIES:
            if q["category"] == "anatomy":
                anatomy_disease.append(bool(diseases))
            anatomy_p1.append(bool(about) and bool(about[0] & expected))
        if bad or not ok:
            failures.append({"id": q["id"], "category": q["category"], "query": q, "got": [sorted(ids) for ids in about], "wrong": sorted(bad)})
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else 0.0  # noqa: E731
    return {
        "n_queries": len(queries),
        "n_finding_queries": len(p1),
        "finding_precision_at_1": mean(p1),
        "finding_precision_at_5": mean(p5),
        "n_anatomy_queries": len(anatomy_disease),
        "anatomy_disease_passage_share": mean(anatomy_disease),
        "anatomy_precision_at_1": mean(anatomy_p1),
        "queries_with_wrong_disease": wrong,
        "failures": failures,
    }


def evaluate_policy(
    store: Any,
    embedder: Any,
    vocab: Any,
    queries: list[dict[str, Any]] | None = None,
    anatomy_corpora: Iterable[str] = ("anatomy",),
    baseline: bool = True,
) -> dict[str, Any]:
    """Score the concept policy on the labelled ROI queries (and, with `baseline`, the pre-policy retrieval).

    Queries expecting a concept whose own document is not indexed are left out (`queries_not_indexed`)."""
    from medtrinity_assets.knowledge.policy import select_many

    queries = queries if queries is not None else load_queries()
    anatomy_corpora = tuple(anatomy_corpora)
    # a query is scored when each concept it expects has its own document in the index (a capped
    # corpus holds only some); the others are counted, not hidden
    wanted = sorted({c for q in queries for c in q["expected"]})
    held = store.fetch([f"{corpus}:{cid}:0" for corpus in store.corpora() for cid in wanted])
    indexed = {chunk.doc_id for chunk in held.values()}
    n_all = len(queries)
    queries = [q for q in queries if set(q["expected"]) <= indexed]
    requests = [query_request(vocab, q) for q in queries]
    mapped = [
        bool({r.roi.concept_id, *(f.concept_id for f in r.findings)} & set(q["expected"])) if q["expected"] else True
        for q, r in zip(queries, requests, strict=True)
    ]
    result = score_queries(queries, select_many(store, embedder, vocab, requests, anatomy_corpora=anatomy_corpora), vocab)
    result["mapping_accuracy"] = round(sum(mapped) / len(mapped), 4) if mapped else 0.0
    result["queries_not_indexed"] = n_all - len(queries)
    if baseline:
        base = score_queries(queries, baseline_passages(store, embedder, requests, anatomy_corpora), vocab)
        result["baseline"] = {k: v for k, v in base.items() if k != "failures"}
    return result
