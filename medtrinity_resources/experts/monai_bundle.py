"""MONAI bundle experts: load ``configs/inference.json`` + ``models/model.pt``; predict label maps.

A bundle directory holds ``configs/inference.json`` (or ``.yaml``) whose ``network_def`` entry
instantiates the network (``monai.bundle.ConfigParser``), weights in ``models/model.pt`` (a state
dict; ``{"model": ...}`` / ``{"state_dict": ...}`` wrappers and DDP ``module.`` prefixes
accepted), and optionally ``configs/metadata.json`` whose ``network_data_format`` gives input
channels, spatial shape and ``channel_def`` labels. 2-D bundles run on batches of slices (padded
to `pad_multiple`); 3-D bundles get the slices of one call stacked in order as a volume
``(1, C, H, W, D)`` through ``monai.inferers.sliding_window_inference``. Logits -> softmax /
argmax (sigmoid for one channel) -> a semantic `LabelMap` with the chosen class' probability.
NOTE: bundle configs are code (``$`` expressions are evaluated); load trusted bundles only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medtrinity_assets.records import LabelMap, RejectError, Slice2D

from .cache import LOADERS, PREDICTORS, LoadedExpert
from .config import ExpertConfigError, ExpertSpec, file_version, spec_labels


def bundle_files(bundle: Path) -> tuple[Path, Path | None, Path]:
    """(inference config, metadata or None, weights) of a MONAI bundle directory."""
    configs = [bundle / "configs" / n for n in ("inference.json", "inference.yaml", "inference.yml")]
    config = next((p for p in configs if p.is_file()), None)
    if config is None:
        raise ExpertConfigError(f"MONAI bundle {bundle} has no configs/inference.json")
    metas = [bundle / "configs" / "metadata.json", bundle / "metadata.json"]
    weights = bundle / "models" / "model.pt"
    if not weights.is_file():
        raise ExpertConfigError(f"MONAI bundle {bundle} has no models/model.pt")
    return config, next((p for p in metas if p.is_file()), None), weights


def _unwrap_state_dict(obj: Any) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ExpertConfigError(f"models/model.pt holds a {type(obj).__name__}, expected a state dict")
    for key in ("model", "state_dict", "network"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            obj = inner
            break
    if obj and all(str(k).startswith("module.") for k in obj):
        obj = {str(k)[len("module.") :]: v for k, v in obj.items()}
    return obj


def _metadata_format(meta: Mapping) -> tuple[int, list[int], dict[int, str]]:
    fmt = meta.get("network_data_format", {}) if isinstance(meta, Mapping) else {}
    image = fmt.get("inputs", {}).get("image", {})
    pred = fmt.get("outputs", {}).get("pred", {})
    channel_def = pred.get("channel_def", {}) or {}
    labels = {int(k): str(v) for k, v in channel_def.items() if str(k).isdigit()}
    return int(image.get("num_channels", 0) or 0), list(image.get("spatial_shape", []) or []), labels


def load_monai_bundle(spec: ExpertSpec, device: str) -> LoadedExpert:
    """Instantiate `network_def`, load models/model.pt, eval mode on `device`."""
    import torch
    from monai.bundle import ConfigParser

    bundle = Path(spec.path)
    config_path, meta_path, weights = bundle_files(bundle)
    parser = ConfigParser()
    parser.read_config(str(config_path))
    meta: dict = json.loads(meta_path.read_text()) if meta_path else {}
    if "network_def" not in parser.get():
        raise ExpertConfigError(f"{config_path} has no 'network_def' entry")
    network = parser.get_parsed_content("network_def", instantiate=True)
    state = _unwrap_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.load_state_dict(state, strict=True)
    network = network.to(device).eval()
    if spec.half and device == "cuda":
        network = network.half()
    meta_channels, meta_shape, meta_labels = _metadata_format(meta)
    in_channels = spec.in_channels or meta_channels or int(getattr(network, "in_channels", 0) or 1)
    roi_size: list[int] = list(spec.roi_size)
    if not roi_size and spec.spatial_dims == 3:
        inferer = parser.get().get("inferer")
        if isinstance(inferer, Mapping) and "roi_size" in inferer:
            roi_size = list(parser.get_parsed_content("inferer#roi_size"))
        roi_size = roi_size or list(meta_shape)
        if len(roi_size) != 3:
            raise ExpertConfigError(f"expert {spec.name!r}: 3-D bundle needs a 3-value roi_size")
    labels = spec_labels(spec) or meta_labels
    return LoadedExpert("monai_bundle", network, device, spec.version or file_version(weights), labels, in_channels, tuple(roi_size))


LOADERS["monai_bundle"] = load_monai_bundle


def check_pixels(sl: Slice2D) -> np.ndarray:
    """The slice's pixels, RejectError unless uint8 (H, W) or (H, W, 3)."""
    px = np.asarray(sl.pixels)
    if px.dtype != np.uint8 or not (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)):
        raise RejectError("bad_pixels", f"expert input must be uint8 (H, W) or (H, W, 3), got {px.dtype} {px.shape}")
    return px


