"""images: standardised 2D images (clean PNGs) and aligned ground-truth mask stacks."""


import polars as pl
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output

from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.declare import shard_asset
from medtrinity_assets.defs.metadata import preview, throughput, write_rejects
from medtrinity_assets.partitions import split_key
from medtrinity_assets.phi import phi_clear, phi_summary
from medtrinity_assets.stages.images import ingest_shard
from medtrinity_resources.storage import MedtrinityStorage


@shard_asset(
    {"every_item_accounted_for": "Every manifest item yields at least one image or a rejects row."},
    kinds={"polars", "parquet"},
    description="Standardised 2D images (volumes oriented and sliced, windowed, resized) written to storage; rejects recorded.",
)
def images(context: AssetExecutionContext, source_manifest: pl.DataFrame, storage: MedtrinityStorage):
    dataset, shard = split_key(context.partition_key)
    manifest = source_manifest.filter((pl.col("dataset") == dataset) & (pl.col("shard") == shard))
    policies = {dataset: CATALOG.source(dataset).ingest}
    source = CATALOG.source(dataset)
    result = ingest_shard(manifest, policies, storage, {dataset: source.rois}, phi={dataset: source.phi})
    context.log.info(f"{dataset}/{shard}: {manifest.height} items -> {result.images.height} images, {result.rejects.height} rejects")
    md = {
        "items": MetadataValue.int(manifest.height),
        "images": MetadataValue.int(result.images.height),
        "duplicates": MetadataValue.int(int(result.images["duplicate_of"].is_not_null().sum())),
        "gt_small_components": MetadataValue.int(result.gt_small_components),
        "modalities": MetadataValue.json(dict(result.images.group_by("modality").len().iter_rows()) if result.images.height else {}),
        **throughput(result.images.height, result.seconds, "images"),
        **write_rejects(storage, "images", dataset, shard, result.rejects),
        "phi": MetadataValue.json(phi_summary(result.images)),
        **preview(storage, next(iter(phi_clear(result.images)["image_uri"]), None), "first image"),
    }
    yield Output(result.images, metadata=md)
    produced = set(result.images["item_id"].to_list()) | set(result.rejects["item_id"].to_list())
    missing = sorted(set(manifest["item_id"].to_list()) - produced)
    yield AssetCheckResult(
        check_name="every_item_accounted_for",
        passed=not missing,
        metadata={"missing_items": MetadataValue.json(missing[:50])},
        description="Every manifest item yields at least one image or a rejects row.",
    )
