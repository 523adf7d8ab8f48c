"""coarse_captions, retrieved_knowledge and caption_batches for one shard."""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.captions import coarse_caption
from medtrinity_assets.generation import CallCache, CaptionRequest, GenerationSettings, describe
from medtrinity_assets.knowledge import knowledge_query, retrieve_many, retriever_id
from medtrinity_assets.records import CaptionFacts, Passage
from medtrinity_assets.schema import (
    CAPTIONS_SCHEMA,
    COARSE_CAPTIONS_SCHEMA,
    RETRIEVED_KNOWLEDGE_SCHEMA,
    SECTION_COLUMNS,
    conform,
)
from medtrinity_assets.stages.common import dumps
from medtrinity_assets.stages.facts import frame_from_row, measurements_from_row, position_from_row, relations_from_row


def build_coarse_captions(images: pl.DataFrame, rois: pl.DataFrame) -> pl.DataFrame:
    """One coarse caption per ROI record, from metadata only (modality, organs, labels)."""
    if rois.is_empty():
        return conform([], COARSE_CAPTIONS_SCHEMA)
    by_image = {r["image_id"]: r for r in images.iter_rows(named=True)}
    labels_by_image: dict[str, list[str]] = {}
    for r in rois.iter_rows(named=True):
        if r["label"]:
            labels_by_image.setdefault(r["image_id"], [])
            if r["label"] not in labels_by_image[r["image_id"]]:
                labels_by_image[r["image_id"]].append(r["label"])
    rows = []
    for r in rois.iter_rows(named=True):
        img = by_image[r["image_id"]]
        roi_labels = labels_by_image.get(r["image_id"], [])
        rows.append(
            {
                "roi_id": r["roi_id"],
                "image_id": r["image_id"],
                "dataset": r["dataset"],
                "shard": r["shard"],
                "modality": img["modality"],
                "organs": list(img["organs"]),
                "roi_label": r["label"],
                "coarse_caption": coarse_caption(img["modality"], list(img["organs"]), list(img["labels"]), roi_labels),
                "knowledge_query": knowledge_query(img["modality"], list(img["organs"]), list(img["labels"]), r["label"]),
            }
        )
    return conform(rows, COARSE_CAPTIONS_SCHEMA)


def retrieve_for_shard(coarse: pl.DataFrame, store, embedder, top_k: int = 5, max_chars: int = 700) -> pl.DataFrame:
    """Retrieve passages for every ROI's query (identical queries are embedded once)."""
    if coarse.is_empty():
        return conform([], RETRIEVED_KNOWLEDGE_SCHEMA)
    queries = coarse["knowledge_query"].to_list()
    unique = sorted(set(queries))
    results = dict(zip(unique, retrieve_many(store, embedder, unique, top_k=top_k)))
    retriever = f"{retriever_id(embedder)},k={top_k}"
    rows = []
    for r in coarse.iter_rows(named=True):
        ps: list[Passage] = results[r["knowledge_query"]]
        rows.append(
            {
                "roi_id": r["roi_id"],
                "dataset": r["dataset"],
                "shard": r["shard"],
                "knowledge_query": r["knowledge_query"],
                "passage_ids": [p.chunk_id for p in ps],
                "passage_corpora": [p.corpus for p in ps],
                "passage_titles": [p.title for p in ps],
                "passage_texts": [p.text[:max_chars] for p in ps],
                "passage_scores": [float(p.score) for p in ps],
                "retriever": retriever,
            }
        )
    return conform(rows, RETRIEVED_KNOWLEDGE_SCHEMA)


def facts_for(image: dict, roi: dict, coarse: dict, retrieved: dict | None, siblings: list[str]) -> CaptionFacts:
    passages = []
    if retrieved:
        for cid, corpus, title, text, score in zip(
            retrieved["passage_ids"],
            retrieved["passage_corpora"],
            retrieved["passage_titles"],
            retrieved["passage_texts"],
            retrieved["passage_scores"],
        ):
            passages.append(Passage(chunk_id=cid, corpus=corpus, title=title, text=text, score=score))
    frame = frame_from_row(image)
    return CaptionFacts(
        modality=image["modality"],
        organs=list(image["organs"]),
        coarse_caption=coarse["coarse_caption"],
        roi_label=roi["label"],
        roi_position=roi["position"],
        roi_area_frac=roi["area_frac"],
        image_labels=list(image["labels"]),
        other_rois=[s for s in siblings if s != roi["label"]],
        knowledge=passages,
        orientation=image["orientation"],
        extra={"roi_id": roi["roi_id"]},
        frame=frame,
        position=position_from_row(roi),
        relations=relations_from_row(roi),
        measurements=measurements_from_row(roi),
        spacing_mm=frame.spacing_rc,
    )


@dataclass
class CaptionsResult:
    captions: pl.DataFrame
    seconds: float
    n_flagged: int


def caption_shard(
    images: pl.DataFrame,
    rois: pl.DataFrame,
    coarse: pl.DataFrame,
    retrieved: pl.DataFrame,
    storage,
    mllm,
    settings: GenerationSettings | None = None,
    use_cache: bool = True,
) -> CaptionsResult:
    """One multigranular description per ROI record through `generation.describe` (model calls
    cached in `storage`, flagged answers kept)."""
    t0 = time.perf_counter()
    if rois.is_empty():
        return CaptionsResult(conform([], CAPTIONS_SCHEMA), 0.0, 0)
    by_image = {r["image_id"]: r for r in images.iter_rows(named=True)}
    by_coarse = {r["roi_id"]: r for r in coarse.iter_rows(named=True)}
    by_retrieved = {r["roi_id"]: r for r in retrieved.iter_rows(named=True)}
    siblings: dict[str, list[str]] = {}
    for r in rois.iter_rows(named=True):
        if r["label"] and r["label"] not in siblings.setdefault(r["image_id"], []):
            siblings[r["image_id"]].append(r["label"])
    needs_image = mllm.calls_model
    requests, roi_rows = [], []
    for r in rois.iter_rows(named=True):
        facts = facts_for(by_image[r["image_id"]], r, by_coarse[r["roi_id"]], by_retrieved.get(r["roi_id"]), siblings.get(r["image_id"], []))
        png = storage.read_uri(r["overlay_uri"]) if needs_image else None
        requests.append(CaptionRequest(request_id=r["roi_id"], facts=facts, image_png=png))
        roi_rows.append(r)
    generations = describe(mllm, requests, CallCache(storage, enabled=use_cache), settings)
    rows = []
    for r, req, g in zip(roi_rows, requests, generations):
        rows.append(
            {
                "roi_id": r["roi_id"],
                "image_id": r["image_id"],
                "dataset": r["dataset"],
                "shard": r["shard"],
                "caption": g.text,
                **{col: g.sections.get(col.removeprefix("section_"), "") for col in SECTION_COLUMNS},
                "backend": g.backend,
                "model": g.model,
                "model_version": g.model_version,
                "prompt_version": g.prompt_version,
                "prompt_hash": g.prompt_hash,
                "generation_settings": dumps(g.settings),
                "attempts": g.attempts,
                "problems": list(g.problems),
                "tokens_in": g.tokens_in,
                "tokens_out": g.tokens_out,
                "seconds": g.seconds,
                "model_calls": g.model_calls,
                "cache_hit": g.cache_hit,
                "passage_ids": [p.chunk_id for p in req.facts.knowledge],
            }
        )
    df = conform(rows, CAPTIONS_SCHEMA)
    n_flagged = int(df.filter(pl.col("problems").list.len() > 0).height)
    return CaptionsResult(df, time.perf_counter() - t0, n_flagged)
