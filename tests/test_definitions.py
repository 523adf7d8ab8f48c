"""The asset graph (snapshot with code versions), jobs, schedules, sensors, settings and resource sets.

The snapshot `tests/snapshots/asset_graph.json` holds every asset's key, dependencies, partitions,
code version, pool and checks (name, description), and the jobs, schedules and sensors. When the
graph changes on purpose (a new asset, a changed stage module: its code version moves), regenerate
it and review the diff:

    MEDTRINITY_UPDATE_SNAPSHOT=1 python -m pytest -q tests/test_definitions.py -k snapshot
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, RunRequest, SensorResult, SkipReason, build_schedule_context, build_sensor_context

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        partitions = None
        if pdef is not None:
            dims = getattr(pdef, "partitions_defs", None)
            partitions = (
                {d.name: d.partitions_def.get_partition_keys() for d in dims} if dims else {"keys": pdef.get_partition_keys()}
            )
        checks = {}
        for check_key in sorted(graph.asset_check_keys, key=lambda c: c.name):
            if check_key.asset_key == key:
                checks[check_key.name] = graph.get_check_spec(check_key).description
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": partitions,
            "code_version": node.code_version,
            "pools": sorted(node.pools or []),
            "group": node.group_name,
            "checks": checks,
        }
    return {
        "assets": assets,
        "jobs": {j.name: sorted(k.to_user_string() for k in defs.resolve_job_def(j.name).asset_layer.selected_asset_keys) for j in defs.jobs},
        "schedules": sorted(s.name for s in defs.schedules),
        "sensors": sorted(s.name for s in defs.sensors),
    }


def test_asset_graph_snapshot():
    from medtrinity_assets.definitions import defs

    got = graph_snapshot(defs)
    if os.environ.get("MEDTRINITY_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"snapshot written to {SNAPSHOT}")
    expected = json.loads(SNAPSHOT.read_text())
    for name in sorted(set(expected["assets"]) | set(got["assets"])):
        assert got["assets"].get(name) == expected["assets"].get(name), (
            f"asset {name} differs from {SNAPSHOT.name} (regenerate as the module docstring says if intended)"
        )
    assert {k: v for k, v in got.items() if k != "assets"} == {k: v for k, v in expected.items() if k != "assets"}


def test_every_asset_is_versioned_and_every_check_described():
    from medtrinity_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert re.fullmatch(r"[0-9a-f]{12}", node.code_version or ""), key
        else:
            assert key == AssetKey("source_files") and node.is_external
    for check_key in graph.asset_check_keys:
        assert (graph.get_check_spec(check_key).description or "").strip(), check_key
    rejects = graph.get_check_spec(next(c for c in graph.asset_check_keys if c.name == "sources_without_rejects"))
    assert rejects.asset_key == AssetKey("source_rejects")


def test_code_version_moves_only_for_assets_that_run_the_changed_code(monkeypatch):
    from medtrinity_assets.defs import versions
    from medtrinity_assets.definitions import ASSETS, build_resources, versioned

    resources = build_resources()

    def by_asset() -> dict[str, str]:
        versions.module_closure.cache_clear()
        out = {}
        for a in versioned(ASSETS, resources):
            for spec in getattr(a, "specs", []):
                out[spec.key.to_user_string()] = spec.code_version
        return out

    before = by_asset()
    real = versions.file_digest

    def changed(module: str) -> set[str]:
        monkeypatch.setattr(versions, "file_digest", lambda name: "edited" if name == module else real(name))
        after = by_asset()
        monkeypatch.setattr(versions, "file_digest", real)
        return {name for name in before if before[name] != after[name]}

    assert changed("medtrinity_assets.export.card") == {"dataset_release", "vqa_pairs"}
    assert changed("medtrinity_assets.stages.triplets") == {"triplets"}
    assert changed("medtrinity_assets.ingest.intensity") >= {"images"}
    assert "caption_batches" not in changed("medtrinity_assets.ingest.intensity")
    assert changed("medtrinity_assets.knowledge.chunking") >= {"knowledge_index", "retrieval_evaluation"}
    assert not changed("medtrinity_assets.defs.metadata")  # wiring is not versioned
    # configuration: the MLLM backend/model moves caption_batches only
    other_model = {}
    for a in versioned(ASSETS, resources, caption="mllm=openai:another-model"):
        for spec in getattr(a, "specs", []):
            other_model[spec.key.to_user_string()] = spec.code_version
    assert {n for n in before if before[n] != other_model[n]} == {"caption_batches"}


def test_per_source_schedule_requests_every_shard():
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.automation import SCHEDULES
    from medtrinity_assets.defs.context import CATALOG

    assert {s.name for s in SCHEDULES} == {f"{n}_backfill" for n in CATALOG.names}
    sched = next(s for s in SCHEDULES if s.name == "torchxrayvision_cxr_backfill")
    tick = datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)
    ctx = build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    requests = list(sched.evaluate_tick(ctx).run_requests)
    assert len(requests) == CATALOG.shard_count
    assert {str(r.partition_key) for r in requests} == {f"torchxrayvision_cxr|{s}" for s in CATALOG.shard_keys}


def test_source_files_sensor_observes_and_runs_only_changed_shards(monkeypatch):
    from medtrinity_assets.defs import automation

    instance = DagsterInstance.ephemeral()
    first = automation.source_files_sensor(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    every = {f"{n}|{s}" for n in automation.CATALOG.names for s in automation.CATALOG.shard_keys}
    assert {o.partition for o in first.asset_events} == every
    assert {str(r.partition_key) for r in first.run_requests} == every
    assert all(o.tags["dagster/data_version"] for o in first.asset_events)
    for obs in first.asset_events:  # what the daemon records for a sensor's asset events
        instance.report_runless_asset_event(obs)
    assert isinstance(automation.source_files_sensor(build_sensor_context(instance=instance)), SkipReason)

    real = automation.source_fingerprints
    monkeypatch.setattr(automation, "source_fingerprints", lambda: {**real(), "stardist_dsb2018|00": "changed"})
    out = automation.source_files_sensor(build_sensor_context(instance=instance))
    assert [o.partition for o in out.asset_events] == ["stardist_dsb2018|00"]
    assert [str(r.partition_key) for r in out.run_requests] == ["stardist_dsb2018|00"]
    assert all(isinstance(r, RunRequest) and r.tags["medtrinity/trigger"] == "files_changed" for r in out.run_requests)


def test_dagster_cli_materialises_one_partition(tmp_path):
    """`dagster asset materialize -m … --select … --partition …` works as a user runs it."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MEDTRINITY_HOME": str(tmp_path / "home")}
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "medtrinity_assets.definitions", "--select", "source_manifest", "--partition", "stardist_dsb2018|00"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "home" / "dataset" / "manifests" / "source_manifest" / "stardist_dsb2018" / "00.parquet").is_file()


