"""MLLMResource: a thin client that turns prompts (+ overlay PNGs) into raw model answers.

`generate(prompts, images)` -> one `RawOutput` per prompt (text, token counts, truncated flag,
or the error that prevented an answer). The backend is chosen by name (``backend``): every module
in `medtrinity_resources/mllm_backends/` registers one (``transformers``, ``openai``, ...).
``grounded_composer`` means "no model": the caption stage writes from the facts itself.

Prompt building, section parsing, checks, retries, the call cache and accounting live in
`medtrinity_assets.generation`, which calls this resource.
"""

from __future__ import annotations

import threading

import dagster as dg
from pydantic import Field

from medtrinity_resources.mllm_backends import MLLMBackendError, RawOutput, backend_class

NO_MODEL = "grounded_composer"

_INSTANCES: dict[str, object] = {}
_LOCK = threading.Lock()


class MLLMResource(dg.ConfigurableResource):
    """Generation settings; every field can be set by run config or `dg.EnvVar` (see README)."""

    backend: str = Field(NO_MODEL, description="registered backend name (transformers, openai) or grounded_composer")
    model_path: str = Field("", description="transformers: local Hugging Face model directory")
    model_name: str = Field("", description="openai: served model id")
    model_revision: str = Field("", description="revision recorded with every answer and in the call-cache key")
    device: str = Field("cpu", description="cpu | cuda | cuda:N | auto")
    device_map: str = Field("", description="transformers device_map (e.g. auto to shard over GPUs); empty: one device")
    dtype: str = Field("auto", description="auto (bfloat16 on GPU, float32 on CPU) | bfloat16 | float16 | float32")
    trust_remote_code: bool = Field(False, description="allow model code shipped in the checkpoint (some InternVL)")
    batch_size: int = Field(4, description="transformers: prompts per generate call")
    max_new_tokens: int = Field(1024, description="answer token limit (five sections plus a description)")
    truncation_max_new_tokens: int = Field(0, description="limit for the one re-ask of a truncated answer (0: 2x max_new_tokens)")
    temperature: float = Field(0.0, description="0 = greedy")
    seed: int = 0
    endpoint_url: str = Field("", description="openai: http://host:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="env var holding the key; absent is fine for local servers")
    max_concurrency: int = Field(64, description="openai: requests in flight")
    timeout_s: float = Field(300.0)
    transport_retries: int = Field(3, description="openai: retries of 429/5xx/timeouts/connection errors")
    retry_backoff_s: float = Field(1.0)
    structured_output: bool = Field(True, description="openai: send the caller's JSON schema as response_format (vLLM guided decoding); retried without it when the server refuses it")

    @property
    def calls_model(self) -> bool:
        return self.backend != NO_MODEL

    @property
    def checkpoint_size(self) -> int:
        """Prompts per `generate` call the caller should checkpoint after (one batch / one wave)."""
        concurrent = self.calls_model and getattr(backend_class(self.backend), "concurrent", False)
        return self.max_concurrency if concurrent else self.batch_size

    def _client(self):
        if not self.calls_model:
            raise MLLMBackendError(f"backend {NO_MODEL!r} does not call a model")
        key = self.model_dump_json()
        with _LOCK:
            if key not in _INSTANCES:
                _INSTANCES[key] = backend_class(self.backend)(self)
            return _INSTANCES[key]

    def identity(self) -> dict:
        """What determines an answer besides prompt and image: backend, model, revision, settings.

        Computed without loading the model (the call cache consults it before any call)."""
        if not self.calls_model:
            return {"backend": NO_MODEL, "model": NO_MODEL, "revision": "", "settings": {}}
        return backend_class(self.backend).identity(self)

    def generate(
        self,
        prompts: list[str],
        images: list[bytes | None],
        max_new_tokens: int | None = None,
        json_schema: dict | None = None,
    ) -> list[RawOutput]:
        """One RawOutput per prompt, same order; a failed request is a RawOutput with ``error``.

        `json_schema`: the answer's JSON schema, for backends that constrain decoding (served);
        others ignore it, so callers parse either form."""
        if not prompts:
            return []
        limit = int(max_new_tokens or self.max_new_tokens)
        return self._client().generate(list(prompts), list(images), limit, json_schema=json_schema)

    def describe_text(self, prompts: list[str]) -> list[str]:
        """Plain text answers to text-only prompts; ``""`` where a prompt got none.

        `MLLMBackendError` when no model is configured or none got an answer."""
        if not prompts:
            return []
        if not self.calls_model:
            raise MLLMBackendError(
                "describe_text needs a model: configure backend 'transformers' or 'openai' "
                "(the grounded composer only writes captions from facts)"
            )
        outs = self.generate(prompts, [None] * len(prompts))
        if all(o.error for o in outs):
            raise MLLMBackendError(f"none of {len(prompts)} prompts got an answer ({outs[0].error})")
        return [o.text if not o.error else "" for o in outs]
