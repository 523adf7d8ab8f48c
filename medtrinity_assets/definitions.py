"""The medtrinity code location: assets, checks, jobs, schedules, sensors and the resource set of
the deployment (MEDTRINITY_DEPLOYMENT, see defs/resources.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import AssetsDefinition, AssetSpec, Definitions, in_process_executor

from medtrinity_assets.defs import automation, captions, duplicates, exports, images, jobs, knowledge, rejects, rois, seed, sources, triplets
from medtrinity_assets.defs.resources import build_resources
from medtrinity_assets.defs.versions import code_version, resource_modules_of

__all__ = ["ASSETS", "build_resources", "defs", "versioned"]

ASSETS: list[AssetsDefinition | AssetSpec] = [
    sources.source_files,
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
    rejects.source_rejects,
    exports.dataset_release,
    exports.vqa_pairs,
    seed.seed_subset,
    seed.seed_captions,
    seed.seed_finetune_set,
]


def versioned(
    assets: Sequence[AssetsDefinition | AssetSpec], resources: Mapping[str, object], caption: str | None = None
) -> list[AssetsDefinition | AssetSpec]:
    """Every materialisable asset with its code version (defs/versions.py); `caption` overrides the
    MLLM configuration part of caption_batches' version (to ask what a model change would affect)."""

    def attach(a: AssetsDefinition):
        modules = resource_modules_of(a.required_resource_keys, resources)
        return a.map_asset_specs(
            lambda spec: spec.replace_attributes(code_version=code_version(spec.key.to_user_string(), modules, caption))
        )

    return [attach(a) if isinstance(a, AssetsDefinition) and a.is_materializable else a for a in assets]


def build_definitions(resources: Mapping[str, object] | None = None, caption: str | None = None) -> Definitions:
    resources = dict(resources if resources is not None else build_resources())
    return Definitions(
        assets=automation.with_automation(versioned(ASSETS, resources, caption)),
        jobs=jobs.ALL_JOBS,
        schedules=automation.SCHEDULES,
        sensors=automation.SENSORS,
        resources=resources,
        executor=in_process_executor,  # a run's steps are sequential: one process per run, models loaded once
    )


defs = build_definitions()
