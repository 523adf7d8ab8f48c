"""Backends of `medtrinity_resources.mllm.MLLMResource`: local transformers models and
OpenAI-compatible endpoints, behind one `generate(prompts, images)` call."""

from .base import MLLMBackendError, RawOutput

__all__ = ["MLLMBackendError", "RawOutput"]
