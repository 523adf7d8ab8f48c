"""The paper's two-stage captioning, stage 1: seed_subset -> seed_captions -> seed_finetune_set.

A stratified seed subset of every built partition is described by a strong served model (the
`seed_mllm` resource, configured apart from the default captioner `mllm`), and the checked captions
are exported as a LLaVA conversation fine-tuning set with the captioner's own prompt. Stage 2 is
caption_batches with the fine-tuned model as its backend (README: "Two-stage captioning").
The work lives in stages/seed.py, stages/seed_captions.py and export/finetune.py.
"""

import polars as pl
from dagster import AllPartitionMapping, AssetCheckResult, AssetDep, Config, MetadataValue, Output
from pydantic import Field

from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.declare import manifest_asset
from medtrinity_assets.defs.captions import CaptionLoopConfig
from medtrinity_assets.defs.metadata import generation_totals, table_md, throughput
from medtrinity_assets.export.finetune import build_finetune_set, human_prompt
from medtrinity_assets.captions import prompt_hash
from medtrinity_assets.stages.seed import SeedSampling, build_seed_subset
from medtrinity_assets.stages.seed_captions import caption_seed
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.storage import MedtrinityStorage


class SeedSubsetConfig(Config):
    """Stratified sampling of the seed subset (strata: source, modality, label)."""

    size: int = Field(2000, ge=1, description="records in the seed subset (raised when the per-stratum floors need more)")
    min_per_stratum: int = Field(5, ge=1, description="records per stratum, or all of a smaller stratum")
    seed: int = Field(0, description="sampling seed: the same manifests and settings give the same subset")


@manifest_asset(
    {
        "seed_covers_every_stratum": "Every (source, modality, label) stratum of the built partitions has a seed record.",
    },
    deps=[AssetDep(name, partition_mapping=AllPartitionMapping()) for name in ("images", "coarse_captions")],
    group_name="seed",
    kinds={"polars"},
    description="Deterministic stratified sample (by source, modality, label) of the ROI records of every built dataset partition, for the strong seed model.",
)
def seed_subset(config: SeedSubsetConfig, storage: MedtrinityStorage):
    sampling = SeedSampling(size=config.size, min_per_stratum=config.min_per_stratum, seed=config.seed)
    sample = build_seed_subset(storage, sampling, datasets=list(CATALOG.names))
    strata = sample.strata
    covered = strata.filter(pl.col("selected") > 0).height
    coverage = covered / strata.height if strata.height else 0.0
    yield Output(
        sample.subset,
        metadata={
            "selected": MetadataValue.int(sample.subset.height),
            "records_available": MetadataValue.int(sample.available),
            "strata": MetadataValue.int(strata.height),
            "strata_covered": MetadataValue.int(covered),
            "coverage": MetadataValue.float(round(coverage, 4)),
            "size_raised_for_coverage": MetadataValue.bool(sample.size_raised),
            "per_source": MetadataValue.json(dict(sample.subset.group_by("dataset").len().sort("dataset").iter_rows()) if sample.subset.height else {}),
            "per_modality": MetadataValue.json(dict(sample.subset.group_by("modality").len().sort("modality").iter_rows()) if sample.subset.height else {}),
            "strata_counts": table_md(strata.sort("available", descending=True), max_rows=50),
        },
    )
    yield AssetCheckResult(
        check_name="seed_covers_every_stratum",
        passed=strata.height > 0 and covered == strata.height,
        metadata={"strata": strata.height, "covered": covered, "uncovered": table_md(strata.filter(pl.col("selected") == 0))},
    )


class SeedCaptionsConfig(CaptionLoopConfig):
    """Loop policy of seed_captions (the seed model's own settings are on the `seed_mllm` resource)."""


@manifest_asset(
    {
        "seed_captions_pass_checks": "Seed captions pass the caption checks; failing ones are quarantined with their reasons (never exported).",
    },
    deps=[AssetDep(name, partition_mapping=AllPartitionMapping()) for name in ("images", "roi_masks", "retrieved_knowledge")],
    group_name="seed",
    kinds={"polars"},
    description="The seed subset described by the strong seed model (`seed_mllm`) with caption_batches' prompt, call cache and checks; failures quarantined with reasons.",
)
def seed_captions(config: SeedCaptionsConfig, seed_subset: pl.DataFrame, storage: MedtrinityStorage, seed_mllm: MLLMResource):
    result = caption_seed(seed_subset, storage, seed_mllm, config.generation_settings(), config.use_cache)
    df = result.captions
    quarantined = df.filter(pl.col("quarantined"))
    reasons = quarantined.explode("quarantine_reasons").group_by("quarantine_reasons").len().sort("quarantine_reasons") if quarantined.height else None
    yield Output(
        df,
        metadata={
            "captions": MetadataValue.int(df.height),
            "quarantined": MetadataValue.int(quarantined.height),
            "backend": MetadataValue.text(seed_mllm.backend),
            "seed_model": MetadataValue.text(seed_mllm.model_name or seed_mllm.model_path),
            "prompt_version": MetadataValue.text(df["prompt_version"][0] if df.height else ""),
            **generation_totals(df, config.gpu_hour_usd),
            **throughput(df.height, result.seconds, "captions"),
        },
    )
    yield AssetCheckResult(
        check_name="seed_captions_pass_checks",
        passed=quarantined.is_empty(),
        metadata={"quarantined": quarantined.height, "per_reason": MetadataValue.json(dict(reasons.iter_rows()) if reasons is not None else {})},
    )


@manifest_asset(
    {
        "finetune_prompts_are_the_captioners": "Every exported conversation's prompt is the caption prompt of its record (its hash is the record's prompt_hash) under one prompt version.",
    },
    group_name="seed",
    kinds={"json", "polars"},
    description="The checked seed captions as a LLaVA conversation fine-tuning set (the captioner's prompt, overlay images, provenance per row) under finetune/seed_llava/; quarantined records excluded and counted.",
)
def seed_finetune_set(seed_captions: pl.DataFrame, storage: MedtrinityStorage):
    export = build_finetune_set(storage, seed_captions, {s.name: (s.licence, s.redistributable) for s in CATALOG.sources})
    yield Output(
        export.rows,
        metadata={
            "conversations": MetadataValue.int(len(export.entries)),
            "quarantined_excluded": MetadataValue.int(export.n_excluded),
            "excluded_per_reason": MetadataValue.json(export.excluded),
            "prompt_version": MetadataValue.text(", ".join(export.prompt_versions)),
            "seed_models": MetadataValue.json(sorted(set(export.rows["model"].to_list()))),
            "export_uri": MetadataValue.path(export.uri),
            "sample": MetadataValue.md(export.entries[0]["conversations"][1]["value"] if export.entries else "_none_"),
        },
    )
    by_id = dict(zip(export.rows["id"].to_list(), export.rows["prompt_hash"].to_list()))
    mismatched = [e["id"] for e in export.entries if prompt_hash(human_prompt(e)) != by_id[e["id"]]]
    yield AssetCheckResult(
        check_name="finetune_prompts_are_the_captioners",
        passed=not mismatched and len(export.prompt_versions) <= 1,
        metadata={"mismatched": MetadataValue.json(mismatched[:50]), "prompt_versions": MetadataValue.json(export.prompt_versions)},
    )
