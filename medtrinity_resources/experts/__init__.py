"""Expert segmentation models (MONAI bundles, ultralytics YOLO) behind one thin resource.

`ExpertModels.predict(expert, slices) -> list[LabelMap]`: a label map per slice; ROIs are made
from them by `medtrinity_assets.rois.experts`. A new model kind is one module here that
registers its loader and predictor in `cache.LOADERS` / `cache.PREDICTORS` and is imported below.
Slices are display-ready uint8 (windowed, resized, display-oriented), so a bundle trained on raw
HU volumes in another orientation needs retraining or a matching ingest policy.
"""

from . import monai_bundle, yolo  # noqa: F401 - registers the model kinds
from .cache import LoadedExpert, clear_model_cache, load_expert, model_load_count
from .config import ExpertConfigError, ExpertSpec, RouteRule, file_version, resolve_device
from .resource import GPU_TAG, ExpertModels, load_expert_config
from .yolo import prepare_ultralytics_env, yolo_image

__all__ = [
    "GPU_TAG",
    "ExpertConfigError",
    "ExpertModels",
    "ExpertSpec",
    "LoadedExpert",
    "RouteRule",
    "clear_model_cache",
    "file_version",
    "load_expert",
    "load_expert_config",
    "model_load_count",
    "prepare_ultralytics_env",
    "resolve_device",
    "yolo_image",
]
