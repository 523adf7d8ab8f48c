"""Partitions: every per-image asset is split by source dataset x hash shard.

Keys are static, generated from the catalog (sources) and its shard_count, so 90 sources x
64 shards = 5,760 keys per asset: well inside what Dagster handles on SQLite or Postgres.
"""

from __future__ import annotations

from dagster import MultiPartitionKey, MultiPartitionsDefinition, StaticPartitionsDefinition

from medtrinity_assets.catalog import Catalog


def dataset_partitions(catalog: Catalog) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(catalog.names)


def shard_partitions(catalog: Catalog) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(catalog.shard_keys)


def dataset_shard_partitions(catalog: Catalog) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition({"dataset": dataset_partitions(catalog), "shard": shard_partitions(catalog)})


def corpus_partitions(corpus_names: list[str]) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(corpus_names)


def dataset_shard_key(dataset: str, shard: str) -> MultiPartitionKey:
    return MultiPartitionKey({"dataset": dataset, "shard": shard})


def split_key(partition_key: str | MultiPartitionKey) -> tuple[str, str]:
    """(dataset, shard) of a dataset x shard key given as MultiPartitionKey or 'dataset|shard'."""
    if isinstance(partition_key, MultiPartitionKey):
        d = partition_key.keys_by_dimension
        return d["dataset"], d["shard"]
    dataset, _, shard = str(partition_key).partition("|")
    return dataset, shard
