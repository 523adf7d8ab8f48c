"""OpenAI-compatible chat-completions endpoints (vLLM, SGLang, hosted APIs) over plain HTTP.

One POST per prompt to ``<endpoint>/chat/completions`` with the overlay image inline as a
``data:image/png;base64`` URL; at most `max_concurrency` requests in flight (thread pool);
429, 5xx, timeouts and connection errors are retried with exponential backoff (``Retry-After``
honoured); 401/403/404 mean a configuration problem and raise `MLLMBackendError`; any other 4xx
(e.g. 400 "maximum context length") fails that request only (``RawOutput.error`` ``http_400``).
Token counts come from the answer's ``usage`` field.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .base import MLLMBackendError, RawOutput
from .registry import register

MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0
CONFIG_ERRORS = (401, 403, 404)


def chat_completions_url(endpoint_url: str) -> str:
    """``http://host:8000`` / ``.../v1`` / ``.../v1/chat/completions`` -> the chat-completions URL."""
    url = endpoint_url.strip().rstrip("/")
    if not url:
        raise MLLMBackendError("backend 'openai' needs endpoint_url (e.g. http://127.0.0.1:8000/v1)")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def image_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chat_payload(
    model: str, prompt: str, image_png: bytes | None, max_tokens: int, temperature: float, seed: int | None = None
) -> dict:
    """Request body: one user message holding the image (if any) then the prompt text."""
    content: list[dict[str, Any]] = []
    if image_png is not None:
        content.append({"type": "image_url", "image_url": {"url": image_data_url(image_png)}})
    content.append({"type": "text", "text": prompt})
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "temperature": temperature,
        "max_tokens": max_tokens,
        **({"seed": seed} if seed is not None else {}),
    }


def answer_text(message: dict) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def parse_response(data: dict) -> RawOutput:
    """RawOutput from a chat-completions JSON answer."""
    choices = data.get("choices") or []
    if not choices:
        return RawOutput(error="no_choices")
    choice = choices[0]
    usage = data.get("usage") or {}
    served = str(data.get("model") or "")
    fingerprint = data.get("system_fingerprint")
    return RawOutput(
        text=answer_text(choice.get("message") or {}).strip(),
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        truncated=choice.get("finish_reason") == "length",
        model_version=served + (f"@{fingerprint}" if fingerprint else ""),
    )


def refuses_schema(error_text: str) -> bool:
    """Whether a 400 answer is about the structured-output request (not e.g. the context length)."""
    text = error_text.lower()
    return any(word in text for word in ("response_format", "json_schema", "guided", "structured output"))


def backoff_seconds(attempt: int, base_s: float, retry_after: str | None) -> float:
    """Exponential backoff (``base * 2**attempt``, capped) or the server's Retry-After seconds."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    return min(base_s * (2**attempt), MAX_BACKOFF_S)


@register("openai")
class OpenAICompatBackend:
    """`generate(prompts, images, max_new_tokens)` against an OpenAI-compatible chat-completions endpoint."""

    model_field = "model_name"  # MEDTRINITY_MLLM_MODEL is the served model id
    concurrent = True  # requests in flight (max_concurrency), not batches

    @staticmethod
    def identity(cfg) -> dict:
        if not cfg.model_name:
            raise MLLMBackendError("backend 'openai' needs model_name (the served model id)")
        chat_completions_url(cfg.endpoint_url)
        settings = {"decoding": "sampling" if cfg.temperature > 0 else "greedy", "temperature": float(cfg.temperature)}
        settings["seed"] = int(cfg.seed)
        settings["structured_output"] = bool(cfg.structured_output)
        return {"backend": "openai", "model": cfg.model_name, "revision": cfg.model_revision, "settings": settings}

    def __init__(self, cfg) -> None:
        ident = self.identity(cfg)
        self.url = chat_completions_url(cfg.endpoint_url)
        self.model = cfg.model_name
        self.model_version = cfg.model_revision
        self.temperature = float(cfg.temperature)
        self.seed = int(cfg.seed)
        self.max_concurrency = max(1, int(cfg.max_concurrency))
        self.timeout_s = float(cfg.timeout_s)
        self.max_retries = max(0, int(cfg.transport_retries))
        self.retry_backoff_s = float(cfg.retry_backoff_s)
        key = os.environ.get(cfg.api_key_env or "", "")
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.settings = {
            **ident["settings"],
            "endpoint": self.url,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "transport_retries": self.max_retries,
        }
        self.structured = bool(cfg.structured_output)
        self._lock = threading.Lock()

    def complete(
        self, client: httpx.Client, prompt: str, image_png: bytes | None, max_tokens: int, json_schema: dict | None = None
    ) -> RawOutput:
        """One prompt, retried on 429/5xx/timeouts/connection errors; RawOutput.error once retries run out.

        With a schema (and ``structured_output``) the body carries ``response_format`` (json_schema, as
        vLLM's OpenAI server accepts it); a server that answers 400 naming it is asked again without
        it (not counted as a retry), and no later request of this client sends it."""
        payload = chat_payload(self.model, prompt, image_png, max_tokens, self.temperature, self.seed)
        if json_schema is not None and self.structured:
            payload["response_format"] = {"type": "json_schema", "json_schema": {"name": "caption", "schema": json_schema}}
        error, attempt = "", 0
        while True:
            retry_after = None
            try:
                response = client.post(self.url, json=payload, headers=self.headers)
            except httpx.TimeoutException:
                error = "timeout"
            except httpx.TransportError:
                error = "connection"
            else:
                if response.status_code == 200:
                    out = parse_response(response.json())
                    out.model_version = out.model_version or self.model_version
                    return out
                if response.status_code in CONFIG_ERRORS:
                    raise MLLMBackendError(f"{self.url} answered HTTP {response.status_code}: {response.text[:300]}")
                if response.status_code == 400 and "response_format" in payload and refuses_schema(response.text):
                    with self._lock:
                        self.structured = False  # the server does not take the schema: plain text from now on
                    payload.pop("response_format")
                    continue
                if response.status_code != 429 and response.status_code < 500:
                    return RawOutput(error=f"http_{response.status_code}", detail=response.text[:300])
                error = f"http_{response.status_code}"
                retry_after = response.headers.get("retry-after")
            if attempt >= self.max_retries:
                return RawOutput(error=error)
            time.sleep(backoff_seconds(attempt, self.retry_backoff_s, retry_after))
            attempt += 1

    def generate(
        self, prompts: list[str], images: list[bytes | None], max_new_tokens: int, json_schema: dict | None = None
    ) -> list[RawOutput]:
        workers = max(1, min(self.max_concurrency, len(prompts)))
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        with (
            httpx.Client(timeout=httpx.Timeout(self.timeout_s), limits=limits) as client,
            ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            futures = [pool.submit(self.complete, client, p, img, max_new_tokens, json_schema) for p, img in zip(prompts, images, strict=True)]
            outs = [f.result() for f in futures]
        if outs and all(o.error == "connection" for o in outs):
            raise MLLMBackendError(f"{self.url} unreachable: every request failed to connect")
        return outs