# -- settings and resource sets -----------------------------------------------------------------


def test_every_setting_is_documented_and_every_variable_is_a_setting():
    from medtrinity_assets import settings

    used = set()
    for pkg in ("medtrinity_assets", "medtrinity_resources"):
        for py in (REPO / pkg).rglob("*.py"):
            used |= set(re.findall(r"\bMEDTRINITY_[A-Z0-9_]*[A-Z0-9]\b", py.read_text()))
    assert used <= settings.NAMES, sorted(used - settings.NAMES)
    readme = (REPO / "README.md").read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `(MEDTRINITY_[A-Z0-9_]+)`", readme, re.M)}
    assert table == settings.NAMES, (sorted(settings.NAMES - table), sorted(table - settings.NAMES))
    doc = settings.__doc__ + (REPO / "docs" / "deployment.md").read_text()
    for deployment in settings.DEPLOYMENTS:
        assert f"`{deployment}`" in doc, deployment


def _with_env(monkeypatch, **values):
    for name in ("MEDTRINITY_DEPLOYMENT", "MEDTRINITY_STORAGE", "MEDTRINITY_S3_ENDPOINT_URL", "MEDTRINITY_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_resource_sets_per_deployment(monkeypatch, tmp_path):
    from dagster import EnvVar

    from medtrinity_assets import settings
    from medtrinity_assets.defs.resources import RESOURCE_SETS, build_resources, storage_from_settings

    assert set(RESOURCE_SETS) == set(settings.DEPLOYMENTS)
    _with_env(monkeypatch)
    local = build_resources()
    assert local["storage"].s3 is None and local["storage"].root == str(Path(settings.home()) / "dataset")
    assert local["embedder"].device == "cpu" and local["mllm"].backend == "grounded_composer"

    _with_env(monkeypatch, MEDTRINITY_STORAGE=str(tmp_path / "elsewhere"))
    assert build_resources()["storage"].root == EnvVar("MEDTRINITY_STORAGE")  # shown by name, resolved at run time
    assert storage_from_settings().root == str(tmp_path / "elsewhere")

    _with_env(monkeypatch, MEDTRINITY_STORAGE="s3://bucket/prefix")
    with pytest.raises(settings.SettingsError, match="MEDTRINITY_DEPLOYMENT=s3"):
        build_resources()
    _with_env(monkeypatch, MEDTRINITY_DEPLOYMENT="s3")
    with pytest.raises(settings.SettingsError, match=r"MEDTRINITY_STORAGE=s3://bucket/prefix"):
        build_resources()
    _with_env(monkeypatch, MEDTRINITY_DEPLOYMENT="cloud")
    with pytest.raises(settings.SettingsError, match="MEDTRINITY_DEPLOYMENT='cloud'"):
        build_resources()

    _with_env(monkeypatch, MEDTRINITY_DEPLOYMENT="s3", MEDTRINITY_STORAGE="s3://bucket/prefix", MEDTRINITY_S3_ENDPOINT_URL="http://minio:9000")
    s3 = build_resources()
    assert s3["storage"].s3.endpoint_url == EnvVar("MEDTRINITY_S3_ENDPOINT_URL") and s3["embedder"].device == "cpu"
    assert storage_from_settings().uri("k") == "s3://bucket/prefix/k"
    _with_env(monkeypatch, MEDTRINITY_DEPLOYMENT="gpu", MEDTRINITY_STORAGE="s3://bucket/prefix")
    gpu = build_resources()
    assert gpu["embedder"].device == "cuda" and gpu["mllm"].device == "cuda" and settings.uses_gpu()


def test_gpu_deployment_puts_model_steps_in_the_gpu_pool_and_tags_dataset_runs():
    script = (
        "import json; from medtrinity_assets.definitions import defs; g = defs.resolve_asset_graph(); from dagster import AssetKey;"
        "print(json.dumps({'pools': {k: sorted(g.get(AssetKey(k)).pools or []) for k in ['roi_masks', 'caption_batches', 'images', 'knowledge_index']},"
        "'tags': defs.resolve_job_def('dataset_shard_job').tags}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("MEDTRINITY_DEVICE", "MEDTRINITY_RUN_TAGS")}
    out = {}
    for deployment, extra in [("local", {}), ("gpu", {"MEDTRINITY_STORAGE": "s3://bucket/prefix"})]:
        env = {**base, "MEDTRINITY_DEPLOYMENT": deployment, **extra}
        proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[deployment] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["gpu"]["pools"] == {"roi_masks": ["gpu"], "caption_batches": ["gpu"], "images": [], "knowledge_index": ["knowledge_store"]}
    assert out["local"]["pools"] == {"roi_masks": [], "caption_batches": [], "images": [], "knowledge_index": ["knowledge_store"]}
    assert out["gpu"]["tags"]["medtrinity/gpu"] == "true" and "medtrinity/gpu" not in out["local"]["tags"]


def test_mllm_switches_from_the_environment(monkeypatch):
    from medtrinity_assets import settings
    from medtrinity_assets.defs.resources import build_resources

    _with_env(monkeypatch)
    assert build_resources()["mllm"].structured_output is True  # on by default
    _with_env(monkeypatch, MEDTRINITY_MLLM_STRUCTURED_OUTPUT="off", MEDTRINITY_MLLM_TRUST_REMOTE_CODE="Yes")
    mllm = build_resources()["mllm"]
    assert mllm.structured_output is False and mllm.trust_remote_code is True
    _with_env(monkeypatch, MEDTRINITY_MLLM_STRUCTURED_OUTPUT="of")  # a typo is an error naming the variable
    with pytest.raises(settings.SettingsError, match="MEDTRINITY_MLLM_STRUCTURED_OUTPUT='of'"):
        build_resources()
