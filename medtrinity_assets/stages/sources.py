"""source_manifest: list a source's items with their shards and change fingerprints."""

from __future__ import annotations

import hashlib
import os

import polars as pl

from medtrinity_assets.catalog import Catalog, SourceConfig, item_fingerprint, item_to_json, list_items, list_source
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


def shard_fingerprints(catalog: Catalog, source: SourceConfig) -> dict[str, str]:
    """One digest per shard key of the catalog (empty shards too) over the source's catalog entry and
    the relative path, size and mtime of every file of the shard's items: the data version of
    `source_files[<source>|<shard>]`. Editing the entry changes every shard of the source; touching
    one file changes one shard."""
    entry = source.model_dump_json()
    root = catalog.source_root(source)
    digests = {shard: hashlib.sha256(entry.encode()) for shard in catalog.shard_keys}
    for item in list_items(catalog, source):
        h = digests[item.shard]
        for path in [item.image_path, *[m.path for m in item.masks]]:
            try:
                st = os.stat(path)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            h.update(f"{item.item_id}|{os.path.relpath(path, root)}|{stamp}\n".encode())
    return {shard: h.hexdigest()[:16] for shard, h in digests.items()}
