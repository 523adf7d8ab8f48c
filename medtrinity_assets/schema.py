"""Explicit polars schemas of every persisted manifest (documented in docs/record_schema.md).

Each asset writes exactly one Parquet file per partition with one of these schemas; `conform`
casts a frame to its schema and fails loudly on a missing or extra column.
"""

from __future__ import annotations

import polars as pl

SCHEMA_VERSION = "11"  # 2: images.gt_small_components, images.image_signature; 3: typed frame, position, relations, measurements; 4: phi columns; 5: triplets.caption_confidence, judge_reason, judge_model; 6: concepts (coarse_captions.image_labels, retrieved_knowledge.roi_concept/finding_concepts/passage_concepts); 7: caption accounting (caption_batches.seconds, model_calls, cache_hit); 8: grouped instances (m_instance_count, m_instance_diameter_*, m_instance_cells, m_largest_row/col); 9: m_count_kind (separate instances or parts of one structure); 10: contacts (every ROI label an ROI touches or overlaps); 11: m_rgb_mean, m_ring_rgb_mean (mean colour of an ROI and its ring, colour sources)

Str = pl.Utf8
StrList = pl.List(pl.Utf8)
F64List = pl.List(pl.Float64)

#: the display frame of an image (records.DisplayFrame), images and triplets
FRAME_COLUMNS = {
    "frame_plane": Str,  # axial | coronal | sagittal | projection | null
    "frame_lateral": Str,  # radiological | neurological | null (no side claim)
    "frame_up": Str,  # anterior | superior | null
    "frame_anterior_side": Str,  # sagittal: left | right
    "spacing_row_mm": pl.Float64,  # mm per displayed pixel (null: unknown)
    "spacing_col_mm": pl.Float64,
    "world_origin": F64List,  # LPS mm of displayed pixel (0, 0); null without a world frame
    "world_row_dir": F64List,
    "world_col_dir": F64List,
}

#: the typed position of an ROI (records.GridPosition), ROIs and triplets
POSITION_COLUMNS = {
    "grid_row": pl.Int8,  # 0..4, top to bottom
    "grid_col": pl.Int8,  # 0..4, image left to right
    "patient_side": Str,  # right | left | midline | null (from world coordinates only)
    "patient_level": Str,  # anterior | central | posterior | superior | inferior | null
    "patient_depth": Str,  # sagittal: anterior | central | posterior
}

RELATION_STRUCT = pl.Struct({"kind": Str, "other": Str, "direction": Str, "count": pl.Int32})

#: pixel measurements of an ROI (records.Measurements; area_px and n_components have their own columns)
MEASUREMENT_COLUMNS = {
    "m_intensity_unit": Str,  # HU | relative | rgb
    "m_mean": pl.Float64,
    "m_ring_mean": pl.Float64,
    "m_std": pl.Float64,
    "m_ring_std": pl.Float64,
    "m_contrast": pl.Float64,
    "m_hue_delta": pl.Float64,
    "m_saturation_delta": pl.Float64,
    "m_rgb_mean": pl.List(pl.Float64),  # rgb only: mean R, G, B (0..1) inside the ROI
    "m_ring_rgb_mean": pl.List(pl.Float64),  # ... and in the ring of surroundings
    "m_entropy": pl.Float64,
    "m_glcm_contrast": pl.Float64,
    "m_glcm_homogeneity": pl.Float64,
    "m_area_mm2": pl.Float64,
    "m_equivalent_diameter_px": pl.Float64,
    "m_equivalent_diameter_mm": pl.Float64,
    "m_circularity": pl.Float64,
    "m_elongation": pl.Float64,
    "m_solidity": pl.Float64,
    "m_margin_sharpness": pl.Float64,
    "m_label_count": pl.Int32,  # instances of the label on the image
    "m_count_kind": Str,  # instances | parts: what the label's several ROIs are (label_count > 1)
    "m_instance_count": pl.Int32,  # grouped ROI: instances its mask unites (null: one instance)
    "m_instance_diameter_min_px": pl.Float64,
    "m_instance_diameter_median_px": pl.Float64,
    "m_instance_diameter_max_px": pl.Float64,
    "m_instance_diameter_min_mm": pl.Float64,
    "m_instance_diameter_median_mm": pl.Float64,
    "m_instance_diameter_max_mm": pl.Float64,
    "m_instance_cells": pl.Int8,  # 5 x 5 grid cells holding an instance centre
    "m_largest_row": pl.Int8,  # grid cell of the largest instance
    "m_largest_col": pl.Int8,
    "m_unmeasured": Str,  # JSON {field: reason}
}

