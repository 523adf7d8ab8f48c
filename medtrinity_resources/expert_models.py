"""Expert models (MONAI bundles, ultralytics YOLO) as a batched, routed Dagster resource.

The MedTrinity-25M paper used expert segmentation models but never released that code. Here an
expert is a local artefact, declared in config and loaded once per process:

- ``kind="monai_bundle"``: a bundle directory ``<path>/configs/inference.json`` (or ``.yaml``)
  whose ``network_def`` entry instantiates the network (``monai.bundle.ConfigParser``),
  weights in ``<path>/models/model.pt`` (a state dict; ``{"model": ...}`` / ``{"state_dict":
  ...}`` wrappers accepted), optional ``configs/metadata.json`` (or ``<path>/metadata.json``)
  whose ``network_data_format`` gives input channels, spatial shape and ``channel_def`` labels.
  2-D bundles run on batches of slices (padded to `pad_multiple`); 3-D bundles get the slices
  of one call stacked in order as a volume ``(1, C, H, W, D)`` and run through
  ``monai.inferers.sliding_window_inference`` with ``roi_size`` from the spec, the config's
  ``inferer#roi_size``, or the metadata's spatial shape. Logits -> softmax/argmax (sigmoid for
  one channel) -> label map -> one ROI per connected component per class, score = mean
  probability of the class over the component.
  NOTE: bundle configs are code (``$`` expressions are evaluated); load trusted bundles only.
  Slices are display-ready uint8 (windowed, resized, display-oriented), so a bundle trained on
  raw HU volumes in another orientation needs retraining or a matching ingest policy.
- ``kind="yolo"``: an ultralytics ``.pt`` (detect or segment). Masks come from the
  segmentation head (``retina_masks=True``, at image size) when present, else the box.

ROIs carry ``origin = "model:<name>@<version>"`` (version: the spec's, else the first 12 hex
of the weights' sha256) and ``score``. ultralytics is imported with ``YOLO_OFFLINE=1`` and
``YOLO_CONFIG_DIR`` defaulting to ``<cwd>/.medtrinity/ultralytics`` (set before import); we
never plot, so its font download (Arial.ttf) is never attempted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import numpy as np

from medtrinity_assets.records import ROI, RejectError, Slice2D
from medtrinity_assets.rois.components import labelled_components, roi_sort_key

GPU_POOL = "gpu"
GPU_TAG = "medtrinity/gpu"


class ExpertConfigError(ValueError):
    """An expert or routing rule is misconfigured (missing files, unknown expert, bad option)."""


def gpu_tags() -> dict[str, str]:
    """Tags marking a run/asset as GPU work (``{"medtrinity/gpu": "true"}``)."""
    return {GPU_TAG: "true"}


def gpu_op_tags() -> dict[str, str]:
    """Op tags: the GPU marker plus the concurrency key of the ``gpu`` pool.

    With Dagster >= 1.10 prefer ``@asset(pool=GPU_POOL, tags=gpu_tags())``.
    """
    return {**gpu_tags(), "dagster/concurrency_key": GPU_POOL}


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


@dataclass
class LoadedExpert:
    """A model held in the process-wide cache."""

    kind: str
    model: Any
    device: str
    version: str
    labels: dict[int, str]
    in_channels: int = 1
    roi_size: tuple[int, ...] = ()
    load_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


_CACHE: dict[tuple, LoadedExpert] = {}
_LOADS: dict[tuple, int] = {}
_LOCK = threading.Lock()


def model_load_count() -> int:
    """How many times a model was actually loaded from disk in this process."""
    return sum(_LOADS.values())


def clear_model_cache() -> None:
    """Forget every loaded model (tests, or to free GPU memory)."""
    with _LOCK:
        _CACHE.clear()
        _LOADS.clear()


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


# ---------------------------------------------------------------- MONAI bundles


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
    """The state dict inside a checkpoint (``model``/``state_dict``/``network`` wrappers and
    DistributedDataParallel ``module.`` prefixes removed)."""
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
    return LoadedExpert(
        "monai_bundle", network, device, spec.version or file_version(weights), labels, in_channels, tuple(roi_size)
    )


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
    """Write a minimal MONAI bundle (configs/inference.json, configs/metadata.json, models/model.pt).

    `network_def` is a ConfigParser dict (``{"_target_": "monai.networks.nets.UNet", ...}``),
    `labels` the output channels in order (index 0 = background).
    """
    import torch

    root = Path(bundle_dir)
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(parents=True, exist_ok=True)
    inference: dict[str, Any] = {"network_def": dict(network_def)}
    if roi_size:
        inference["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": list(roi_size), "sw_batch_size": 4}
    metadata = {
        "version": version,
        "network_data_format": {
            "inputs": {"image": {"type": "image", "num_channels": in_channels, "spatial_shape": list(spatial_shape)}},
            "outputs": {
                "pred": {
                    "type": "image",
                    "num_channels": len(labels),
                    "channel_def": {str(i): name for i, name in enumerate(labels)},
                }
            },
        },
    }
    (root / "configs" / "inference.json").write_text(json.dumps(inference, indent=2))
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2))
    torch.save(dict(state_dict), root / "models" / "model.pt")
    return root


# ---------------------------------------------------------------- YOLO


def prepare_ultralytics_env(config_dir: str | Path | None = None) -> Path:
    """Set YOLO_OFFLINE=1 and YOLO_CONFIG_DIR (default <cwd>/.medtrinity/ultralytics) before import."""
    os.environ["YOLO_OFFLINE"] = "1"
    target = Path(config_dir or os.environ.get("YOLO_CONFIG_DIR") or Path.cwd() / ".medtrinity" / "ultralytics")
    target.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(target)
    return target


def load_yolo(spec: ExpertSpec, device: str) -> LoadedExpert:
    """Load an ultralytics .pt (offline) and move it to `device`."""
    weights = Path(spec.path)
    if not weights.is_file():
        raise ExpertConfigError(f"YOLO weights {weights} not found")
    prepare_ultralytics_env()
    from ultralytics import YOLO

    model = YOLO(str(weights))
    model.to(device)
    names = getattr(model, "names", {}) or {}
    labels = spec_labels(spec) or {int(k): str(v) for k, v in dict(names).items()}
    return LoadedExpert("yolo", model, device, spec.version or file_version(weights), labels, 3)


def load_expert(spec: ExpertSpec) -> LoadedExpert:
    """The cached model of `spec`, loading it on first use (key: kind, path, device, mtime, half)."""
    device = resolve_device(spec.device)
    path = Path(spec.path)
    weights = path / "models" / "model.pt" if spec.kind == "monai_bundle" else path
    if not path.exists():
        raise ExpertConfigError(f"expert {spec.name!r}: {path} does not exist")
    stat = weights.stat() if weights.exists() else None
    key = (
        spec.kind,
        str(path.resolve()),
        device,
        stat.st_mtime_ns if stat else 0,
        stat.st_size if stat else 0,
        spec.half,
        spec.version,
        tuple(sorted(spec_labels(spec).items())),
        spec.in_channels,
        tuple(spec.roi_size),
    )
    with _LOCK:
        loaded = _CACHE.get(key)
        if loaded is None:
            started = time.perf_counter()
            loaded = load_monai_bundle(spec, device) if spec.kind == "monai_bundle" else load_yolo(spec, device)
            loaded.load_seconds = time.perf_counter() - started
            _CACHE[key] = loaded
            _LOADS[key] = _LOADS.get(key, 0) + 1
    return loaded


# ---------------------------------------------------------------- inference helpers


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
    """(B, C, ...) logits -> (label map int16, probability of the chosen class float32), on CPU."""
    import torch

    logits = logits.float()
    if logits.shape[1] == 1:
        prob = torch.sigmoid(logits[:, 0])
        labels = (prob > 0.5).to(torch.int16)
        conf = torch.where(labels.bool(), prob, 1 - prob)
    else:
        conf, labels = torch.softmax(logits, dim=1).max(dim=1)
        labels = labels.to(torch.int16)
    return labels.cpu().numpy(), conf.cpu().numpy()


def label_map_rois(
    label_map: np.ndarray,
    conf: np.ndarray,
    labels: Mapping[int, str],
    origin: str,
    min_area_px: int,
    score_threshold: float,
) -> list[ROI]:
    """One ROI per connected component of every nonzero class of a 2-D label map.

    score = mean of `conf` over the component; components under `min_area_px` pixels or
    `score_threshold` are dropped.
    """
    from scipy import ndimage

    rois: list[ROI] = []
    present = np.flatnonzero(np.bincount(label_map.ravel().astype(np.intp, copy=False)))
    for class_id in present[present > 0]:
        name = labels.get(int(class_id), f"class_{int(class_id)}")
        (x0, y0, x1, y1), labelled, k = labelled_components(label_map == class_id, min_area_px)
        if k == 0:
            continue
        flat = labelled.ravel()
        sums = np.bincount(flat, weights=conf[y0 : y1 + 1, x0 : x1 + 1].ravel(), minlength=k + 1)
        areas = np.bincount(flat, minlength=k + 1)
        for number, (rows, cols) in enumerate(ndimage.find_objects(labelled, max_label=k), start=1):
            score = float(sums[number] / areas[number])
            if score < score_threshold:
                continue
            mask = np.zeros(label_map.shape, dtype=bool)
            mask[y0 + rows.start : y0 + rows.stop, x0 + cols.start : x0 + cols.stop] = labelled[rows, cols] == number
            box = (x0 + cols.start, y0 + rows.start, x0 + cols.stop - 1, y0 + rows.stop - 1)
            rois.append(ROI(name, origin, box, mask, score, number))
    rois.sort(key=roi_sort_key)
    return rois


def _pad_to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    if multiple <= 1:
        return batch
    h, w = batch.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return batch
    return np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)))


def monai_predict_2d(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[list[ROI]]:
    """Batched 2-D inference: slices grouped by shape, `batch_size` at a time."""
    import torch

    out: list[list[ROI] | None] = [None] * len(slices)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for index, sl in enumerate(slices):
        by_shape.setdefault(check_pixels(sl).shape[:2], []).append(index)
    dtype = torch.float16 if spec.half and loaded.device == "cuda" else torch.float32
    for (height, width), indices in by_shape.items():
        for start in range(0, len(indices), max(spec.batch_size, 1)):
            chunk = indices[start : start + max(spec.batch_size, 1)]
            batch = np.stack(
                [scale_intensity(channels_first(slices[i].pixels, loaded.in_channels), spec.intensity) for i in chunk]
            )
            tensor = torch.from_numpy(_pad_to_multiple(batch, spec.pad_multiple)).to(loaded.device, dtype)
            with torch.inference_mode():
                logits = loaded.model(tensor)[..., :height, :width]
            label_maps, conf = logits_to_labels(logits)
            for k, i in enumerate(chunk):
                out[i] = label_map_rois(
                    label_maps[k], conf[k], loaded.labels, origin, spec.min_area_px, spec.score_threshold
                )
    return [rois if rois is not None else [] for rois in out]


def monai_predict_3d(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[list[ROI]]:
    """Stack the slices (in order) as one volume (1, C, H, W, D); sliding-window inference."""
    import torch
    from monai.inferers import sliding_window_inference

    shapes = {check_pixels(sl).shape[:2] for sl in slices}
    if len(shapes) != 1:
        raise RejectError("shape_mismatch", f"3-D expert needs slices of one shape, got {sorted(shapes)}")
    volume = np.stack(
        [scale_intensity(channels_first(sl.pixels, loaded.in_channels), spec.intensity) for sl in slices], axis=-1
    )
    dtype = torch.float16 if spec.half and loaded.device == "cuda" else torch.float32
    tensor = torch.from_numpy(volume[None]).to(loaded.device, dtype)
    with torch.inference_mode():
        logits = sliding_window_inference(
            tensor, loaded.roi_size, max(spec.sw_batch_size, 1), loaded.model, overlap=spec.overlap
        )
    label_map, conf = logits_to_labels(logits)
    return [
        label_map_rois(
            label_map[0, ..., d], conf[0, ..., d], loaded.labels, origin, spec.min_area_px, spec.score_threshold
        )
        for d in range(len(slices))
    ]


def yolo_image(px: np.ndarray) -> np.ndarray:
    """uint8 grey/RGB -> contiguous BGR (H, W, 3), the layout ultralytics expects for arrays."""
    if px.ndim == 2:
        return np.ascontiguousarray(np.repeat(px[:, :, None], 3, axis=2))
    return np.ascontiguousarray(px[:, :, ::-1])


def binary_masks(data: np.ndarray) -> np.ndarray:
    """Bool view of ultralytics mask data: uint8 0/1 (>= 8.3.x, reinterpreted without a copy),
    bool, or float probabilities/0-1 values (thresholded at 0.5, older releases)."""
    if data.dtype == bool:
        return data
    if data.dtype == np.uint8:
        return np.ascontiguousarray(data).view(bool)
    return data > 0.5


def stack_boxes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive boxes (N, 4) of a (N, H, W) bool stack, and which masks are non-empty (N,)."""
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    nonempty = rows.any(axis=1)
    height, width = masks.shape[1:]
    boxes = np.stack(
        [cols.argmax(1), rows.argmax(1), width - 1 - cols[:, ::-1].argmax(1), height - 1 - rows[:, ::-1].argmax(1)],
        axis=1,
    )
    return boxes, nonempty


