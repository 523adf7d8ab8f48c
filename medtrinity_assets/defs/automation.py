"""Schedules, sensors and declarative automation: per-source backfills, reacting to new or changed
source files, and keeping built partitions fresh when the knowledge index, the prompt or the model changes.

- `<source>_backfill` schedules: every shard of one source (stopped by default).
- `source_files_sensor`: observes every shard's files (stages.sources.shard_fingerprints), reports
  the changed ones as new `source_files` data versions and runs those shards' chains (one run per shard).
- `dataset_refresh_sensor` (declarative automation, stopped by default): evaluates the
  `refresh_when_upstream_changes` condition of roi_masks ... triplets. A partition that was built
  before is re-run when a dependency was updated outside of its own run (a re-indexed knowledge
  corpus, an image re-materialised alone) or its code version changed (defs/versions.py: the
  stage code it runs and its configuration, e.g. the prompt and the MLLM backend/model for
  caption batches).
"""


import json
from collections.abc import Sequence

from dagster import (
    AssetSelection,
    AssetsDefinition,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.jobs import dataset_run_tags, dataset_shard_job
from medtrinity_assets.defs.sources import changed_observations, latest_data_versions, observed_fingerprints
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
    """`{"<source>|<shard>": fingerprint}` of every source that can be listed (a broken source root
    must not stop the sensor for the others)."""
    out: dict[str, str] = {}
    for name in CATALOG.names:
        try:
            out.update(observed_fingerprints(CATALOG, [name]))
        except Exception:  # noqa: BLE001 - reported by the source's own runs when they list it
            continue
    return out


@sensor(
    name="source_files_sensor",
    job=dataset_shard_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Observes every source shard's files; a shard whose files (or whose source's catalog entry) changed gets a new source_files data version and a run of its chain.",
)
def source_files_sensor(context: SensorEvaluationContext):
    fingerprints = source_fingerprints()
    observations = changed_observations(fingerprints, latest_data_versions(context.instance, list(fingerprints)))
    if not observations:
        return SkipReason("no source shard changed")
    requests = []
    for obs in observations:
        dataset, _, shard = str(obs.partition).partition("|")
        requests += shard_run_requests(dataset, [shard], "files_changed", fingerprints[str(obs.partition)])
    return SensorResult(run_requests=requests, asset_events=observations)


# -- declarative automation -------------------------------------------------------------------

# source_manifest and images are refreshed by source_files_sensor (it knows which shards changed).
REFRESHED_ASSETS = ("roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets")


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


def with_automation(assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    """The assets with the automation condition of REFRESHED_ASSETS attached."""

    def attach(spec):
        if spec.key.to_user_string() in REFRESHED_ASSETS:
            return spec.replace_attributes(automation_condition=refresh_when_upstream_changes())
        return spec

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
SENSORS = [source_files_sensor, dataset_refresh_sensor]
