"""ultralytics YOLO experts (detect or segment ``.pt``): predict instance label maps.

Masks come from the segmentation head (``retina_masks=True``, at image size) when present, else
the detection box is filled. ultralytics is imported with ``YOLO_OFFLINE=1`` and
``YOLO_CONFIG_DIR`` defaulting to ``<cwd>/.medtrinity/ultralytics`` (set before import); we never
plot, so its font download is never attempted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medtrinity_assets.records import LabelMap, Slice2D

from .cache import LOADERS, PREDICTORS, LoadedExpert
from .config import ExpertConfigError, ExpertSpec, file_version, spec_labels
from .monai_bundle import check_pixels


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


LOADERS["yolo"] = load_yolo


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


def box_rectangle(xyxy: list[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Pixels covered by a float xyxy box (pixel centres inside), clipped to the image, inclusive."""
    x0 = min(max(int(np.ceil(xyxy[0] - 0.5)), 0), width - 1)
    y0 = min(max(int(np.ceil(xyxy[1] - 0.5)), 0), height - 1)
    x1 = min(max(int(np.floor(xyxy[2] - 0.5)), x0), width - 1)
    y1 = min(max(int(np.floor(xyxy[3] - 0.5)), y0), height - 1)
    return x0, y0, x1, y1


def result_label_map(result: Any, height: int, width: int, labels: Mapping[int, str], origin: str) -> LabelMap:
    """An instance LabelMap of one ultralytics Result (higher scores win where instances overlap)."""
    ids = np.zeros((height, width), dtype=np.int32)
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return LabelMap(ids, {}, origin, "instance")
    xyxy = boxes.xyxy.float().cpu().numpy()
    scores = boxes.conf.float().cpu().numpy()
    classes = boxes.cls.int().cpu().numpy()
    masks = None
    if getattr(result, "masks", None) is not None:
        data = result.masks.data.cpu().numpy()
        if data.shape[-2:] == (height, width):
            masks = binary_masks(data)
    names, kept = {}, {}
    for k in np.argsort(scores, kind="stable"):  # ascending: the best instance is painted last
        instance = int(k) + 1
        if masks is not None and masks[k].any():
            ids[masks[k]] = instance
        else:  # detection model, or a mask lost at this resolution: the box itself
            x0, y0, x1, y1 = box_rectangle(xyxy[k].tolist(), height, width)
            ids[y0 : y1 + 1, x0 : x1 + 1] = instance
        class_id = int(classes[k])
        names[instance] = labels.get(class_id, f"class_{class_id}")
        kept[instance] = float(scores[k])
    return LabelMap(ids, names, origin, "instance", scores=kept)


def yolo_precision_args(half: bool) -> dict[str, Any]:
    """fp16 predict arguments: ``quantize=16`` on ultralytics that has it, else ``half=True``."""
    if not half:
        return {}
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def predict(spec: ExpertSpec, loaded: LoadedExpert, slices: list[Slice2D], origin: str) -> list[LabelMap]:
    """Batched ultralytics predict (`batch_size` images per call)."""
    out: list[LabelMap] = []
    step = max(spec.batch_size, 1)
    for start in range(0, len(slices), step):
        chunk = slices[start : start + step]
        results = loaded.model.predict(
            [yolo_image(check_pixels(sl)) for sl in chunk],
            imgsz=spec.imgsz,
            conf=spec.score_threshold,
            device=loaded.device,
            retina_masks=True,
            verbose=False,
            save=False,
            **yolo_precision_args(spec.half and loaded.device == "cuda"),
        )
        for sl, result in zip(chunk, results):
            out.append(result_label_map(result, sl.height, sl.width, loaded.labels, origin))
    return out


PREDICTORS["yolo"] = predict
