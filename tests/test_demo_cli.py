"""`medtrinity demo` and `medtrinity release` as a user runs them, on a catalog of one copied source:

- the runs are launched through a webserver, so the instance's run storage holds them with their
  job and the code location's origin (what the UI's Jobs page, Timeline and re-execution need);
- a rerun with nothing changed launches no run (Dagster's staleness: code and data versions);
- touching one source file re-runs only that file's shard, then the reports and the release;
- the dataset folder, moved elsewhere, still builds a release (manifests hold root-relative references);
- a new MEDTRINITY_HOME on the same instance: what the instance calls fresh but storage lacks is
  re-run (the instance alone would launch nothing, or runs that cannot load their inputs).

The knowledge index is skipped (retrieval then finds no passages; runs still succeed). Wall-clock
figures are printed for the record, never asserted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import DagsterInstance, RunsFilter

REPO = Path(__file__).resolve().parents[1]
SOURCE = "sam_med2d_demo"
pytestmark = pytest.mark.slow


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "medtrinity_assets.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def runs_by_job(dagster_home: Path) -> dict[str, list]:
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        out: dict[str, list] = {}
        for record in instance.get_run_records():
            out.setdefault(record.dagster_run.job_name, []).append(record.dagster_run)
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_cli")
    src = root / "sources" / SOURCE
    shutil.copytree(REPO / "data" / "sources" / SOURCE, src)
    raw = yaml.safe_load((REPO / "data" / "catalog.yaml").read_text())
    entry = {**next(s for s in raw["sources"] if s["name"] == SOURCE), "root": str(src)}
    catalog = root / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"shard_count": 4, "sources": [entry]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDTRINITY_") or k in ("MEDTRINITY_CORPORA", "MEDTRINITY_PATIENT_SALT", "MEDTRINITY_MLLM_BACKEND")}
    env.update({"MEDTRINITY_CATALOG": str(catalog), "MEDTRINITY_HOME": str(root / "home"), "DAGSTER_HOME": str(root / "dagster_home"), "PYTHONUNBUFFERED": "1"})
    first = run_cli(env, "demo", "--skip-knowledge")
    return root, src, env, first


def test_demo_runs_belong_to_the_code_location(world):
    root, _, env, first = world
    assert re.search(r"Shards: 4 of 4 to run \(4 missing, 0 stale, 0 up to date\)", first.stdout)
    assert re.search(r"\[4/4\] " + SOURCE + r"\|\d\d +ok", first.stdout) and "Time per stage" in first.stdout
    assert re.search(r"Done in [\d.]+s wall, [\d.]+s CPU", first.stdout)
    runs = runs_by_job(root / "dagster_home")
    assert {j: len(r) for j, r in runs.items()} == {"dataset_shard_job": 4, "reports_job": 1, "release_job": 1}
    for run in [r for rs in runs.values() for r in rs]:
        origin = run.remote_job_origin
        assert origin is not None, run.run_id
        assert origin.location_name == "medtrinity" and origin.job_name == run.job_name
        assert run.is_success
    # the repository label the Jobs page and Overview › Timeline filter runs on
    with DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        labelled = instance.get_run_records(filters=RunsFilter(tags={".dagster/repository": "__repository__@medtrinity"}))
    assert len(labelled) == sum(len(r) for r in runs.values())
    shard_partitions = sorted(r.tags["dagster/partition"] for r in runs["dataset_shard_job"])
    assert shard_partitions == [f"{SOURCE}|{s}" for s in ("00", "01", "02", "03")]


def test_rerun_with_nothing_changed_launches_nothing(world):
    root, _, env, _ = world
    before = runs_by_job(root / "dagster_home")
    again = run_cli(env, "demo", "--skip-knowledge")
    assert "Source files: 0 shard(s) new or changed" in again.stdout
    assert "Shards: 0 of 4 to run (0 missing, 0 stale, 4 up to date)" in again.stdout
    assert "Release 'demo': up to date" in again.stdout and "0 run(s), 0 failed" in again.stdout
    assert runs_by_job(root / "dagster_home") == before


def test_touching_one_file_reruns_only_its_shard(world):
    root, src, env, _ = world
    before = {j: {r.run_id for r in rs} for j, rs in runs_by_job(root / "dagster_home").items()}
    image = sorted((src / "images").glob("*.png"))[0]
    manifests = pl.concat([pl.read_parquet(p) for p in (root / "home" / "dataset" / "manifests" / "source_manifest" / SOURCE).glob("*.parquet")])
    shard = manifests.filter(pl.col("source_file") == f"images/{image.name}")["shard"].item()  # the shard that lists this file
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    third = run_cli(env, "demo", "--skip-knowledge")
    assert "Source files: 1 shard(s) new or changed" in third.stdout
    assert "Shards: 1 of 4 to run (0 missing, 1 stale, 3 up to date)" in third.stdout
    new = {j: [r for r in rs if r.run_id not in before.get(j, set())] for j, rs in runs_by_job(root / "dagster_home").items()}
    assert [r.tags["dagster/partition"] for r in new["dataset_shard_job"]] == [f"{SOURCE}|{shard}"]
    assert len(new["reports_job"]) == 1 and len(new["release_job"]) == 1  # they read every shard


def test_moved_dataset_builds_a_release(world, tmp_path):
    root, _, env, _ = world
    moved = tmp_path / "moved" / "dataset"
    shutil.move(str(root / "home" / "dataset"), str(moved))
    try:
        proc = run_cli({**env, "MEDTRINITY_STORAGE": str(moved)}, "release", "--name", "demo")
        assert f"Release 'demo': {moved}/releases/demo" in proc.stdout
        records = pl.read_parquet(sorted((moved / "releases" / "demo" / "data" / "full").glob("*.parquet"))[0])
        assert records.height > 0
        triplets = pl.concat([pl.read_parquet(p) for p in (moved / "manifests" / "triplets" / SOURCE).glob("*.parquet")])
        assert triplets["image_uri"].str.starts_with("images/").all()
        assert all((moved / uri).is_file() for uri in triplets["image_uri"].unique())
    finally:
        shutil.move(str(moved), str(root / "home" / "dataset"))


def test_new_home_on_the_same_instance_reruns_what_storage_lacks(world, tmp_path):
    root, _, env, _ = world
    before = {j: {r.run_id for r in rs} for j, rs in runs_by_job(root / "dagster_home").items()}
    home = tmp_path / "new_home"
    proc = run_cli({**env, "MEDTRINITY_HOME": str(home)}, "demo", "--skip-knowledge")
    assert "Shards: 4 of 4 to run (4 missing, 0 stale, 0 up to date)" in proc.stdout
    assert "0 failed" in proc.stdout
    new = {j: [r for r in rs if r.run_id not in before.get(j, set())] for j, rs in runs_by_job(root / "dagster_home").items()}
    assert sorted(r.tags["dagster/partition"] for r in new["dataset_shard_job"]) == [f"{SOURCE}|{s}" for s in ("00", "01", "02", "03")]
    assert all(r.is_success for rs in new.values() for r in rs)
    assert len(new["reports_job"]) == 1 and len(new["release_job"]) == 1
    old = pl.concat([pl.read_parquet(p) for p in sorted((root / "home" / "dataset" / "manifests" / "triplets" / SOURCE).glob("*.parquet"))])
    rebuilt = pl.concat([pl.read_parquet(p) for p in sorted((home / "dataset" / "manifests" / "triplets" / SOURCE).glob("*.parquet"))])
    assert rebuilt.height == old.height > 0
    assert (home / "dataset" / "releases" / "demo" / "checksums.sha256").is_file()
