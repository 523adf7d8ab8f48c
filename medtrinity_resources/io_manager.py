"""IO manager for manifests: one Parquet file per partition, written through the storage resource.

Only small tabular manifests (polars DataFrames holding URIs) pass through here; images,
masks and overlays are written by the assets themselves via `MedtrinityStorage`.
Layout: ``manifests/<asset>/<dataset>/<shard>.parquet`` for dataset x shard partitions,
``manifests/<asset>/<key>.parquet`` for single-dimension partitions.
"""


import polars as pl
from dagster import ConfigurableIOManager, InputContext, MetadataValue, MultiPartitionKey, MultiPartitionsDefinition, OutputContext, ResourceDependency

from medtrinity_resources.storage import MedtrinityStorage


def partition_path(partition_key: "str | MultiPartitionKey") -> str:
    if isinstance(partition_key, MultiPartitionKey):
        dims = partition_key.keys_by_dimension
        return f"{dims['dataset']}/{dims['shard']}"
    return str(partition_key)


def manifest_key(asset_name: str, partition_key: "str | MultiPartitionKey | None") -> str:
    suffix = partition_path(partition_key) if partition_key is not None else "all"
    return f"manifests/{asset_name}/{suffix}.parquet"


class ParquetManifestIOManager(ConfigurableIOManager):
    storage: ResourceDependency[MedtrinityStorage]

    def handle_output(self, context: OutputContext, obj: "pl.DataFrame | None") -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} must return a polars DataFrame, got {type(obj).__name__}")
        key = manifest_key(context.asset_key.path[-1], context.partition_key if context.has_partition_key else None)
        self.storage.write_parquet(key, obj)
        context.add_output_metadata({"manifest_uri": MetadataValue.path(self.storage.uri(key)), "manifest_rows": len(obj)})

    def load_input(self, context: InputContext) -> pl.DataFrame:
        name = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            return self.storage.read_parquet(manifest_key(name, None))
        keys = context.asset_partition_keys
        frames = []
        for pk in keys:
            pdef = context.asset_partitions_def
            mk = pdef.get_partition_key_from_str(pk) if isinstance(pdef, MultiPartitionsDefinition) else pk
            key = manifest_key(name, mk)
            if self.storage.exists(key):
                frames.append(self.storage.read_parquet(key))
        if not frames:
            raise FileNotFoundError(f"no manifest for {name} partitions {keys}: materialise it first")
        return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
