"""Schedules, sensors and declarative automation: per-source backfills, reacting to new or changed
source files, and keeping built partitions fresh when the knowledge index, the prompt or the model changes.

- `<source>_backfill` schedules: every shard of one source (stopped by default).
- `source_files_sensor` -> `changed_shards_sensor`: a source's files changed -> its manifest is
  refreshed -> only the shards whose items changed are re-run (the whole chain, one run per shard).
- `dataset_refresh_sensor` (declarative automation, stopped by default): evaluates the
  `refresh_when_upstream_changes` condition of roi_masks ... triplets. A partition that was built
  before is re-run when a dependency was updated outside of its own run (a re-indexed knowledge
  corpus, an image re-materialised alone) or its code version changed. caption_batches' code version
  names the prompt version and the MLLM backend/model, so changing either marks caption batches
  (and, through them, triplets) stale in the UI -- never images, ROIs or retrieval.
"""


import json
from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetSelection,
    AssetsDefinition,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    schedule,
    sensor,
)

from medtrinity_assets import settings
from medtrinity_assets.catalog import item_fingerprint, list_items
from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.jobs import dataset_run_tags, dataset_shard_job, source_manifest_job
from medtrinity_assets.partitions import dataset_shard_key


def shard_run_requests(dataset: str, shards: list[str], reason: str, key_suffix: str) -> list[RunRequest]:
    """One run per (dataset, shard); run keys make a tick idempotent."""
    return [
        RunRequest(
            run_key=f"{dataset}|{shard}|{key_suffix}",
            partition_key=dataset_shard_key(dataset, shard),
            tags={"medtrinity/source": dataset, "medtrinity/trigger": reason},
        )
        for shard in shards
    ]


def source_backfill_schedule(source_name: str, cron: str = "0 3 * * 0"):
    """Weekly per-source backfill of all its shards (stopped by default; start it in the UI)."""

    @schedule(
        name=f"{source_name}_backfill",
        cron_schedule=cron,
        job=dataset_shard_job,
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Re-run every shard of source '{source_name}'.",
    )
    def _schedule(context: ScheduleEvaluationContext):
        tick = context.scheduled_execution_time.isoformat()
        return shard_run_requests(source_name, CATALOG.shard_keys, "schedule", tick)

    return _schedule


def source_fingerprints() -> dict[str, str]:
    """One digest per source over its items' size/mtime fingerprints."""
    import hashlib

    out = {}
    for source in CATALOG.sources:
        try:
            items = list_items(CATALOG, source)
        except Exception as exc:  # a broken source root must not stop the sensor for the others
            out[source.name] = f"error:{exc}"
            continue
        h = hashlib.sha1()
        for it in items:
            h.update(f"{it.item_id}:{item_fingerprint(it)}".encode())
        out[source.name] = h.hexdigest()
    return out


@sensor(
    name="source_files_sensor",
    job=source_manifest_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Notices new, removed or changed files under a source root and refreshes that source's manifest.",
)
def source_files_sensor(context: SensorEvaluationContext):
    previous = json.loads(context.cursor) if context.cursor else {}
    current = source_fingerprints()
    changed = [name for name, digest in current.items() if previous.get(name) != digest and not digest.startswith("error:")]
    context.update_cursor(json.dumps(current))
    if not changed:
        return SkipReason("no source changed")
    return [RunRequest(run_key=f"{name}:{current[name]}", partition_key=name, tags={"medtrinity/trigger": "files_changed"}) for name in changed]


@asset_sensor(
    asset_key=AssetKey("source_manifest"),
    name="changed_shards_sensor",
    job=dataset_shard_job,
    default_status=DefaultSensorStatus.STOPPED,
    description="After a source manifest is refreshed, requests the shards whose items changed.",
)
def changed_shards_sensor(context: SensorEvaluationContext, asset_event: EventLogEntry):
    mat = asset_event.asset_materialization
    if mat is None or mat.partition is None:
        return SkipReason("materialisation without a partition")
    changed = mat.metadata.get("changed_shards")
    shards = list(changed.value) if changed is not None else []
    if not shards:
        return SkipReason(f"no changed shard in {mat.partition}")
    return shard_run_requests(mat.partition, shards, "files_changed", str(asset_event.storage_id if hasattr(asset_event, "storage_id") else asset_event.timestamp))


# -- declarative automation -------------------------------------------------------------------

# images is refreshed by changed_shards_sensor only (a manifest refresh must not re-ingest every shard).
REFRESHED_ASSETS = ("roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets")


def caption_code_version(backend: str | None = None, model: str | None = None) -> str:
    """Code version of caption_batches: prompt version + MLLM backend + model (or composer version)."""
    from medtrinity_assets.captions.composer import COMPOSER_VERSION
    from medtrinity_assets.captions.prompt import PROMPT_VERSION

    backend = backend if backend is not None else settings.env("MEDTRINITY_MLLM_BACKEND", "grounded_composer")
    model = model if model is not None else settings.env("MEDTRINITY_MLLM_MODEL")
    return f"{PROMPT_VERSION}|{backend}:{model or COMPOSER_VERSION}"


def refresh_when_upstream_changes() -> AutomationCondition:
    """Re-run a partition that exists when a dependency updated without it (Dagster ignores updates made
    by a run that also materialised this asset) or its code version changed; never a missing partition
    (new sources and shards come from the sensors, schedules and backfills), never while a dependency
    is missing or in progress, never twice for the same change."""
    return (
        (AutomationCondition.any_deps_updated() | AutomationCondition.code_version_changed()).since_last_handled()
        & ~AutomationCondition.missing()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("refresh_when_upstream_changes")


def with_automation(assets: Sequence[AssetsDefinition], caption_version: str | None = None) -> list[AssetsDefinition]:
    """The assets with their automation conditions and caption_batches' code version attached."""
    version = caption_version or caption_code_version()

    def attach(spec):
        name = spec.key.to_user_string()
        attrs = {}
        if name in REFRESHED_ASSETS:
            attrs["automation_condition"] = refresh_when_upstream_changes()
        if name == "caption_batches":
            attrs["code_version"] = version
        return spec.replace_attributes(**attrs) if attrs else spec

    def targeted(a) -> bool:
        return isinstance(a, AssetsDefinition) and any(k.to_user_string() in REFRESHED_ASSETS for k in a.keys)

    return [a.map_asset_specs(attach) if targeted(a) else a for a in assets]


dataset_refresh_sensor = AutomationConditionSensorDefinition(
    "dataset_refresh_sensor",
    target=AssetSelection.assets(*REFRESHED_ASSETS),
    default_status=DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    run_tags={**dataset_run_tags(), "medtrinity/trigger": "automation"},
    description="Re-runs built dataset partitions when the knowledge index, an upstream partition, the prompt or the MLLM model changes.",
)


SCHEDULES = [source_backfill_schedule(s.name) for s in CATALOG.sources]
SENSORS = [source_files_sensor, changed_shards_sensor, dataset_refresh_sensor]
