"""retrieved_knowledge for one shard: concepts per ROI and the passages the use policy allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

import polars as pl

from medtrinity_assets.knowledge.policy import KnowledgeRequest, select_many
from medtrinity_assets.knowledge.retrieval import retriever_id
from medtrinity_assets.knowledge.vocabulary import ConceptVocabulary
from medtrinity_assets.records import ConceptRef
from medtrinity_assets.schema import RETRIEVED_KNOWLEDGE_SCHEMA, conform

POLICY_ID = "concept-policy-v2"  # v2: a sided structure without passages gets its structure's (left kidney -> kidney)


def concept_row(ref: ConceptRef) -> dict:
    return asdict(ref)


def concept_from_row(row: Mapping | None) -> ConceptRef | None:
    """A `roi_concept` / `finding_concepts` struct back to a ConceptRef (None for a null struct)."""
    if not row:
        return None
    return ConceptRef(
        concept_id=row.get("concept_id") or "",
        kind=row.get("kind") or "",
        name=row.get("name") or "",
        matched=row.get("matched") or "",
        match_type=row.get("match_type") or "none",
    )


def map_concepts(
    vocab: ConceptVocabulary, roi_label: str | None, image_labels: list[str], catalog: Mapping[str, str] | None
) -> tuple[ConceptRef, tuple[ConceptRef, ...]]:
    """(the ROI label's concept, the image's findings as concepts); non-findings keep kind 'normal'."""
    roi = vocab.lookup(roi_label, "roi", catalog)
    findings = tuple(vocab.lookup(label, "finding", catalog) for label in dict.fromkeys(image_labels) if label)
    return roi, findings


def unmapped_labels(df: pl.DataFrame) -> list[str]:
    """Labels (ROI or finding) of a retrieved_knowledge frame that map to no concept (sorted, unique)."""
    out: set[str] = set()
    for row in df.iter_rows(named=True):
        for ref in [row["roi_concept"], *(row["finding_concepts"] or [])]:
            if ref and not ref["concept_id"] and ref["kind"] != "normal" and ref["name"]:
                out.add(ref["name"])
    return sorted(out)


def misfit_passages(df: pl.DataFrame, vocab: ConceptVocabulary | None = None) -> list[dict]:
    """Passages of a retrieved_knowledge frame about a concept that is neither the ROI's nor a recorded
    finding's (nor, with `vocab`, the structure a sided ROI concept is a kind of: left kidney -> kidney)."""
    out = []
    for row in df.iter_rows(named=True):
        allowed = {ref["concept_id"] for ref in [row["roi_concept"], *(row["finding_concepts"] or [])] if ref and ref["concept_id"]}
        allowed |= {b.concept_id for b in (vocab.unsided(c) for c in allowed) if b is not None} if vocab else set()
        for cid, concepts in zip(row["passage_ids"], row["passage_concepts"], strict=True):
            if not concepts or not set(concepts) <= allowed:
                out.append({"roi_id": row["roi_id"], "passage": cid, "about": list(concepts or []), "allowed": sorted(allowed)})
    return out


def retrieve_for_shard(
    coarse: pl.DataFrame,
    store,
    embedder,
    vocab: ConceptVocabulary,
    catalog_concepts: Mapping[str, Mapping[str, str]] | None = None,
    top_k: int = 5,
    anatomy_corpora: tuple[str, ...] = ("anatomy",),
) -> pl.DataFrame:
    """Concepts and policy passages for every ROI record (identical requests answered once).

    `catalog_concepts`: dataset (source) name -> its catalog `concepts:` mapping (label -> concept id).
    """
    if coarse.is_empty():
        return conform([], RETRIEVED_KNOWLEDGE_SCHEMA)
    catalog_concepts = catalog_concepts or {}
    requests = []
    for r in coarse.iter_rows(named=True):
        roi, findings = map_concepts(vocab, r["roi_label"], list(r["image_labels"] or []), catalog_concepts.get(r["dataset"]))
        requests.append(KnowledgeRequest(query=r["knowledge_query"], roi=roi, findings=findings))
    answers = select_many(store, embedder, vocab, requests, top_k=top_k, anatomy_corpora=anatomy_corpora)
    retriever = f"{retriever_id(embedder)},{POLICY_ID},k={top_k}"
    rows = []
    for r, request, ps in zip(coarse.iter_rows(named=True), requests, answers, strict=True):
        rows.append(
            {
                "roi_id": r["roi_id"],
                "dataset": r["dataset"],
                "shard": r["shard"],
                "knowledge_query": r["knowledge_query"],
                "passage_ids": [p.chunk_id for p in ps],
                "passage_corpora": [p.corpus for p in ps],
                "passage_titles": [p.title for p in ps],
                "passage_texts": [p.text for p in ps],
                "passage_scores": [float(p.score) for p in ps],
                "passage_concepts": [list(p.concept_ids) for p in ps],
                "roi_concept": concept_row(request.roi),
                "finding_concepts": [concept_row(f) for f in request.findings],
                "retriever": retriever,
            }
        )
    return conform(rows, RETRIEVED_KNOWLEDGE_SCHEMA)
