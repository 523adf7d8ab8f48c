"""Jobs: the units `medtrinity demo`, backfills, schedules and sensors launch (partitions come from
the selected assets; each job's assets share one partitioning)."""

import json

from dagster import AssetSelection, define_asset_job

from medtrinity_assets import settings
from medtrinity_assets.defs.context import gpu_run_tags
from medtrinity_assets.defs.names import DATASET_ASSETS, RELEASE_ASSETS, REPORT_ASSETS, SEED_ASSETS


def dataset_run_tags() -> dict[str, str]:
    """Tags of dataset runs: the GPU tag when models run on a GPU (the instance's GPU run limit
    applies); MEDTRINITY_RUN_TAGS (JSON) adds deployment tags, e.g. dagster-k8s/config for GPU nodes."""
    tags = {"medtrinity/stage": "dataset", **gpu_run_tags()}
    extra = settings.env("MEDTRINITY_RUN_TAGS")
    if extra:
        try:
            parsed = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise settings.SettingsError(f"MEDTRINITY_RUN_TAGS is not JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise settings.SettingsError("MEDTRINITY_RUN_TAGS must be a JSON object of tag names to values")
        tags.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()})
    return tags


knowledge_index_job = define_asset_job(
    "knowledge_index_job",
    selection=AssetSelection.assets("knowledge_index"),
    description="Chunk and embed one knowledge corpus into the knowledge store.",
)

retrieval_evaluation_job = define_asset_job(
    "retrieval_evaluation_job",
    selection=AssetSelection.assets("retrieval_evaluation"),
    description="Recall@5 of the knowledge store on its self-built evaluation.",
)

dataset_shard_job = define_asset_job(
    "dataset_shard_job",
    selection=AssetSelection.assets(*DATASET_ASSETS),
    description="source_manifest -> images -> roi_masks -> coarse_captions -> retrieved_knowledge -> caption_batches -> triplets for one (source, shard).",
    tags=dataset_run_tags(),
)

reports_job = define_asset_job(
    "reports_job",
    selection=AssetSelection.assets(*REPORT_ASSETS),
    description="Duplicate images and rejected files across every source.",
)

release_job = define_asset_job(
    "release_job",
    selection=AssetSelection.assets(*RELEASE_ASSETS),
    description="Build, verify and describe one dataset release, then derive its VQA pairs.",
)

seed_finetune_job = define_asset_job(
    "seed_finetune_job",
    selection=AssetSelection.assets(*SEED_ASSETS),
    description="Stage 1 of two-stage captioning: stratified seed subset -> captions by the strong seed model -> LLaVA fine-tuning set.",
)

ALL_JOBS = [knowledge_index_job, retrieval_evaluation_job, dataset_shard_job, reports_job, release_job, seed_finetune_job]