REJECTS_SCHEMA = pl.Schema(
    {
        "dataset": Str,
        "shard": Str,
        "stage": Str,
        "item_id": Str,
        "source_file": Str,
        "reason": Str,
        "detail": Str,
    }
)

SOURCE_MANIFEST_SCHEMA = pl.Schema(
    {
        "dataset": Str,
        "item_id": Str,
        "shard": Str,
        "source_file": Str,
        "format": Str,
        "modality": Str,
        "organs": StrList,
        "labels": StrList,
        "n_masks": pl.Int32,
        "fingerprint": Str,
        "item_json": Str,
    }
)

# burned-in text screening of each image (medtrinity_assets/phi): never the text itself
PHI_IMAGE_COLUMNS = {
    "phi_policy": Str,  # JSON of the source's PhiPolicy
    "phi_action": Str,  # no_text | kept | masked | quarantined
    "phi_text_regions": pl.Int32,
    "phi_text_boxes": pl.List(pl.List(pl.Int32)),  # [x0, y0, x1, y1] per region, inclusive
    "phi_kinds": StrList,  # PHI kinds the regions' text matched (name, date, time, id, ..., header_name)
    "phi_reasons": StrList,  # quarantine reasons from the pixels (phi_pixels:<kind>)
    "phi_header_hashes": StrList,  # keyed hashes of DICOM header identity values
    "phi_ocr": Str,  # OCR engine and version ('' when OCR is off)
}
PHI_TRIPLET_COLUMNS = {"phi_policy": Str, "phi_action": Str, "phi_text_regions": pl.Int32}

# the slice an image record was cut from and what it shows (images and triplets, in this order)
SLICE_COLUMNS = {
    "source_file": Str,
    "slice_axis": Str,
    "slice_index": pl.Int32,
    "modality": Str,
    "organs": StrList,
    "labels": StrList,
    "width": pl.Int32,
    "height": pl.Int32,
}

IMAGES_SCHEMA = pl.Schema(
    {
        "image_id": Str,
        "dataset": Str,
        "shard": Str,
        "item_id": Str,
        **SLICE_COLUMNS,
        "channels": pl.Int8,
        "image_uri": Str,
        "gt_masks_uri": Str,
        "n_gt_layers": pl.Int32,
        "gt_small_components": pl.Int32,  # GT components below the source's rois.min_area_px (not grounded)
        "image_sha256": Str,
        "image_phash": Str,
        "image_signature": Str,  # 16x16 grey thumbnail, hex: pixel confirmation of near duplicates
        "duplicate_of": Str,
        "orientation": Str,
        **FRAME_COLUMNS,
        "native_uri": Str,  # native values on the display grid (npz): HU for CT; null for 8-bit/colour sources
        "native_unit": Str,  # HU | raw
        "patient_hash": Str,
        "ingest_meta": Str,  # JSON, PHI-free
        "ingest_policy": Str,  # JSON of the policy applied
        **PHI_IMAGE_COLUMNS,
    }
)

