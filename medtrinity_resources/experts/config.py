"""Expert specs and routing rules (declared in the YAML config ``MEDTRINITY_EXPERTS`` that
`resource.load_expert_config` reads)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import dagster as dg


class ExpertConfigError(ValueError):
    """An expert or routing rule is misconfigured (missing files, unknown expert, bad option)."""


class ExpertSpec(dg.Config):
    """One expert model."""

    name: str
    kind: Literal["monai_bundle", "yolo"]
    path: str  # MONAI bundle directory, or YOLO .pt file
    version: str = ""  # "" -> first 12 hex of the weights file's sha256
    labels: list[str] = []  # class index -> label name (MONAI: index 0 = background)
    label_map: dict[str, str] = {}  # sparse alternative {"1": "liver"}; wins over `labels`
    device: Literal["cpu", "cuda", "auto"] = "auto"
    batch_size: int = 8
    half: bool = False  # fp16, only used on cuda
    score_threshold: float = 0.25  # YOLO: confidence; MONAI: minimum mean class probability
    min_area_px: int = 16  # MONAI: smallest component kept
    spatial_dims: int = 2  # 2 or 3 (MONAI)
    roi_size: list[int] = []  # 3-D sliding window; [] -> config inferer#roi_size / metadata
    sw_batch_size: int = 4
    overlap: float = 0.25
    in_channels: int = 0  # 0 -> metadata / network attribute / 1
    intensity: Literal["unit", "zscore"] = "unit"  # MONAI input scaling of uint8 pixels
    pad_multiple: int = 16  # MONAI 2-D: pad H, W up to a multiple (U-Net strides)
    imgsz: int = 640  # YOLO inference size


class RouteRule(dg.Config):
    """Send images of `modality` (``*`` = any), optionally with `organ` / `label`, to `expert`."""

    modality: str = "*"
    organ: str | None = None
    label: str | None = None
    expert: str


def resolve_device(device: str) -> str:
    """``cpu`` / ``cuda``; ``auto`` picks cuda when available. Error if cuda is missing."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ExpertConfigError("device 'cuda' requested but torch.cuda.is_available() is False")
    if device not in ("cpu", "cuda"):
        raise ExpertConfigError(f"device must be cpu, cuda or auto, got {device!r}")
    return device


def file_version(path: Path) -> str:
    """First 12 hex digits of the file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def spec_labels(spec: ExpertSpec) -> dict[int, str]:
    """Class index -> label from the spec (label_map wins over labels)."""
    if spec.label_map:
        try:
            return {int(k): v for k, v in spec.label_map.items()}
        except ValueError as exc:
            raise ExpertConfigError(f"expert {spec.name!r}: label_map keys must be class indices") from exc
    return dict(enumerate(spec.labels))
