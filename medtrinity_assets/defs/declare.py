"""How the manifest assets are declared: a polars frame stored by `manifest_io`, its asset checks
given as {check name: description} (each an `AssetCheckSpec` on the asset itself)."""

from collections.abc import Callable

from dagster import AssetCheckSpec, asset

from medtrinity_assets.defs.context import DATASET_SHARD_PARTITIONS


def manifest_asset(checks: dict[str, str], **asset_args) -> Callable:
    """`@asset(io_manager_key="manifest_io", check_specs=...)` with the checks named once, by their description."""

    def decorate(fn: Callable):
        name = asset_args.get("name", fn.__name__)
        specs = [AssetCheckSpec(check, asset=name, description=text) for check, text in checks.items()]
        return asset(io_manager_key="manifest_io", check_specs=specs, **asset_args)(fn)

    return decorate


def shard_asset(checks: dict[str, str], **asset_args) -> Callable:
    """A `manifest_asset` of one dataset shard: partitioned by DATASET_SHARD_PARTITIONS, in the "dataset" group."""
    return manifest_asset(checks, partitions_def=DATASET_SHARD_PARTITIONS, group_name="dataset", **asset_args)
