"""The exported record (release schema) and the VQA pair schema, with column docs.

The same columns are written to the full Parquet view (``data/full/<split>.parquet``, where
``image`` and ``overlay`` hold the embedded image as the Hugging Face ``Image`` struct, see
`hf`) and, as JSON with those two as paths, into every WebDataset sample's ``records``; the card
renders `RELEASE_COLUMNS` as its schema table.
"""

from __future__ import annotations

import polars as pl

from medtrinity_assets.grid import position_grid
from medtrinity_assets.schema import MEASUREMENT_COLUMNS, RELATION_STRUCT, SECTION_COLUMNS

RELEASE_SCHEMA_VERSION = "5"  # 2: typed frame, position, relations and measurements; 3: embedded images, split `validation`; 4: contacts; 5: m_rgb_mean, m_ring_rgb_mean

Str = pl.Utf8
StrList = pl.List(pl.Utf8)
_GRID = position_grid()

#: (column, dtype, meaning)
RELEASE_COLUMNS: list[tuple[str, pl.DataType, str]] = [
    ("sample_id", Str, "record id: `<image_id>#<nnn>` (ROI index) or `<image_id>#whole`"),
    ("release_schema_version", Str, "version of this schema"),
    ("split", Str, "`train`, `validation` or `test` (by patient, else volume/item; see the card)"),
    ("split_group", Str, "salted id of the split group: records sharing it are always in one split"),
    ("image", Str, "clean image (never drawn on); in Parquet the HF `Image` struct `{bytes, path}` (PNG bytes, path relative to the release root), in JSON the path"),
    ("overlay", Str, "the image with this ROI's contour drawn (the visual prompt), stored like `image`; the clean image for whole-image records"),
    ("image_sha256", Str, "SHA-256 of the clean image file"),
    ("overlay_sha256", Str, "SHA-256 of the overlay file"),
    ("image_phash", Str, "64-bit perceptual hash (imagehash.phash, hex) of the clean image"),
    ("dataset", Str, "source name in the catalog"),
    ("image_id", Str, "`<dataset>/<item_id>[@<axis><index>]`"),
    ("source_file", Str, "path of the source file relative to the source root"),
    ("slice_axis", Str, "slicing axis of a volume (`axial`, ...) or frame; null for 2D files"),
    ("slice_index", pl.Int32, "slice/frame index in the source volume; null for 2D files"),
    ("modality", Str, "imaging modality"),
    ("organs", StrList, "organs / body regions"),
    ("labels", StrList, "image-level labels (findings) from the source"),
    ("width", pl.Int32, "image width (px)"),
    ("height", pl.Int32, "image height (px)"),
    ("orientation", Str, "display convention (e.g. radiological: patient left on image right)"),
    ("frame_plane", Str, "`axial`, `coronal`, `sagittal`, `projection`; null for photographs and microscopy"),
    ("frame_lateral", Str, "`radiological` (image left = patient right), `neurological`; null: no side claim"),
    ("spacing_row_mm", pl.Float64, "mm per displayed pixel along rows; null when unknown"),
    ("spacing_col_mm", pl.Float64, "mm per displayed pixel along columns; null when unknown"),
    ("roi_id", Str, "ROI id (same as sample_id)"),
    ("roi_label", Str, "ROI structure/finding label; null for whole-image records"),
    ("roi_origin", Str, "`ground_truth`, `model:<name>@<version>` or `none` (whole image)"),
    ("roi_score", pl.Float64, "model confidence for model ROIs; null otherwise"),
    ("bbox", pl.List(pl.Int32), "ROI box `[x0, y0, x1, y1]`, inclusive pixel coordinates; null for whole-image records"),
    ("bbox_norm", pl.List(pl.Float64), "ROI box normalised to [0, 1]"),
    ("area_frac", pl.Float64, "ROI mask area / image area"),
    ("position", Str, f"ROI position on a {_GRID.n_rows}x{_GRID.n_cols} grid in image terms (`{_GRID.phrase(0, min(1, _GRID.n_cols - 1))}`)"),
    ("grid_row", pl.Int8, f"grid row of the ROI box centre, 0 (top) to {_GRID.n_rows - 1}"),
    ("grid_col", pl.Int8, f"grid column of the ROI box centre, 0 (image left) to {_GRID.n_cols - 1}"),
    ("patient_side", Str, "`right`, `left`, `midline` from world coordinates; null when no world frame"),
    ("patient_level", Str, "`anterior`/`central`/`posterior` (axial) or `superior`/`central`/`inferior`"),
    ("relations", pl.List(RELATION_STRUCT), "typed relations to other structures (`kind`, `other`, `direction`, `count`)"),
    ("contacts", pl.List(Str), "every structure label the ROI touches or overlaps (8-connected); null for whole-image records"),
    ("area_px", pl.Int64, "ROI area in pixels"),
    ("n_components", pl.Int32, "connected components of the ROI mask"),
    *[(name, dtype, "pixel measurement (see docs/record_schema.md)") for name, dtype in MEASUREMENT_COLUMNS.items()],
    ("mask_rle", Str, "ROI mask: `\"<H> <W>;<counts>\"`, COCO uncompressed RLE counts, column-major"),
    ("coarse_caption", Str, "caption from metadata"),
    ("caption", Str, "the multigranular description"),
    ("section_modality", Str, "description attribute 1: modality"),
    ("section_organs", Str, "attribute 2: organs"),
    ("section_roi", Str, "attribute 3: ROI location and look"),
    ("section_texture", Str, "attribute 4: texture / colour"),
    ("section_relations", Str, "attribute 5: ROI-region relationship"),
    ("passage_ids", StrList, "knowledge chunks given to the caption writer (`<corpus>:<doc>:<chunk>`)"),
    ("prompt_version", Str, "prompt template version"),
    ("prompt_hash", Str, "hash of the rendered prompt"),
    ("caption_backend", Str, "who wrote the caption (`grounded_composer`, `transformers`, `openai`)"),
    ("caption_model", Str, "model name"),
    ("caption_model_version", Str, "model version / revision"),
    ("generation_settings", Str, "JSON: decoding, dtype, device"),
    ("ingest_policy", Str, "JSON: slicing, intensity, size policy applied"),
    ("triplet_schema_version", Str, "version of the pipeline's triplets schema"),
    ("licence", Str, "licence of the source"),
    ("redistributable", pl.Boolean, "whether the source's licence allows redistribution"),
    ("quarantined", pl.Boolean, "failed a caption/geometry check (always false unless the release sets include_quarantined)"),
    ("quarantine_reasons", StrList, "problem codes of quarantined records"),
    ("benchmark_match", Str, "`<benchmark>:<file>` of a near-duplicate benchmark image (decontamination `flag`); null otherwise"),
    ("benchmark_distance", pl.Int32, "perceptual-hash distance (bits) to that benchmark image"),
]

