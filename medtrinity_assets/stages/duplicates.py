"""image_duplicates: exact (pixel sha256) and near (perceptual hash) duplicates across every
source and shard. Within a shard, `roi_masks` already describes a duplicate only once; across
shards and sources the duplicates are recorded here and releases drop or keep them."""

from __future__ import annotations

import polars as pl

from medtrinity_assets.ingest import dedup_flags

DUPLICATES_SCHEMA = pl.Schema(
    {
        "image_id": pl.Utf8,
        "dataset": pl.Utf8,
        "duplicate_of": pl.Utf8,
        "duplicate_of_dataset": pl.Utf8,
        "kind": pl.Utf8,  # exact | near
        "phash_distance": pl.Int32,
    }
)


def find_duplicates(images: pl.DataFrame, max_distance: int = 4) -> pl.DataFrame:
    """Duplicates among all images; the first image in (dataset, image_id) order is kept."""
    if images.is_empty():
        return pl.DataFrame(schema=DUPLICATES_SCHEMA)
    columns = ["image_id", "dataset", "image_sha256", "image_phash"] + (["image_signature"] if "image_signature" in images.columns else [])
    ordered = images.select(columns).unique("image_id").sort("dataset", "image_id")
    flags = dedup_flags(ordered, max_distance=max_distance)
    dups = flags.filter(pl.col("duplicate_of").is_not_null())
    datasets = dict(zip(ordered["image_id"].to_list(), ordered["dataset"].to_list()))
    return pl.DataFrame(
        {
            "image_id": dups["image_id"],
            "dataset": [datasets[i] for i in dups["image_id"].to_list()],
            "duplicate_of": dups["duplicate_of"],
            "duplicate_of_dataset": [datasets[i] for i in dups["duplicate_of"].to_list()],
            "kind": ["exact" if e else "near" for e in dups["exact_duplicate"].to_list()],
            "phash_distance": dups["phash_distance"],
        },
        schema=DUPLICATES_SCHEMA,
    )