def channels_first(px: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (H, W[, 3]) -> float32 (C, H, W) with C = `channels` (grey repeated / RGB -> luma)."""
    if px.ndim == 2:
        grey = px.astype(np.float32)
        return np.repeat(grey[None], channels, axis=0) if channels != 1 else grey[None]
    if channels == 3:
        return np.moveaxis(px, 2, 0).astype(np.float32)
    luma = px.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(luma[None], channels, axis=0)


def scale_intensity(x: np.ndarray, mode: str) -> np.ndarray:
    """uint8-range float -> model range: ``unit`` (/255) or ``zscore`` (per image)."""
    if mode == "unit":
        return x / np.float32(255.0)
    mean, std = float(x.mean()), float(x.std())
    return (x - mean) / np.float32(std if std > 0 else 1.0)


def logits_to_labels(logits: Any) -> tuple[np.ndarray, np.ndarray]:
    """(B, C, ...) logits -> (label map int32, probability of the chosen class float32), on CPU."""
    import torch

    logits = logits.float()
    if logits.shape[1] == 1:
        prob = torch.sigmoid(logits[:, 0])
        labels = (prob > 0.5).to(torch.int32)
        conf = torch.where(labels.bool(), prob, 1 - prob)
    else:
        conf, labels = torch.softmax(logits, dim=1).max(dim=1)
        labels = labels.to(torch.int32)
    return labels.cpu().numpy(), conf.cpu().numpy()


def _pad_to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    if multiple <= 1:
        return batch
    h, w = batch.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return batch
    return np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)))


def predict_2d(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[LabelMap]:
    """Batched 2-D inference: slices grouped by shape, `batch_size` at a time."""
    import torch

    out: list[LabelMap | None] = [None] * len(slices)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for index, sl in enumerate(slices):
        by_shape.setdefault(check_pixels(sl).shape[:2], []).append(index)
    dtype = torch.float16 if spec.half and loaded.device == "cuda" else torch.float32
    step = max(spec.batch_size, 1)
    for (height, width), indices in by_shape.items():
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            batch = np.stack([scale_intensity(channels_first(slices[i].pixels, loaded.in_channels), spec.intensity) for i in chunk])
            tensor = torch.from_numpy(_pad_to_multiple(batch, spec.pad_multiple)).to(loaded.device, dtype)
            with torch.inference_mode():
                logits = loaded.model(tensor)[..., :height, :width]
            ids, conf = logits_to_labels(logits)
            for k, i in enumerate(chunk):
                out[i] = LabelMap(ids[k], dict(loaded.labels), origin, "semantic", conf[k])
    return [lm for lm in out if lm is not None]


def predict_3d(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[LabelMap]:
    """Stack the slices (in order) as one volume (1, C, H, W, D); sliding-window inference."""
    import torch
    from monai.inferers import sliding_window_inference

    shapes = {check_pixels(sl).shape[:2] for sl in slices}
    if len(shapes) != 1:
        raise RejectError("shape_mismatch", f"3-D expert needs slices of one shape, got {sorted(shapes)}")
    volume = np.stack([scale_intensity(channels_first(sl.pixels, loaded.in_channels), spec.intensity) for sl in slices], axis=-1)
    dtype = torch.float16 if spec.half and loaded.device == "cuda" else torch.float32
    tensor = torch.from_numpy(volume[None]).to(loaded.device, dtype)
    with torch.inference_mode():
        logits = sliding_window_inference(tensor, loaded.roi_size, max(spec.sw_batch_size, 1), loaded.model, overlap=spec.overlap)
    ids, conf = logits_to_labels(logits)
    return [LabelMap(ids[0, ..., d], dict(loaded.labels), origin, "semantic", conf[0, ..., d]) for d in range(len(slices))]


def predict(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[LabelMap]:
    return predict_3d(spec, loaded, slices, origin) if spec.spatial_dims == 3 else predict_2d(spec, loaded, slices, origin)


PREDICTORS["monai_bundle"] = predict