ROIS_SCHEMA = pl.Schema(
    {
        "roi_id": Str,
        "image_id": Str,
        "dataset": Str,
        "shard": Str,
        "roi_index": pl.Int32,  # -1: no ROI, the whole image is described
        "label": Str,
        "origin": Str,  # ground_truth | model:<name>@<version> | none
        "score": pl.Float64,
        "instance": pl.Int32,
        "bbox_x0": pl.Int32,
        "bbox_y0": pl.Int32,
        "bbox_x1": pl.Int32,
        "bbox_y1": pl.Int32,
        "bbox_norm": F64List,
        "area_px": pl.Int64,
        "area_frac": pl.Float64,
        "centroid_x": pl.Float64,
        "centroid_y": pl.Float64,
        "n_components": pl.Int32,
        "position": Str,  # grid cell name in image terms ("upper left-center")
        **POSITION_COLUMNS,
        "relations": pl.List(RELATION_STRUCT),
        "contacts": pl.List(Str),  # every ROI label it touches or overlaps; null for a whole image
        **MEASUREMENT_COLUMNS,
        "rle": Str,
        "overlay_uri": Str,
    }
)

COARSE_CAPTIONS_SCHEMA = pl.Schema(
    {
        "roi_id": Str,
        "image_id": Str,
        "dataset": Str,
        "shard": Str,
        "modality": Str,
        "organs": StrList,
        "roi_label": Str,
        "coarse_caption": Str,
        "knowledge_query": Str,
        "image_labels": StrList,  # the image's recorded labels (findings), as ingested
    }
)

#: a label mapped to a concept (records.ConceptRef)
CONCEPT_STRUCT = pl.Struct(
    {
        "concept_id": Str,  # DOID:… (finding) | UBERON:… (anatomy) | '' (unmapped, normal)
        "kind": Str,  # finding | anatomy | normal
        "name": Str,  # the concept's preferred name (the label itself when unmapped)
        "matched": Str,  # the label as it was matched
        "match_type": Str,  # exact | synonym | alias | catalog | normalised | none
    }
)

RETRIEVED_KNOWLEDGE_SCHEMA = pl.Schema(
    {
        "roi_id": Str,
        "dataset": Str,
        "shard": Str,
        "knowledge_query": Str,
        "passage_ids": StrList,
        "passage_corpora": StrList,
        "passage_titles": StrList,
        "passage_texts": StrList,
        "passage_scores": F64List,
        "passage_concepts": pl.List(StrList),  # per passage: the concept ids it is about
        "roi_concept": CONCEPT_STRUCT,  # the ROI label's concept
        "finding_concepts": pl.List(CONCEPT_STRUCT),  # the image's labels (findings) as concepts
        "retriever": Str,  # embedder model id + fusion settings + policy
    }
)

SECTION_COLUMNS = ["section_modality", "section_organs", "section_roi", "section_texture", "section_relations"]

CAPTIONS_SCHEMA = pl.Schema(
    {
        "roi_id": Str,
        "image_id": Str,
        "dataset": Str,
        "shard": Str,
        "caption": Str,
        **{c: Str for c in SECTION_COLUMNS},
        "backend": Str,
        "model": Str,
        "model_version": Str,
        "prompt_version": Str,
        "prompt_hash": Str,
        "generation_settings": Str,  # JSON
        "attempts": pl.Int32,
        "problems": StrList,
        "tokens_in": pl.Int64,
        "tokens_out": pl.Int64,
        "seconds": pl.Float64,  # model time paid for this caption (0 when every attempt came from the call cache)
        "model_calls": pl.Int32,  # attempts sent to the model
        "cache_hit": pl.Boolean,  # every attempt came from the content-addressed call cache
        "passage_ids": StrList,
        "concept_ids": StrList,  # the ROI's concept, then the recorded findings' (knowledge provenance)
    }
)

