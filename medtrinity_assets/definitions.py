"""The medtrinity code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

from dagster import Definitions

from medtrinity_assets import settings
from medtrinity_assets.defs import automation, captions, duplicates, exports, images, jobs, knowledge, rois, sources, triplets
from medtrinity_resources.embedder import SentenceEmbedder
from medtrinity_resources.experts import ExpertModels, load_expert_config
from medtrinity_resources.io_manager import ParquetManifestIOManager
from medtrinity_resources.knowledge_store import KnowledgeStore
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.storage import MedtrinityStorage


def build_resources() -> dict:
    """Local, offline defaults; every path/endpoint can be switched by environment (see settings)."""
    storage = MedtrinityStorage(root=settings.storage_root(), endpoint_url=settings.env("MEDTRINITY_S3_ENDPOINT_URL"))
    return {
        "storage": storage,
        "manifest_io": ParquetManifestIOManager(storage=storage),
        "embedder": SentenceEmbedder(
            model_path=settings.env("MEDTRINITY_EMBEDDER_MODEL"),
            device=settings.env("MEDTRINITY_DEVICE", "cpu"),
            dtype=settings.embedder_dtype(settings.env("MEDTRINITY_DEVICE", "cpu")),
        ),
        "knowledge_store": KnowledgeStore(persist_dir=settings.knowledge_dir(), url=settings.env("MEDTRINITY_CHROMA_URL")),
        "mllm": MLLMResource(
            backend=settings.env("MEDTRINITY_MLLM_BACKEND", "grounded_composer"),
            model_path=settings.env("MEDTRINITY_MLLM_MODEL") if settings.env("MEDTRINITY_MLLM_BACKEND") == "transformers" else "",
            model_name=settings.env("MEDTRINITY_MLLM_MODEL") if settings.env("MEDTRINITY_MLLM_BACKEND") == "openai" else "",
            endpoint_url=settings.env("MEDTRINITY_MLLM_ENDPOINT"),
            device=settings.env("MEDTRINITY_DEVICE", "cpu"),
        ),
        "experts": load_expert_config(settings.env("MEDTRINITY_EXPERTS") or None, default_device=settings.env("MEDTRINITY_DEVICE", "cpu")),
    }


ASSETS = [
    sources.source_manifest,
    images.images,
    rois.roi_masks,
    captions.coarse_captions,
    knowledge.knowledge_index,
    knowledge.retrieval_evaluation,
    knowledge.retrieved_knowledge,
    captions.caption_batches,
    triplets.triplets,
    duplicates.image_duplicates,
    exports.dataset_release,
    exports.vqa_pairs,
]

defs = Definitions(
    assets=automation.with_automation(ASSETS),
    jobs=jobs.ALL_JOBS + exports.JOBS,
    schedules=automation.SCHEDULES,
    sensors=automation.SENSORS,
    resources=build_resources(),
)
