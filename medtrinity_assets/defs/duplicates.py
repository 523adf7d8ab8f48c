"""image_duplicates: cross-source exact and near-duplicate report over every images partition."""

import polars as pl
from dagster import AllPartitionMapping, AssetIn, MetadataValue, Output, asset

from medtrinity_assets.defs.metadata import table_md
from medtrinity_assets.stages.duplicates import find_duplicates


@asset(
    ins={"images": AssetIn(partition_mapping=AllPartitionMapping())},
    io_manager_key="manifest_io",
    group_name="dataset",
    kinds={"polars"},
    description="Exact (pixel hash) and near (perceptual hash) duplicate images within and across sources; releases drop or keep them.",
)
def image_duplicates(images: pl.DataFrame) -> Output:
    dups = find_duplicates(images)
    cross = dups.filter(pl.col("dataset") != pl.col("duplicate_of_dataset"))
    return Output(
        dups,
        metadata={
            "images": MetadataValue.int(images.height),
            "duplicates": MetadataValue.int(dups.height),
            "exact": MetadataValue.int(int((dups["kind"] == "exact").sum())),
            "near": MetadataValue.int(int((dups["kind"] == "near").sum())),
            "cross_source": MetadataValue.int(cross.height),
            "table": table_md(dups),
        },
    )
