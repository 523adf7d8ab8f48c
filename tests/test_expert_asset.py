"""The expert-model path through the production `roi_masks` asset: a real MONAI bundle on disk,
routed by configuration (MEDTRINITY_EXPERTS), on the images of a source that has no masks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import torch
import yaml

from expert_builders import write_monai_bundle

REPO = Path(__file__).resolve().parents[1]


def bright_region_bundle(root: Path) -> Path:
    """A 1x1-convolution segmenter: class 1 where the unit-scaled intensity exceeds 0.6."""
    net = {"_target_": "torch.nn.Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 1}
    state = {"weight": torch.tensor([[[[-10.0]]], [[[10.0]]]]), "bias": torch.tensor([6.0, -6.0])}
    return write_monai_bundle(root / "bright_regions", net, state, ["background", "dense region"], version="1.0.0")


def test_roi_masks_asset_runs_routed_expert(tmp_path):
    bundle = bright_region_bundle(tmp_path)
    experts = tmp_path / "experts.yaml"
    experts.write_text(
        yaml.safe_dump(
            {
                "experts": [{"name": "bright_regions", "kind": "monai_bundle", "path": str(bundle), "labels": ["background", "dense region"], "device": "cpu", "min_area_px": 64}],
                "routing": [{"modality": "X-ray", "expert": "bright_regions"}],
            }
        )
    )
    home = tmp_path / "home"
    env = {**os.environ, "MEDTRINITY_EXPERTS": str(experts), "MEDTRINITY_HOME": str(home), "DAGSTER_HOME": str(tmp_path / "dh")}
    proc = subprocess.run(
        [sys.executable, "-m", "medtrinity_assets.cli", "demo", "--sources", "torchxrayvision_cxr", "--skip-knowledge"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rois = pl.concat([pl.read_parquet(p) for p in (home / "dataset" / "manifests" / "roi_masks" / "torchxrayvision_cxr").glob("*.parquet")])
    by_image = {img: set(g["origin"].to_list()) for (img,), g in rois.group_by("image_id")}
    # the image with a ground-truth lung mask keeps it; the five without masks get the expert's ROIs
    assert by_image.pop("torchxrayvision_cxr/images/16747_3_1.jpg") == {"ground_truth"}
    assert len(by_image) == 5
    # the version in the origin is the weights' content hash: retrained weights are a new origin
    version = hashlib.sha256((bundle / "models" / "model.pt").read_bytes()).hexdigest()[:12]
    for image_id, origins in by_image.items():
        assert origins == {f"model:bright_regions@{version}"}, (image_id, origins)
    model_rows = rois.filter(pl.col("origin").str.starts_with("model:"))
    assert (model_rows["label"] == "dense region").all()
    assert model_rows["score"].is_not_null().all() and (model_rows["area_px"] >= 64).all()
    triplets = pl.concat([pl.read_parquet(p) for p in (home / "dataset" / "manifests" / "triplets" / "torchxrayvision_cxr").glob("*.parquet")])
    assert triplets.filter(pl.col("roi_origin") == f"model:bright_regions@{version}").height == model_rows.height
