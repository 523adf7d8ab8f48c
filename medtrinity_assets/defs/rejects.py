"""source_rejects: every file a stage could not use, per source, in one place in the UI."""

import polars as pl
from dagster import AllPartitionMapping, AssetCheckResult, AssetCheckSeverity, AssetDep, MetadataValue, Output

from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.declare import manifest_asset
from medtrinity_assets.defs.metadata import table_md
from medtrinity_assets.stages.rejects import REJECTING_STAGES, collect_rejects, rejects_by_source
from medtrinity_resources.storage import MedtrinityStorage


def per_source_tables(rejects: pl.DataFrame, max_rows: int = 20) -> str:
    """Markdown: one section per source that has rejects, its rows as a table."""
    parts = []
    for (source,), rows in rejects.group_by("dataset", maintain_order=True):
        shown = rows.select("shard", "stage", "source_file", "reason", "detail")
        parts.append(f"### {source} ({rows.height})\n\n{table_md(shown, max_rows=max_rows).value}")
    return "\n\n".join(parts) or "_no rejects_"


@manifest_asset(
    {
        "sources_without_rejects": "Warns when a source has files that a stage rejected (unreadable, unsupported, failing a guard); the rows are in rejects_by_source_table.",
    },
    deps=[AssetDep(name, partition_mapping=AllPartitionMapping()) for name in REJECTING_STAGES],
    group_name="dataset",
    kinds={"polars"},
    description="Every rejects row of every stage (file, reason, detail), gathered per source; the shards went on without these files.",
)
def source_rejects(storage: MedtrinityStorage):
    rejects = collect_rejects(storage, CATALOG.names, CATALOG.shard_keys)
    counts = rejects_by_source(rejects, CATALOG.names)
    yield Output(
        rejects,
        metadata={
            "rejects": MetadataValue.int(rejects.height),
            "rejects_by_source": MetadataValue.json(counts),
            "rejects_by_reason": MetadataValue.json(dict(rejects.group_by("reason").len().sort("reason").iter_rows()) if rejects.height else {}),
            "rejects_by_source_table": MetadataValue.md(per_source_tables(rejects)),
        },
    )
    with_rejects = {s: n for s, n in counts.items() if n}
    yield AssetCheckResult(
        check_name="sources_without_rejects",
        passed=not with_rejects,
        severity=AssetCheckSeverity.WARN,
        metadata={"sources_with_rejects": MetadataValue.json(with_rejects), "rejects": rejects.height},
    )
