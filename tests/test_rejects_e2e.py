"""A corrupt file dropped into a source becomes a rejects row with its reason; the rest of its
shard completes. Run as a user runs it: the `medtrinity demo` CLI on a catalog of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import yaml

from medtrinity_assets.catalog import shard_of

REPO = Path(__file__).resolve().parents[1]


def test_corrupt_file_lands_in_rejects_and_shard_completes(tmp_path):
    src = tmp_path / "cxr"
    shutil.copytree(REPO / "data" / "sources" / "torchxrayvision_cxr", src)
    raw = yaml.safe_load((REPO / "data" / "catalog.yaml").read_text())
    entry = next(s for s in raw["sources"] if s["name"] == "torchxrayvision_cxr")
    entry = {**entry, "name": "cxr_with_corrupt", "root": str(src)}
    shard_count = 4
    # a corrupt PNG (truncated after the header) that hashes into the same shard as a good image
    good_shard = shard_of("cxr_with_corrupt", "images/h0001.png", shard_count)
    name = next(f"corrupt_{i}" for i in range(1000) if shard_of("cxr_with_corrupt", f"images/corrupt_{i}.png", shard_count) == good_shard)
    png = (src / "images" / "h0001.png").read_bytes()
    (src / "images" / f"{name}.png").write_bytes(png[:200])
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"shard_count": shard_count, "sources": [entry]}))

    home = tmp_path / "home"
    env = {**os.environ, "MEDTRINITY_CATALOG": str(catalog), "MEDTRINITY_HOME": str(home), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    proc = subprocess.run(
        [sys.executable, "-m", "medtrinity_assets.cli", "demo", "--skip-knowledge"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "rejects: 1" in proc.stdout

    shard = str(good_shard).zfill(2)
    rejects = pl.read_parquet(home / "dataset" / "rejects" / "images" / "cxr_with_corrupt" / f"{shard}.parquet")
    assert rejects.height == 1
    row = rejects.row(0, named=True)
    assert row["item_id"] == f"images/{name}.png" and row["reason"] == "corrupt_file" and row["detail"]
    triplets = pl.read_parquet(home / "dataset" / "manifests" / "triplets" / "cxr_with_corrupt" / f"{shard}.parquet")
    images_in_shard = {i for i in ["images/00000001_000.png", "images/00027426_000.png", "images/16747_3_1.jpg", "images/h0001.png", "images/tb0005.png", "images/tb0007.png"]
                       if shard_of("cxr_with_corrupt", i, shard_count) == good_shard}
    assert {t.split("/", 1)[1].split("#")[0] for t in triplets["image_id"].to_list()} == images_in_shard

    # per source in the UI: source_rejects holds the row and its check warns (severity WARN)
    from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        mat = instance.get_latest_materialization_event(AssetKey("source_rejects")).asset_materialization
        assert mat.metadata["rejects_by_source"].value == {"cxr_with_corrupt": 1}
        assert "### cxr_with_corrupt (1)" in mat.metadata["rejects_by_source_table"].value
        run_id = instance.get_latest_materialization_event(AssetKey("source_rejects")).run_id
        evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
    warned = [e for e in evaluations if e.check_name == "sources_without_rejects"]
    assert len(warned) == 1 and not warned[0].passed and warned[0].severity == AssetCheckSeverity.WARN
