"""source_manifest: list a source's items with their shards and change fingerprints."""

from __future__ import annotations

import polars as pl

from medtrinity_assets.catalog import Catalog, SourceConfig, item_fingerprint, item_to_json, list_source
from medtrinity_assets.schema import SOURCE_MANIFEST_SCHEMA, conform


def build_source_manifest(catalog: Catalog, source: SourceConfig) -> pl.DataFrame:
    return source_manifest_and_findings(catalog, source)[0]


def source_manifest_and_findings(catalog: Catalog, source: SourceConfig) -> tuple[pl.DataFrame, list[str]]:
    """The manifest of one source and the catalog findings of its listing (warnings naming source and field).

    Manifest rejects (id collisions, unmatched names) stay in the manifest; the images stage
    writes them to its rejects table.
    """
    listing = list_source(catalog, source)
    rows = [
        {
            "dataset": it.dataset,
            "item_id": it.item_id,
            "shard": it.shard,
            "source_file": it.rel_path,
            "format": it.format,
            "modality": it.modality,
            "organs": list(it.organs),
            "labels": list(it.labels),
            "n_masks": len(it.masks),
            "fingerprint": item_fingerprint(it),
            "item_json": item_to_json(it),
        }
        for it in listing.items
    ]
    return conform(rows, SOURCE_MANIFEST_SCHEMA), listing.findings


def changed_shards(old: pl.DataFrame | None, new: pl.DataFrame) -> list[str]:
    """Shards whose items were added, removed or changed between two manifests."""
    if old is None or old.is_empty():
        return sorted(new["shard"].unique().to_list())
    a = old.select("item_id", "shard", "fingerprint")
    b = new.select("item_id", "shard", "fingerprint")
    joined = a.join(b, on="item_id", how="full", suffix="_new", coalesce=True)
    diff = joined.filter(
        pl.col("fingerprint").is_null() | pl.col("fingerprint_new").is_null() | (pl.col("fingerprint") != pl.col("fingerprint_new"))
    )
    shards = set(diff["shard"].drop_nulls().to_list()) | set(diff["shard_new"].drop_nulls().to_list())
    return sorted(shards)
