"""Expert specs, routing rules and the YAML config that declares them (``MEDTRINITY_EXPERTS``)."""

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


def load_expert_config(path: str | Path | None, default_device: str | None = None):
    """ExpertModels from a YAML file ``{experts: [...], routing: [...]}``; no path -> no experts.

    Relative expert paths are resolved against the YAML file's directory; `default_device`
    (e.g. ``MEDTRINITY_DEVICE``) applies to experts that do not set ``device``. Example::

        experts:
          - {name: spleen_ct, kind: monai_bundle, path: bundles/spleen_ct_segmentation,
             labels: [background, spleen], spatial_dims: 3}
          - {name: cxr_yolo, kind: yolo, path: weights/cxr_findings.pt, imgsz: 640}
        routing:
          - {modality: CT, organ: spleen, expert: spleen_ct}
          - {modality: X-ray, expert: cxr_yolo}
    """
    from medtrinity_resources.experts.resource import ExpertModels
    from medtrinity_resources.yaml_config import read_yaml_mapping, validate_config

    if not path:
        return ExpertModels()
    config_path = Path(path)
    raw = read_yaml_mapping(config_path, "expert config", ExpertConfigError)
    if set(raw) - {"experts", "routing"}:
        raise ExpertConfigError(f"expert config {config_path} must be a mapping with keys experts, routing")
    experts = []
    for entry in raw.get("experts") or []:
        entry = dict(entry)
        if "path" in entry and not Path(str(entry["path"])).is_absolute():
            entry["path"] = str((config_path.parent / str(entry["path"])).resolve())
        if default_device and "device" not in entry:
            entry["device"] = default_device
        experts.append(entry)
    where = f"expert config {config_path}: "
    specs = [
        validate_config(ExpertSpec, e, raw, ExpertConfigError, top=f"expert '{e.get('name', f'#{i}')}'", prefix=where)
        for i, e in enumerate(experts)
    ]
    rules = [
        validate_config(RouteRule, r, raw, ExpertConfigError, top=f"routing rule #{i}", prefix=where)
        for i, r in enumerate(raw.get("routing") or [])
    ]
    resource = ExpertModels(experts=specs, routing=rules)
    names = [e.name for e in resource.experts]
    if len(set(names)) != len(names):
        raise ExpertConfigError(f"expert config {config_path}: duplicate expert names {names}")
    for rule in resource.routing:
        resource.spec(rule.expert)
    return resource
