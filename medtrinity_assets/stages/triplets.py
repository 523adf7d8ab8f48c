"""triplets: one row per image–ROI–description, with its full provenance."""

from __future__ import annotations

import polars as pl

from medtrinity_assets.phi import triplet_phi
from medtrinity_assets.schema import (
    FRAME_COLUMNS,
    MEASUREMENT_COLUMNS,
    POSITION_COLUMNS,
    SCHEMA_VERSION,
    SECTION_COLUMNS,
    TRIPLETS_SCHEMA,
    conform,
)


def quarantine_counts(triplets: pl.DataFrame) -> dict[str, int]:
    """Quarantined records per problem code (a record with several reasons counts under each),
    most frequent first."""
    if triplets.is_empty():
        return {}
    reasons = triplets.filter(pl.col("quarantined")).explode("quarantine_reasons").drop_nulls("quarantine_reasons")
    counts = reasons.group_by("quarantine_reasons").len().sort(["len", "quarantine_reasons"], descending=[True, False])
    return {str(code): int(n) for code, n in counts.iter_rows()}


def geometry_problems(roi: dict, width: int, height: int) -> list[str]:
    """Structural checks of an ROI against its image."""
    if roi["roi_index"] == -1:
        return []
    x0, y0, x1, y1 = roi["bbox_x0"], roi["bbox_y0"], roi["bbox_x1"], roi["bbox_y1"]
    if None in (x0, y0, x1, y1):
        return ["bbox_missing"]
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        return ["bbox_outside_image"]
    return []


def assemble_triplets(
    images: pl.DataFrame,
    rois: pl.DataFrame,
    coarse: pl.DataFrame,
    captions: pl.DataFrame,
    licences: dict[str, tuple[str, bool]],
    judgements: pl.DataFrame | None = None,
    min_score: float = 0.5,
) -> pl.DataFrame:
    """One row per caption (none dropped); failing checks quarantine it with every reason.
    `judgements` (stages/judge.py) add the judge's score and reason; a score below `min_score`
    quarantines the record with ``judge_disagrees``."""
    if captions.is_empty():
        return conform([], TRIPLETS_SCHEMA)
    by_image = {r["image_id"]: r for r in images.iter_rows(named=True)}
    by_roi = {r["roi_id"]: r for r in rois.iter_rows(named=True)}
    by_coarse = {r["roi_id"]: r for r in coarse.iter_rows(named=True)}
    by_judge = {r["roi_id"]: r for r in judgements.iter_rows(named=True)} if judgements is not None else {}
    rows = []
    for c in captions.iter_rows(named=True):
        roi = by_roi[c["roi_id"]]
        img = by_image[c["image_id"]]
        reasons = list(c["problems"]) + geometry_problems(roi, img["width"], img["height"])
        if not (c["caption"] or "").strip():
            reasons.append("empty_caption")
        judge = by_judge.get(c["roi_id"]) or {}
        if judge.get("caption_confidence") is not None and judge["caption_confidence"] < min_score:
            reasons.append("judge_disagrees")
        rows.append(triplet_row(c, roi, img, by_coarse[c["roi_id"]], licences[img["dataset"]], judge, reasons))
    return conform(triplet_phi(rows, images), TRIPLETS_SCHEMA)  # PHI columns and quarantine reasons


def triplet_row(c: dict, roi: dict, img: dict, coarse: dict, licence: tuple[str, bool], judge: dict, reasons: list[str]) -> dict:
    """The triplet of caption `c`: image, ROI and caption columns with provenance and quarantine flags."""
    licence_name, redistributable = licence
    return {
        "triplet_id": c["roi_id"],
        "schema_version": SCHEMA_VERSION,
        "dataset": img["dataset"],
        "shard": img["shard"],
        "image_id": img["image_id"],
        "image_uri": img["image_uri"],
        "overlay_uri": roi["overlay_uri"],
        "source_file": img["source_file"],
        "slice_axis": img["slice_axis"],
        "slice_index": img["slice_index"],
        "modality": img["modality"],
        "organs": list(img["organs"]),
        "labels": list(img["labels"]),
        "width": img["width"],
        "height": img["height"],
        "orientation": img["orientation"],
        **{k: img.get(k) for k in FRAME_COLUMNS},
        "patient_hash": img["patient_hash"],
        "roi_id": roi["roi_id"],
        "roi_label": roi["label"],
        "roi_origin": roi["origin"],
        "roi_score": roi["score"],
        "bbox_x0": roi["bbox_x0"],
        "bbox_y0": roi["bbox_y0"],
        "bbox_x1": roi["bbox_x1"],
        "bbox_y1": roi["bbox_y1"],
        "bbox_norm": roi["bbox_norm"],
        "area_frac": roi["area_frac"],
        "area_px": roi["area_px"],
        "n_components": roi["n_components"],
        "position": roi["position"],
        **{k: roi.get(k) for k in POSITION_COLUMNS},
        "relations": list(roi.get("relations") or []),
        "contacts": None if roi.get("contacts") is None else list(roi["contacts"]),
        **{k: roi.get(k) for k in MEASUREMENT_COLUMNS},
        "rle": roi["rle"],
        "coarse_caption": coarse["coarse_caption"],
        "caption": c["caption"],
        **{col: c[col] for col in SECTION_COLUMNS},
        "passage_ids": list(c["passage_ids"]),
        "concept_ids": list(c.get("concept_ids") or []),
        "prompt_version": c["prompt_version"],
        "prompt_hash": c["prompt_hash"],
        "caption_backend": c["backend"],
        "caption_model": c["model"],
        "caption_model_version": c["model_version"],
        "generation_settings": c["generation_settings"],
        "ingest_policy": img["ingest_policy"],
        "licence": licence_name,
        "redistributable": redistributable,
        "caption_confidence": judge.get("caption_confidence"),
        "judge_reason": judge.get("judge_reason"),
        "judge_model": judge.get("judge_model"),
        "cache_hit": c.get("cache_hit"),
        "quarantined": bool(reasons),
        "quarantine_reasons": sorted(set(reasons)),
    }
