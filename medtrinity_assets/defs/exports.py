"""dataset_release and vqa_pairs: one partition per release defined in data/releases.yaml.

The work lives in medtrinity_assets.export (build_release, build_vqa); these assets wire it to
the storage and MLLM resources and report counts, the card and the statistics figure.
"""


import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    Output,
    StaticPartitionsDefinition,
    asset,
)

from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.declare import manifest_asset
from medtrinity_assets.defs.metadata import table_md
from medtrinity_assets.export import build_release, build_vqa, load_releases, read_release_records
from medtrinity_assets.stages.common import thumbnail_markdown
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.storage import MedtrinityStorage

RELEASES = load_releases()
RELEASE_PARTITIONS = StaticPartitionsDefinition(sorted(RELEASES))


class ReleaseRunConfig(Config):
    """Run configuration of dataset_release."""

    benchmark_dirs: dict[str, str] = {}  # more benchmark image folders for this run: name -> folder


def card_preview(card: str, max_chars: int = 6000) -> str:
    """The card without its YAML front matter, cut before the composition tables."""
    body = card.split("---\n", 2)[-1] if card.startswith("---\n") else card
    head = body.split("## Composition", 1)[0]
    return head[:max_chars]


@asset(
    partitions_def=RELEASE_PARTITIONS,
    deps=[AssetDep("triplets", partition_mapping=AllPartitionMapping()), AssetDep("image_duplicates")],
    group_name="release",
    kinds={"parquet", "json", "html"},
    check_specs=[
        AssetCheckSpec(
            "release_reads_back",
            asset="dataset_release",
            description="Every file matches checksums.sha256; Parquet, LLaVA and WebDataset hold the same records; every shard and image reads back.",
        ),
        AssetCheckSpec("splits_disjoint_by_group", asset="dataset_release", description="No patient (or volume/item) group has records in two splits."),
        AssetCheckSpec(
            "no_benchmark_duplicates",
            asset="dataset_release",
            description="No released record is a near-duplicate of a benchmark image (with action 'flag' they stay in, flagged).",
        ),
    ],
    description=(
        "A dataset release (data/releases.yaml): Parquet with embedded images (full and minimal views, HF `Image`), LLaVA JSON and verified WebDataset shards (one sample per image), patient-level "
        "splits, benchmark decontamination, dataset card with statistics figure, HTML gallery; under releases/<name>/."
    ),
)
def dataset_release(context: AssetExecutionContext, config: ReleaseRunConfig, storage: MedtrinityStorage):
    release = load_releases()[context.partition_key]
    if config.benchmark_dirs:
        release = release.with_benchmarks(config.benchmark_dirs)
    result = build_release(storage, release, CATALOG)
    stats = result.statistics
    v = result.verification
    context.log.info(f"release {release.name}: {stats.records} records at {result.uri} ({'verified' if v.ok else 'VERIFICATION FAILED'})")
    yield MaterializeResult(
        metadata={
            "records": MetadataValue.int(stats.records),
            "images": MetadataValue.int(stats.images),
            "rois": MetadataValue.int(stats.rois),
            "per_split": MetadataValue.json(stats.splits),
            "sources": MetadataValue.json({s.name: f"{s.status} ({s.records})" for s in result.selection.sources}),
            "modalities": MetadataValue.json(dict(stats.by_modality)),
            "quarantined_excluded": MetadataValue.int(0 if release.include_quarantined else result.selection.quarantine["quarantined"]),
            "decontamination": MetadataValue.json(result.decontamination),
            "webdataset_shards": MetadataValue.int(len(result.shards)),
            "bytes": MetadataValue.int(result.total_bytes),
            "input_fingerprint": MetadataValue.text(result.input_fingerprint),
            "release_uri": MetadataValue.path(result.uri),
            "card": MetadataValue.md(card_preview(result.card_markdown)),
            "statistics_figure": MetadataValue.md(thumbnail_markdown(result.figure_png, max_side=900, alt="release statistics")),
        }
    )
    yield AssetCheckResult(
        check_name="release_reads_back",
        passed=v.ok,
        metadata={
            "files_checked": v.files_checked,
            "records": v.records,
            "llava_entries": v.llava_entries,
            "shards": v.wds.n_shards if v.wds else 0,
            "samples": v.wds.n_samples if v.wds else 0,
            "records_in_shards": v.wds.n_records if v.wds else 0,
            "images_decoded": v.wds.n_images_decoded if v.wds else 0,
            "problems": MetadataValue.json(v.problems[:50]),
        },
        description="Every file matches checksums.sha256; Parquet, LLaVA and WebDataset hold the same records; every shard and image reads back.",
    )
    yield AssetCheckResult(
        check_name="splits_disjoint_by_group",
        passed=not result.split_conflicts,
        metadata={"groups": stats.groups, "groups_in_several_splits": MetadataValue.json(result.split_conflicts[:50])},
        description="No patient (or volume/item) group has records in two splits.",
    )
    flagged = result.records.filter(pl.col("benchmark_match").is_not_null())
    yield AssetCheckResult(
        check_name="no_benchmark_duplicates",
        passed=flagged.is_empty(),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "benchmarks": MetadataValue.json(sorted(result.decontamination["benchmarks"])),
            "flagged_records": flagged.height,
            "flagged": table_md(flagged.select("sample_id", "benchmark_match", "benchmark_distance")),
        },
        description="No released record is a near-duplicate of a benchmark image (with action 'flag' they stay in, flagged).",
    )


@manifest_asset(
    {
        "vqa_pairs_consistent": "Every pair belongs to a released record and its split; closed answers are Yes/No; files match their checksums.",
    },
    partitions_def=RELEASE_PARTITIONS,
    deps=[dataset_release],
    group_name="release",
    kinds={"polars", "json"},
    description="Closed and open question–answer pairs (modality, organ, location, finding, size) derived from the release's captions; LLaVA JSON under releases/<name>/vqa/.",
)
def vqa_pairs(context: AssetExecutionContext, storage: MedtrinityStorage, mllm: MLLMResource):
    release = load_releases()[context.partition_key]
    result = build_vqa(storage, release, mllm)
    pairs = result.pairs
    sample = pairs.head(8).select("question", "answer", "category")
    yield Output(
        pairs,
        metadata={
            "pairs": MetadataValue.int(pairs.height),
            "summary": MetadataValue.json(result.summary),
            "generation": MetadataValue.json(result.generation),
            "vqa_uri": MetadataValue.path(result.uri),
            "sample": table_md(sample),
        },
    )
    records = read_release_records(storage, release.name).select("sample_id", pl.col("split").alias("record_split"))
    joined = pairs.join(records, on="sample_id", how="left")
    wrong_split = joined.filter(pl.col("record_split").is_null() | (pl.col("record_split") != pl.col("split"))).height
    bad_closed = pairs.filter((pl.col("answer_type") == "closed") & ~pl.col("answer").is_in(["Yes", "No"])).height
    yield AssetCheckResult(
        check_name="vqa_pairs_consistent",
        passed=not (wrong_split or bad_closed or result.problems) and pairs.height > 0,
        metadata={"pairs": pairs.height, "outside_record_split": wrong_split, "closed_not_yes_no": bad_closed, "file_problems": MetadataValue.json(result.problems[:20])},
        description="Every pair belongs to a released record and its split; closed answers are Yes/No; files match their checksums.",
    )