RELEASE_SCHEMA = pl.Schema({name: dtype for name, dtype, _ in RELEASE_COLUMNS})

VQA_COLUMNS: list[tuple[str, pl.DataType, str]] = [
    ("qa_id", Str, "`<sample or image id>|<category>|<n>`"),
    ("sample_id", Str, "release record the pair was derived from"),
    ("image_id", Str, "image id"),
    ("split", Str, "the record's split (pairs never cross splits)"),
    ("dataset", Str, "source name"),
    ("image", Str, "image the question is about (the overlay for questions about the outlined ROI)"),
    ("question", Str, "question"),
    ("answer", Str, "answer"),
    ("answer_type", Str, "`closed` (yes/no) or `open`"),
    ("category", Str, "`modality`, `organ`, `location`, `finding`, `size`, `relation` (contacts) or `appearance` (measured look, since vqa-rules-v3)"),
    ("generator", Str, "`rules:<version>` or `mllm:<backend>:<model>`"),
]

VQA_SCHEMA = pl.Schema({name: dtype for name, dtype, _ in VQA_COLUMNS})

TRIPLET_PASSTHROUGH = [
    "sample_id",
    "dataset",
    "image_id",
    "source_file",
    "slice_axis",
    "slice_index",
    "modality",
    "organs",
    "labels",
    "width",
    "height",
    "orientation",
    "frame_plane",
    "frame_lateral",
    "spacing_row_mm",
    "spacing_col_mm",
    "roi_id",
    "roi_label",
    "roi_origin",
    "roi_score",
    "bbox_norm",
    "area_frac",
    "position",
    "grid_row",
    "grid_col",
    "patient_side",
    "patient_level",
    "relations",
    "contacts",
    "area_px",
    "n_components",
    *MEASUREMENT_COLUMNS,
    "coarse_caption",
    "caption",
    *SECTION_COLUMNS,
    "passage_ids",
    "prompt_version",
    "prompt_hash",
    "caption_backend",
    "caption_model",
    "caption_model_version",
    "generation_settings",
    "ingest_policy",
    "licence",
    "redistributable",
    "quarantined",
    "quarantine_reasons",
]


def schema_markdown(columns: list[tuple[str, pl.DataType, str]] = RELEASE_COLUMNS) -> str:
    """The columns as a Markdown table (column, type, meaning)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for name, dtype, doc in columns:
        lines.append(f"| `{name}` | {dtype} | {doc.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)
