"""coarse_captions and caption_batches for one shard (retrieved_knowledge: stages/knowledge.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from medtrinity_assets.captions import coarse_caption
from medtrinity_assets.generation import CallCache, CaptionRequest, Generation, GenerationSettings, describe
from medtrinity_assets.phi.pixels import QUARANTINED as PHI_QUARANTINED
from medtrinity_assets.knowledge import knowledge_query
from medtrinity_assets.records import CaptionFacts, Intensity, Passage
from medtrinity_assets.schema import CAPTIONS_SCHEMA, COARSE_CAPTIONS_SCHEMA, SECTION_COLUMNS, conform
from medtrinity_assets.stages.common import dumps
from medtrinity_assets.stages.facts import frame_from_row, measurements_from_row, position_from_row, relations_from_row
from medtrinity_assets.stages.knowledge import concept_from_row


def sibling_labels(rois: pl.DataFrame) -> dict[str, list[str]]:
    """image_id -> the distinct ROI labels of that image, in record order (empty labels left out)."""
    siblings: dict[str, list[str]] = {}
    for r in rois.iter_rows(named=True):
        if r["label"] and r["label"] not in siblings.setdefault(r["image_id"], []):
            siblings[r["image_id"]].append(r["label"])
    return siblings


def structure_intensities(rois: pl.DataFrame) -> dict[str, list[Intensity]]:
    """image_id -> the measured mean intensity of each structure on that image: a label held by one
    ROI, or by several ROIs that are parts of one structure (``m_count_kind`` ``parts``: a liver the
    slice cuts in two), whose union's mean and standard deviation are pooled exactly from the parts'
    (area-weighted, with the spread between the parts' means). Separate instances of a label, or an
    ROI without a mean and standard deviation, give none."""
    by_label: dict[tuple[str, str], list[dict]] = {}
    for r in rois.iter_rows(named=True):
        if r["label"]:
            by_label.setdefault((r["image_id"], r["label"]), []).append(r)
    out: dict[str, list[Intensity]] = {}
    for (image_id, label), rows in by_label.items():
        measured = all(r.get("m_mean") is not None and r.get("m_std") is not None and r.get("m_intensity_unit") for r in rows)
        units = {r.get("m_intensity_unit") for r in rows}
        if not measured or len(units) != 1 or (len(rows) > 1 and any(r.get("m_count_kind") != "parts" for r in rows)):
            continue
        n = np.array([r["area_px"] for r in rows], dtype=np.float64)
        means = np.array([r["m_mean"] for r in rows], dtype=np.float64)
        stds = np.array([r["m_std"] for r in rows], dtype=np.float64)
        mean = float((n * means).sum() / n.sum())
        std = float(np.sqrt((n * (stds**2 + (means - mean) ** 2)).sum() / n.sum()))
        out.setdefault(image_id, []).append(Intensity(label, units.pop(), mean, std, int(n.sum())))
    return out


def build_coarse_captions(images: pl.DataFrame, rois: pl.DataFrame) -> pl.DataFrame:
    """One coarse caption per ROI record, from metadata only (modality, organs, labels)."""
    if rois.is_empty():
        return conform([], COARSE_CAPTIONS_SCHEMA)
    by_image = {r["image_id"]: r for r in images.iter_rows(named=True)}
    labels_by_image = sibling_labels(rois)
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
                "image_labels": list(img["labels"]),
            }
        )
    return conform(rows, COARSE_CAPTIONS_SCHEMA)


def facts_for(
    image: dict, roi: dict, coarse: dict, retrieved: dict | None, siblings: list[str], intensities: list[Intensity] | None = None
) -> CaptionFacts:
    passages = []
    if retrieved:
        for cid, corpus, title, text, score, concepts in zip(
            retrieved["passage_ids"],
            retrieved["passage_corpora"],
            retrieved["passage_titles"],
            retrieved["passage_texts"],
            retrieved["passage_scores"],
            retrieved["passage_concepts"],
        ):
            passages.append(Passage(chunk_id=cid, corpus=corpus, title=title, text=text, score=score, concept_ids=tuple(concepts)))
    findings = [concept_from_row(f) for f in (retrieved or {}).get("finding_concepts") or []]
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
        contacts=None if roi.get("contacts") is None else list(roi["contacts"]),
        measurements=measurements_from_row(roi),
        roi_concept=concept_from_row((retrieved or {}).get("roi_concept")),
        finding_concepts=[f for f in findings if f is not None],
        spacing_mm=frame.spacing_rc,
        other_intensities=[i for i in intensities or [] if i.label != roi["label"]],
    )


class ShardFacts:
    """The typed facts (`facts_for`) of any ROI record of a shard: its image, coarse caption,
    retrieved knowledge (none when `retrieved` is None), the labels of its image's other ROIs and
    their measured mean intensities (`structure_intensities`)."""

    def __init__(self, images: pl.DataFrame, rois: pl.DataFrame, coarse: pl.DataFrame, retrieved: pl.DataFrame | None = None):
        self.by_image = {r["image_id"]: r for r in images.iter_rows(named=True)}
        self.by_coarse = {r["roi_id"]: r for r in coarse.iter_rows(named=True)}
        self.by_retrieved = {} if retrieved is None else {r["roi_id"]: r for r in retrieved.iter_rows(named=True)}
        self.siblings = sibling_labels(rois)
        self.intensities = structure_intensities(rois)

    def __call__(self, roi: dict) -> CaptionFacts:
        image_id, roi_id = roi["image_id"], roi["roi_id"]
        return facts_for(
            self.by_image[image_id], roi, self.by_coarse[roi_id], self.by_retrieved.get(roi_id), self.siblings.get(image_id, []),
            self.intensities.get(image_id, []),
        )


def withheld_generation(roi_id: str, mllm) -> Generation:
    """The record of an ROI whose image was not sent to the model (PHI quarantine): no text, no call."""
    return Generation(
        request_id=roi_id, text="", sections={}, backend=mllm.backend, model=mllm.model_name or mllm.model_path, model_version=mllm.model_revision,
        prompt_version="", prompt_hash="", attempts=0, problems=["phi_withheld"],
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
    roi_ids: set[str] | None = None,
) -> CaptionsResult:
    """One multigranular description per ROI record through `generation.describe` (model calls
    cached in `storage`, flagged answers kept). `roi_ids`: describe only these records (the other
    ROIs of their images still shape the prompt; the seed subset uses this)."""
    t0 = time.perf_counter()
    if rois.is_empty():
        return CaptionsResult(conform([], CAPTIONS_SCHEMA), 0.0, 0)
    shard_facts = ShardFacts(images, rois, coarse, retrieved)
    needs_image = mllm.calls_model
    requests, roi_rows, withheld = [], [], []
    for r in rois.iter_rows(named=True):
        if roi_ids is not None and r["roi_id"] not in roi_ids:
            continue
        if needs_image and shard_facts.by_image[r["image_id"]].get("phi_action") == PHI_QUARANTINED:
            withheld.append(r)  # burned-in PHI: the pixels never leave for a model (the record is quarantined)
            continue
        facts = shard_facts(r)
        png = storage.read_uri(r["overlay_uri"]) if needs_image else None
        requests.append(CaptionRequest(request_id=r["roi_id"], facts=facts, image_png=png))
        roi_rows.append(r)
    generations = describe(mllm, requests, CallCache(storage, enabled=use_cache), settings)
    for r in withheld:
        roi_rows.append(r)
        requests.append(CaptionRequest(request_id=r["roi_id"], facts=facts_for(shard_facts.by_image[r["image_id"]], r, shard_facts.by_coarse[r["roi_id"]], None, [])))
        generations.append(withheld_generation(r["roi_id"], mllm))
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
                "concept_ids": [c.concept_id for c in [req.facts.roi_concept, *req.facts.finding_concepts] if c is not None and c.concept_id],
            }
        )
    df = conform(rows, CAPTIONS_SCHEMA)
    n_flagged = int(df.filter(pl.col("problems").list.len() > 0).height)
    return CaptionsResult(df, time.perf_counter() - t0, n_flagged)
