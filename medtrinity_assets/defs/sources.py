"""source_files (external, observed) and source_manifest: the items of one (source, shard).

`source_files[<source>|<shard>]` stands for the files themselves. It is never materialised; its
observations carry a data version (stages.sources.shard_fingerprints: the source's catalog entry
and its shard's file sizes and mtimes), reported by `source_files_sensor` (to the instance) and by
`medtrinity demo` / `medtrinity backfill` (through the webserver's external-assets REST endpoint). Dagster then marks `source_manifest` of exactly the shards whose files (or
whose source's catalog entry) changed as stale, and a run of that shard rebuilds its chain.
"""

import hashlib
from collections.abc import Mapping

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetRecordsFilter,
    AssetSpec,
    DagsterInstance,
    DataVersion,
    MetadataValue,
    Output,
)

from medtrinity_assets.catalog import Catalog
from medtrinity_assets.defs.context import CATALOG, DATASET_SHARD_PARTITIONS
from medtrinity_assets.defs.declare import manifest_asset
from medtrinity_assets.defs.names import SOURCE_FILES
from medtrinity_assets.partitions import split_key
from medtrinity_assets.stages.sources import shard_fingerprints, source_manifest_and_findings

DATA_VERSION_TAG = "dagster/data_version"  # the tag Dagster reads an observation's data version from

source_files = AssetSpec(
    SOURCE_FILES,
    partitions_def=DATASET_SHARD_PARTITIONS,
    group_name="sources",
    description="The files of one shard of a catalog source (observed, not built): its data version changes when a file of the shard or the source's catalog entry changes.",
)


def observed_fingerprints(catalog: Catalog, sources: list[str] | None = None) -> dict[str, str]:
    """`{"<source>|<shard>": fingerprint}` for every shard of the given sources (default: all)."""
    out: dict[str, str] = {}
    for name in sources or catalog.names:
        for shard, digest in shard_fingerprints(catalog, catalog.source(name)).items():
            out[f"{name}|{shard}"] = digest
    return out


def latest_data_versions(instance: DagsterInstance, partitions: list[str]) -> dict[str, str]:
    """The data version of each partition's latest source_files observation (absent: never observed)."""
    out: dict[str, str] = {}
    for partition in partitions:
        records = instance.fetch_observations(AssetRecordsFilter(asset_key=AssetKey(SOURCE_FILES), asset_partitions=[partition]), limit=1).records
        if records and records[0].asset_observation is not None:
            version = (records[0].asset_observation.tags or {}).get(DATA_VERSION_TAG)
            if version:
                out[partition] = version
    return out


def changed_observations(fingerprints: Mapping[str, str], current: Mapping[str, str]) -> list[AssetObservation]:
    """Observations for the partitions whose fingerprint differs from their current data version."""
    return [
        AssetObservation(asset_key=SOURCE_FILES, partition=partition, tags={DATA_VERSION_TAG: digest})
        for partition, digest in sorted(fingerprints.items())
        if current.get(partition) != digest
    ]


def manifest_version(manifest: pl.DataFrame) -> DataVersion:
    """A digest of the listed items and their fingerprints: the shard's manifest changes (and its
    whole chain becomes stale) exactly when an item or one of its files does."""
    h = hashlib.sha256()
    for item_id, fingerprint, item_json in manifest.select("item_id", "fingerprint", "item_json").sort("item_id").iter_rows():
        h.update(f"{item_id}|{fingerprint}|{item_json}\n".encode())
    return DataVersion(h.hexdigest()[:16])


@manifest_asset(
    {"items_belong_to_shard": "Every listed item hashes to this partition's source and shard."},
    partitions_def=DATASET_SHARD_PARTITIONS,
    deps=[source_files],
    group_name="sources",
    kinds={"polars", "parquet"},
    description="The items (image, volume or DICOM series, with their masks) of one shard of a catalog source, with change fingerprints.",
)
def source_manifest(context: AssetExecutionContext):
    dataset, shard = split_key(context.partition_key)
    source = CATALOG.source(dataset)
    manifest, findings = source_manifest_and_findings(CATALOG, source)
    for finding in findings:
        context.log.warning(finding)
    manifest = manifest.filter(pl.col("shard") == shard)
    yield Output(
        manifest,
        data_version=manifest_version(manifest),
        metadata={
            "items": MetadataValue.int(manifest.height),
            "items_with_masks": MetadataValue.int(int((manifest["n_masks"] > 0).sum())),
            "formats": MetadataValue.json(dict(manifest.group_by("format").len().iter_rows()) if manifest.height else {}),
            "licence": MetadataValue.text(source.licence),
            "redistributable": MetadataValue.bool(source.redistributable),
            "catalog_findings": MetadataValue.json(findings),
        },
    )
    foreign = manifest.filter((pl.col("dataset") != dataset) | (pl.col("shard") != shard))
    yield AssetCheckResult(
        check_name="items_belong_to_shard",
        passed=foreign.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        metadata={"items": manifest.height, "foreign": foreign.height},
    )
