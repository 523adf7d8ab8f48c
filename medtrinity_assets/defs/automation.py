"""Schedules and sensors: per-source backfills, and reacting to new or changed source files."""


import json

from dagster import (
    AssetKey,
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

from medtrinity_assets.catalog import item_fingerprint, list_items
from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.jobs import dataset_shard_job, source_manifest_job
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


SCHEDULES = [source_backfill_schedule(s.name) for s in CATALOG.sources]
SENSORS = [source_files_sensor, changed_shards_sensor]
