"""Snapshot of the asset graph, jobs, schedules and sensors, and the automation logic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from dagster import AssetKey, MultiPartitionsDefinition, RunRequest, SkipReason, build_schedule_context, build_sensor_context

REPO = Path(__file__).resolve().parents[1]

EXPECTED_GRAPH = {
    "source_manifest": set(),
    "images": {"source_manifest"},
    "roi_masks": {"images"},
    "coarse_captions": {"images", "roi_masks"},
    "knowledge_index": set(),
    "retrieval_evaluation": {"knowledge_index"},
    "retrieved_knowledge": {"coarse_captions", "knowledge_index"},
    "caption_batches": {"images", "roi_masks", "coarse_captions", "retrieved_knowledge"},
    "triplets": {"images", "roi_masks", "coarse_captions", "caption_batches"},
    "image_duplicates": {"images"},
    "dataset_release": {"triplets", "image_duplicates"},
    "vqa_pairs": {"dataset_release"},
}


def test_asset_graph_snapshot():
    from medtrinity_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    got = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert got == EXPECTED_GRAPH
    for name in ["images", "roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets"]:
        pdef = graph.get(AssetKey(name)).partitions_def
        assert isinstance(pdef, MultiPartitionsDefinition)
        assert [d.name for d in pdef.partitions_defs] == ["dataset", "shard"]
    # every per-image asset carries at least one check
    checks = {c.asset_key.to_user_string() for c in graph.asset_check_keys}
    assert checks >= {"source_manifest", "images", "roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets", "retrieval_evaluation"}
    # GPU work is in the gpu pool
    assert graph.get(AssetKey("caption_batches")).pools == {"gpu"}
    assert {j.name for j in defs.jobs} >= {"knowledge_index_job", "source_manifest_job", "dataset_shard_job", "retrieval_evaluation_job"}


def test_per_source_schedule_requests_every_shard():
    from medtrinity_assets.defs.automation import SCHEDULES
    from medtrinity_assets.defs.context import CATALOG

    assert {s.name for s in SCHEDULES} == {f"{n}_backfill" for n in CATALOG.names}
    sched = next(s for s in SCHEDULES if s.name == "torchxrayvision_cxr_backfill")
    tick = datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)
    from medtrinity_assets.definitions import defs

    ctx = build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    requests = list(sched.evaluate_tick(ctx).run_requests)
    assert len(requests) == CATALOG.shard_count
    assert {str(r.partition_key) for r in requests} == {f"torchxrayvision_cxr|{s}" for s in CATALOG.shard_keys}


def test_source_files_sensor_notices_changes(tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from medtrinity_assets.defs import automation

    instance = DagsterInstance.ephemeral()
    ctx = build_sensor_context(instance=instance)
    first = automation.source_files_sensor(ctx)
    assert {r.partition_key for r in first} == set(automation.CATALOG.names)
    ctx2 = build_sensor_context(instance=instance, cursor=ctx.cursor)
    assert isinstance(automation.source_files_sensor(ctx2), SkipReason)
    # a changed fingerprint for one source requests only that source
    real = automation.source_fingerprints
    monkeypatch.setattr(automation, "source_fingerprints", lambda: {**real(), "stardist_dsb2018": "changed"})
    ctx3 = build_sensor_context(instance=instance, cursor=ctx.cursor)
    out = automation.source_files_sensor(ctx3)
    assert [r.partition_key for r in out] == ["stardist_dsb2018"]
    assert all(isinstance(r, RunRequest) for r in out)


def test_dagster_cli_materialises_one_partition(tmp_path):
    """`dagster asset materialize -m … --select … --partition …` works as a user runs it."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MEDTRINITY_HOME": str(tmp_path / "home")}
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "medtrinity_assets.definitions", "--select", "source_manifest", "--partition", "stardist_dsb2018"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "home" / "dataset" / "manifests" / "source_manifest" / "stardist_dsb2018.parquet").is_file()
