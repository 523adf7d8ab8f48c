"""Backends register themselves by name; `backend_class` imports every module of this package once."""

from __future__ import annotations

import importlib
import pkgutil

from .base import MLLMBackendError

_REGISTRY: dict[str, type] = {}
_SKIP = {"__init__", "base", "registry"}
_loaded = False


def register(name: str):
    """Class decorator: ``@register("openai")`` makes the class the backend called ``name``."""

    def wrap(cls: type) -> type:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules(_package_path()):
        if info.name not in _SKIP:
            importlib.import_module(f"{__package__}.{info.name}")
    _loaded = True


def _package_path() -> list[str]:
    import medtrinity_resources.mllm_backends as pkg

    return list(pkg.__path__)


def backend_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def backend_class(name: str) -> type:
    _load_all()
    if name not in _REGISTRY:
        raise MLLMBackendError(f"unknown MLLM backend {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
