"""source_manifest: the items of one source, with shards and change fingerprints."""


import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
    asset,
)

from medtrinity_assets.defs.context import CATALOG, DATASET_PARTITIONS
from medtrinity_assets.stages.sources import changed_shards, source_manifest_and_findings
from medtrinity_resources.io_manager import manifest_key
from medtrinity_resources.storage import MedtrinityStorage


@asset(
    partitions_def=DATASET_PARTITIONS,
    io_manager_key="manifest_io",
    group_name="sources",
    kinds={"polars", "parquet"},
    check_specs=[AssetCheckSpec("items_have_shards", asset="source_manifest")],
    description="Every item (image, volume or DICOM) of one catalog source, with its shard and a change fingerprint.",
)
def source_manifest(context: AssetExecutionContext, storage: MedtrinityStorage):
    dataset = context.partition_key
    source = CATALOG.source(dataset)
    manifest, findings = source_manifest_and_findings(CATALOG, source)
    for finding in findings:
        context.log.warning(finding)
    previous_key = manifest_key("source_manifest", dataset)
    previous = storage.read_parquet(previous_key) if storage.exists(previous_key) else None
    changed = changed_shards(previous, manifest)
    per_shard = manifest.group_by("shard").len().sort("shard")
    yield Output(
        manifest,
        metadata={
            "items": MetadataValue.int(manifest.height),
            "items_per_shard": MetadataValue.json(dict(per_shard.iter_rows())),
            "changed_shards": MetadataValue.json(changed),
            "items_with_masks": MetadataValue.int(int((manifest["n_masks"] > 0).sum())),
            "licence": MetadataValue.text(source.licence),
            "redistributable": MetadataValue.bool(source.redistributable),
            "catalog_findings": MetadataValue.json(findings),
        },
    )
    bad = manifest.filter(~pl.col("shard").is_in(CATALOG.shard_keys))
    yield AssetCheckResult(
        check_name="items_have_shards",
        passed=bad.is_empty() and manifest.height > 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"items": manifest.height, "bad_shards": bad.height},
    )