def yolo_result_rois(result: Any, height: int, width: int, labels: Mapping[int, str], origin: str) -> list[ROI]:
    """ROIs of one ultralytics Result: segmentation mask when present, else the box rectangle."""
    from medtrinity_assets.rois.boxes import box_pixels

    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxy = boxes.xyxy.float().cpu().numpy()
    scores = boxes.conf.float().cpu().numpy()
    classes = boxes.cls.int().cpu().numpy()
    masks = mask_boxes = nonempty = None
    if getattr(result, "masks", None) is not None:
        data = result.masks.data.cpu().numpy()
        if data.shape[-2:] == (height, width):
            masks = binary_masks(data)
            mask_boxes, nonempty = stack_boxes(masks)
    rois = []
    for k in range(len(xyxy)):
        if masks is not None and nonempty[k]:
            mask, box = masks[k], tuple(int(v) for v in mask_boxes[k])
        else:  # detection model, or a mask lost at this resolution: the box itself
            box = box_pixels(xyxy[k].tolist(), "xyxy", 1.0, 1.0, width, height)
            mask = np.zeros((height, width), dtype=bool)
            mask[box[1] : box[3] + 1, box[0] : box[2] + 1] = True
        class_id = int(classes[k])
        rois.append(ROI(labels.get(class_id, f"class_{class_id}"), origin, box, mask, float(scores[k]), k + 1))
    rois.sort(key=roi_sort_key)
    return rois


