"""Model kinds' loaders and predictors, and the loaded models, held once per process
(key: kind, path, device, file identity, options)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ExpertConfigError, ExpertSpec, resolve_device, spec_labels


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


#: kind -> loader (spec, device) -> LoadedExpert, and kind -> predictor (spec, loaded, slices, origin)
#: -> list[LabelMap]; each model kind's module registers both (a new kind is one module)
LOADERS: dict[str, Callable[[ExpertSpec, str], LoadedExpert]] = {}
PREDICTORS: dict[str, Callable[..., list]] = {}
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


def weights_file(spec: ExpertSpec) -> Path:
    path = Path(spec.path)
    return path / "models" / "model.pt" if spec.kind == "monai_bundle" else path


def load_expert(spec: ExpertSpec) -> LoadedExpert:
    """The cached model of `spec`, loading it on first use."""
    device = resolve_device(spec.device)
    path = Path(spec.path)
    if not path.exists():
        raise ExpertConfigError(f"expert {spec.name!r}: {path} does not exist")
    weights = weights_file(spec)
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
            loaded = LOADERS[spec.kind](spec, device)
            loaded.load_seconds = time.perf_counter() - started
            _CACHE[key] = loaded
            _LOADS[key] = _LOADS.get(key, 0) + 1
    return loaded
