"""Tiny MONAI bundles and a tiny YOLO dataset for the expert tests and bench (MONAI bundles written with `monai.bundle.init_bundle`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def build_network(network_def: Mapping[str, Any]) -> torch.nn.Module:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config({"net": dict(network_def)})
    return parser.get_parsed_content("net")


def write_monai_bundle(
    bundle_dir: str | Path,
    network_def: Mapping[str, Any],
    state_dict: Mapping[str, Any],
    labels: Sequence[str],
    in_channels: int = 1,
    spatial_shape: Sequence[int] = (),
    roi_size: Sequence[int] = (),
    version: str = "0.1.0",
) -> Path:
    """A bundle directory (configs/inference.json, configs/metadata.json, models/model.pt) of
    `network_def` with `state_dict`; `labels` are the output channels (index 0 = background)."""
    from monai.bundle import init_bundle

    root = Path(bundle_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    network = build_network(network_def)
    network.load_state_dict(dict(state_dict))
    inference: dict[str, Any] = {"network_def": dict(network_def)}
    if roi_size:
        inference["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": list(roi_size), "sw_batch_size": 4}
    metadata = {
        "version": version,
        "network_data_format": {
            "inputs": {"image": {"type": "image", "num_channels": in_channels, "spatial_shape": list(spatial_shape)}},
            "outputs": {"pred": {"type": "image", "num_channels": len(labels), "channel_def": {str(i): n for i, n in enumerate(labels)}}},
        },
    }
    init_bundle(root, network=network, metadata_str=metadata, inference_str=inference)
    return root


def synthetic_yolo_dataset(root: Path, n: int = 4, size: int = 64) -> Path:
    """A tiny YOLO-format segmentation dataset of bright rectangles (class `blob`); returns data.yaml."""
    rng = np.random.default_rng(0)
    for split in ("images", "labels"):
        (root / split / "train").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size, size, 3), 20, np.uint8)
        x0, y0 = (int(v) for v in rng.integers(4, 28, 2))
        w, h = (int(v) for v in rng.integers(12, 30, 2))
        img[y0 : y0 + h, x0 : x0 + w] = 220
        Image.fromarray(img).save(root / "images" / "train" / f"{i}.png")
        poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
        (root / "labels" / "train" / f"{i}.txt").write_text("0 " + " ".join(f"{v / size:.5f}" for v in poly) + "\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames:\n  0: blob\n")
    return root / "data.yaml"