def yolo_precision_args(half: bool) -> dict[str, Any]:
    """fp16 predict arguments: ``quantize=16`` on ultralytics that has it, else ``half=True``."""
    if not half:
        return {}
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def yolo_predict(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[list[ROI]]:
    """Batched ultralytics predict (`batch_size` images per call)."""
    out: list[list[ROI]] = []
    step = max(spec.batch_size, 1)
    for start in range(0, len(slices), step):
        chunk = slices[start : start + step]
        images = [yolo_image(check_pixels(sl)) for sl in chunk]
        results = loaded.model.predict(
            images,
            imgsz=spec.imgsz,
            conf=spec.score_threshold,
            device=loaded.device,
            retina_masks=True,
            verbose=False,
            save=False,
            **yolo_precision_args(spec.half and loaded.device == "cuda"),
        )
        for sl, result in zip(chunk, results):
            out.append(yolo_result_rois(result, sl.height, sl.width, loaded.labels, origin))
    return out


# ---------------------------------------------------------------- resource


def _matches(rule_value: str | None, values: Sequence[str]) -> bool:
    if rule_value is None:
        return True
    wanted = rule_value.strip().lower()
    return any(wanted == v.strip().lower() for v in values)


class ExpertModels(dg.ConfigurableResource):
    """Expert models by name, a routing table, batched prediction into ROIs."""

    experts: list[ExpertSpec] = []
    routing: list[RouteRule] = []

    def spec(self, name: str) -> ExpertSpec:
        """The spec called `name` (ExpertConfigError when unknown or misconfigured)."""
        for spec in self.experts:
            if spec.name == name:
                if spec.spatial_dims not in (2, 3):
                    raise ExpertConfigError(f"expert {name!r}: spatial_dims must be 2 or 3")
                if spec.kind == "yolo" and spec.spatial_dims != 2:
                    raise ExpertConfigError(f"expert {name!r}: YOLO experts are 2-D")
                return spec
        raise ExpertConfigError(f"unknown expert {name!r}; configured: {[s.name for s in self.experts]}")

    def route(self, modality: str, organs: Sequence[str] = (), labels: Sequence[str] = ()) -> str | None:
        """Name of the expert of the first matching rule, or None."""
        for rule in self.routing:
            modality_ok = rule.modality.strip() == "*" or _matches(rule.modality, [modality])
            if modality_ok and _matches(rule.organ, organs) and _matches(rule.label, labels):
                self.spec(rule.expert)
                return rule.expert
        return None

    def origin(self, name: str) -> str:
        """``model:<name>@<version>`` (loads the model to learn a hashed version)."""
        return f"model:{name}@{load_expert(self.spec(name)).version}"

    def predict(self, expert_name: str, slices: list[Slice2D]) -> list[list[ROI]]:
        """ROIs per slice from one expert, run in batches; models load once per process."""
        if not slices:
            return []
        spec = self.spec(expert_name)
        loaded = load_expert(spec)
        origin = f"model:{spec.name}@{loaded.version}"
        if spec.kind == "yolo":
            return yolo_predict(spec, loaded, slices, origin)
        if spec.spatial_dims == 3:
            return monai_predict_3d(spec, loaded, slices, origin)
        return monai_predict_2d(spec, loaded, slices, origin)

    @property
    def uses_gpu(self) -> bool:
        """Whether any configured expert would run on cuda."""
        try:
            return any(resolve_device(s.device) == "cuda" for s in self.experts)
        except ExpertConfigError:
            return True  # cuda requested explicitly

    def gpu_tags(self) -> dict[str, str]:
        """`gpu_tags()` when an expert runs on cuda, else {}."""
        return gpu_tags() if self.uses_gpu else {}


def load_expert_config(path: str | Path | None, default_device: str | None = None) -> ExpertModels:
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
    specs = [validate_config(ExpertSpec, e, raw, ExpertConfigError, top=f"expert '{e.get('name', f'#{i}')}'", prefix=where) for i, e in enumerate(experts)]
    rules = [validate_config(RouteRule, r, raw, ExpertConfigError, top=f"routing rule #{i}", prefix=where) for i, r in enumerate(raw.get("routing") or [])]
    resource = ExpertModels(experts=specs, routing=rules)
    names = [e.name for e in resource.experts]
    if len(set(names)) != len(names):
        raise ExpertConfigError(f"expert config {config_path}: duplicate expert names {names}")
    for rule in resource.routing:
        resource.spec(rule.expert)
    return resource