TRIPLETS_SCHEMA = pl.Schema(
    {
        "triplet_id": Str,
        "schema_version": Str,
        "dataset": Str,
        "shard": Str,
        "image_id": Str,
        "image_uri": Str,
        "overlay_uri": Str,
        **SLICE_COLUMNS,
        "orientation": Str,
        **FRAME_COLUMNS,
        "patient_hash": Str,
        "roi_id": Str,
        "roi_label": Str,
        "roi_origin": Str,
        "roi_score": pl.Float64,
        "bbox_x0": pl.Int32,
        "bbox_y0": pl.Int32,
        "bbox_x1": pl.Int32,
        "bbox_y1": pl.Int32,
        "bbox_norm": F64List,
        "area_frac": pl.Float64,
        "area_px": pl.Int64,
        "n_components": pl.Int32,
        "position": Str,
        **POSITION_COLUMNS,
        "relations": pl.List(RELATION_STRUCT),
        "contacts": pl.List(Str),  # every ROI label it touches or overlaps; null for a whole image
        **MEASUREMENT_COLUMNS,
        "rle": Str,
        "coarse_caption": Str,
        "caption": Str,
        **{c: Str for c in SECTION_COLUMNS},
        "passage_ids": StrList,
        "concept_ids": StrList,
        "prompt_version": Str,
        "prompt_hash": Str,
        "caption_backend": Str,
        "caption_model": Str,
        "caption_model_version": Str,
        "generation_settings": Str,
        "ingest_policy": Str,
        **PHI_TRIPLET_COLUMNS,
        "licence": Str,
        "redistributable": pl.Boolean,
        "caption_confidence": pl.Float64,  # the judge's faithfulness score 0..1 (null: not judged)
        "judge_reason": Str,
        "judge_model": Str,
        "cache_hit": pl.Boolean,  # the caption came from the call cache (no model call paid in this run)
        "quarantined": pl.Boolean,
        "quarantine_reasons": StrList,
    }
)

#: the stratified seed subset (stages/seed.py): one row per chosen ROI record
SEED_SUBSET_SCHEMA = pl.Schema(
    {
        "roi_id": Str,
        "image_id": Str,
        "dataset": Str,
        "shard": Str,
        "modality": Str,
        "seed_label": Str,  # the ROI's label, else the image's labels joined with ',', else 'none'
        "stratum_size": pl.Int64,  # records of (dataset, modality, seed_label) it was drawn from
        "sampling": Str,  # JSON: size, min_per_stratum, seed
    }
)

#: seed captions written by the strong (seed) model: caption_batches' columns plus the exact prompt
SEED_CAPTIONS_SCHEMA = pl.Schema(
    {
        **CAPTIONS_SCHEMA,
        "modality": Str,
        "seed_label": Str,
        "overlay_uri": Str,  # the image the model saw (ROI outlined)
        "prompt": Str,  # the exact prompt text (prompt_hash is its hash)
        "quarantined": pl.Boolean,
        "quarantine_reasons": StrList,
    }
)

#: one row per exported fine-tuning conversation (export/finetune.py)
SEED_FINETUNE_SCHEMA = pl.Schema(
    {
        "id": Str,  # the ROI id
        "image": Str,  # path relative to the export directory
        "image_sha256": Str,
        "dataset": Str,
        "shard": Str,
        "modality": Str,
        "seed_label": Str,
        "overlay_uri": Str,
        "prompt_version": Str,
        "prompt_hash": Str,
        "backend": Str,
        "model": Str,
        "model_version": Str,
    }
)

KNOWLEDGE_INDEX_SCHEMA = pl.Schema(
    {
        "corpus": Str,
        "chunk_id": Str,
        "doc_id": Str,
        "title": Str,
        "content_hash": Str,
        "embedder": Str,
    }
)


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame | list[dict], schema: pl.Schema) -> pl.DataFrame:
    """Build/cast a frame to `schema` exactly (column order, dtypes); missing or extra columns fail."""
    if isinstance(df, list):
        if not df:
            return empty(schema)
        missing = set(schema.names()) - set(df[0].keys())
        extra = set(df[0].keys()) - set(schema.names())
        if missing or extra:
            raise ValueError(f"record does not match schema: missing={sorted(missing)} extra={sorted(extra)}")
        return pl.DataFrame(df, schema=schema)
    missing = set(schema.names()) - set(df.columns)
    extra = set(df.columns) - set(schema.names())
    if missing or extra:
        raise ValueError(f"frame does not match schema: missing={sorted(missing)} extra={sorted(extra)}")
    return df.select([pl.col(n).cast(t) for n, t in schema.items()])
