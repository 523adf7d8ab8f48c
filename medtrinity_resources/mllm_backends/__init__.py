"""Backends of `medtrinity_resources.mllm.MLLMResource`, behind one
``generate(prompts, images, max_new_tokens)`` call.

Every module in this folder registers its backend class with `register`; the resource finds it
by the configured name. Adding a backend is one new module here.
"""

from .base import MLLMBackendError, RawOutput
from .registry import backend_class, backend_names, register

__all__ = ["MLLMBackendError", "RawOutput", "backend_class", "backend_names", "register"]
