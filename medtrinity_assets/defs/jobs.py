"""Jobs: one per partitions definition (Dagster jobs target a single partitioning)."""


import json

from dagster import AssetSelection, define_asset_job

from medtrinity_assets import settings

from medtrinity_assets.defs.context import CORPUS_PARTITIONS, DATASET_PARTITIONS, DATASET_SHARD_PARTITIONS, GPU_TAGS



def dataset_run_tags() -> dict[str, str]:
    """Tags of dataset runs: GPU runs are tagged so the instance's GPU run limit applies;
    MEDTRINITY_RUN_TAGS (JSON) adds deployment tags, e.g. dagster-k8s/config for GPU nodes."""
    tags = {"medtrinity/stage": "dataset"}
    if settings.env("MEDTRINITY_DEVICE", "cpu") in ("cuda", "auto"):
        tags.update(GPU_TAGS)
    extra = settings.env("MEDTRINITY_RUN_TAGS")
    if extra:
        tags.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(extra).items()})
    return tags


DATASET_ASSETS = ["images", "roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets"]

knowledge_index_job = define_asset_job(
    "knowledge_index_job",
    selection=AssetSelection.assets("knowledge_index"),
    partitions_def=CORPUS_PARTITIONS,
    description="Chunk and embed one knowledge corpus into the knowledge store.",
)

retrieval_evaluation_job = define_asset_job(
    "retrieval_evaluation_job",
    selection=AssetSelection.assets("retrieval_evaluation"),
    description="Recall@5 of the knowledge store on its self-built evaluation.",
)

source_manifest_job = define_asset_job(
    "source_manifest_job",
    selection=AssetSelection.assets("source_manifest"),
    partitions_def=DATASET_PARTITIONS,
    description="List the items of one source (with shards and change fingerprints).",
)

dataset_shard_job = define_asset_job(
    "dataset_shard_job",
    selection=AssetSelection.assets(*DATASET_ASSETS),
    partitions_def=DATASET_SHARD_PARTITIONS,
    description="images -> roi_masks -> coarse_captions -> retrieved_knowledge -> caption_batches -> triplets for one (source, shard).",
    tags=dataset_run_tags(),
)

image_duplicates_job = define_asset_job(
    "image_duplicates_job",
    selection=AssetSelection.assets("image_duplicates"),
    description="Exact and near-duplicate images within and across every source.",
)

ALL_JOBS = [knowledge_index_job, retrieval_evaluation_job, source_manifest_job, dataset_shard_job, image_duplicates_job]
