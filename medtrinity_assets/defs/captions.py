"""coarse_captions and caption_batches (the MLLM resource writes the multigranular descriptions)."""


import polars as pl
from dagster import AssetCheckResult, AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field

from medtrinity_assets.defs.context import gpu_pool
from medtrinity_assets.defs.declare import shard_asset
from medtrinity_assets.defs.metadata import generation_totals, throughput
from medtrinity_assets.generation import GenerationSettings
from medtrinity_assets.stages.captions import build_coarse_captions, caption_shard
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.storage import MedtrinityStorage


@shard_asset(
    {"coarse_captions_not_empty": "Every ROI record has a non-empty coarse caption."},
    kinds={"polars"},
    description="Coarse caption per ROI record from metadata (modality, organs, labels) and its knowledge query.",
)
def coarse_captions(images: pl.DataFrame, roi_masks: pl.DataFrame):
    df = build_coarse_captions(images, roi_masks)
    yield Output(
        df,
        metadata={"rows": MetadataValue.int(df.height), "sample": MetadataValue.text(df["coarse_caption"][0] if df.height else "")},
    )
    empty = df.filter(pl.col("coarse_caption").str.strip_chars() == "")
    yield AssetCheckResult(check_name="coarse_captions_not_empty", passed=empty.is_empty(), metadata={"empty": empty.height})


class CaptionLoopConfig(Config):
    """Loop policy of a caption asset (the model's own settings are on its MLLM resource)."""

    max_retries: int = Field(2, ge=0, description="re-asks of answers with refusals, forbidden phrases, missing sections, too little text")
    min_words: int = Field(25, ge=1)
    max_words: int = Field(400, ge=1)
    use_cache: bool = Field(True, description="look model calls up in (and store them to) the content-addressed call cache")
    gpu_hour_usd: float = Field(0.0, ge=0.0, description="price of one GPU-hour, for usd_per_1k in the metadata (0: not shown)")

    def generation_settings(self) -> GenerationSettings:
        return GenerationSettings(max_retries=self.max_retries, min_words=self.min_words, max_words=self.max_words)


class CaptionBatchesConfig(CaptionLoopConfig):
    """Loop policy of caption_batches (the model's own settings are on the `mllm` resource)."""


@shard_asset(
    {
        "captions_pass_checks": "Captions name the right modality and organ, agree with the ROI position, contain no forbidden phrase.",
    },
    kinds={"polars"},
    pool=gpu_pool(),
    description="Multigranular description per ROI from the MLLM resource, with prompt version/hash, passages and settings.",
)
def caption_batches(
    context: AssetExecutionContext,
    config: CaptionBatchesConfig,
    images: pl.DataFrame,
    roi_masks: pl.DataFrame,
    coarse_captions: pl.DataFrame,
    retrieved_knowledge: pl.DataFrame,
    storage: MedtrinityStorage,
    mllm: MLLMResource,
):
    result = caption_shard(images, roi_masks, coarse_captions, retrieved_knowledge, storage, mllm, config.generation_settings(), config.use_cache)
    df = result.captions
    samples = df.head(3).select("roi_id", "caption").to_dicts() if df.height else []
    yield Output(
        df,
        metadata={
            "captions": MetadataValue.int(df.height),
            "flagged": MetadataValue.int(result.n_flagged),
            "backend": MetadataValue.text(mllm.backend),
            "prompt_version": MetadataValue.text(df["prompt_version"][0] if df.height else ""),
            "sample_captions": MetadataValue.md("\n\n".join(f"**{s['roi_id']}**: {s['caption']}" for s in samples) or "_none_"),
            **generation_totals(df, config.gpu_hour_usd),
            **throughput(df.height, result.seconds, "captions"),
        },
    )
    flagged = df.filter(pl.col("problems").list.len() > 0)
    problems = flagged.explode("problems").group_by("problems").len() if flagged.height else pl.DataFrame()
    yield AssetCheckResult(
        check_name="captions_pass_checks",
        passed=flagged.is_empty(),
        metadata={"flagged": flagged.height, "problems": MetadataValue.json(dict(problems.iter_rows()) if flagged.height else {})},
        description="Captions name the right modality and organ, agree with the ROI position, contain no forbidden phrase.",
    )
