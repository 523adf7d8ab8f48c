"""OpenAI-compatible chat-completions endpoints (vLLM, SGLang, hosted APIs) over plain HTTP.

One POST per prompt to ``<endpoint>/chat/completions`` with the overlay image inline as a
``data:image/png;base64`` URL; at most `max_concurrency` requests in flight (thread pool);
429, 5xx, timeouts and connection errors are retried with exponential backoff (``Retry-After``
honoured); other 4xx answers mean a configuration problem and raise `MLLMBackendError`.
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

MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0


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


def chat_payload(model: str, prompt: str, image_png: bytes | None, max_tokens: int, temperature: float) -> dict:
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


def backoff_seconds(attempt: int, base_s: float, retry_after: str | None) -> float:
    """Exponential backoff (``base * 2**attempt``, capped) or the server's Retry-After seconds."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    return min(base_s * (2**attempt), MAX_BACKOFF_S)


class OpenAICompatBackend:
    """`generate(prompts, images)` against an OpenAI-compatible chat-completions endpoint."""

    name = "openai"

    def __init__(
        self,
        endpoint_url: str,
        model_name: str,
        api_key_env: str,
        max_new_tokens: int,
        temperature: float,
        max_concurrency: int,
        timeout_s: float,
        max_retries: int,
        retry_backoff_s: float,
    ) -> None:
        if not model_name:
            raise MLLMBackendError("backend 'openai' needs model_name (the served model id)")
        self.url = chat_completions_url(endpoint_url)
        self.model = model_name
        self.model_version = ""
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout_s = float(timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff_s = float(retry_backoff_s)
        key = os.environ.get(api_key_env or "", "")
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.settings = {
            "decoding": "sampling" if self.temperature > 0 else "greedy",
            "temperature": self.temperature,
            "max_tokens": self.max_new_tokens,
            "endpoint": self.url,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "transport_retries": self.max_retries,
        }
        self._lock = threading.Lock()

    def complete(self, client: httpx.Client, prompt: str, image_png: bytes | None) -> RawOutput:
        """One prompt, retried on 429/5xx/timeouts/connection errors; RawOutput.error once retries run out."""
        payload = chat_payload(self.model, prompt, image_png, self.max_new_tokens, self.temperature)
        error = ""
        for attempt in range(self.max_retries + 1):
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
                    if out.model_version:
                        with self._lock:
                            self.model_version = out.model_version
                    return out
                if response.status_code != 429 and response.status_code < 500:
                    raise MLLMBackendError(f"{self.url} answered HTTP {response.status_code}: {response.text[:300]}")
                error = f"http_{response.status_code}"
                retry_after = response.headers.get("retry-after")
            if attempt < self.max_retries:
                time.sleep(backoff_seconds(attempt, self.retry_backoff_s, retry_after))
        return RawOutput(error=error)

    def generate(self, prompts: list[str], images: list[bytes | None]) -> list[RawOutput]:
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        with (
            httpx.Client(timeout=httpx.Timeout(self.timeout_s), limits=limits) as client,
            ThreadPoolExecutor(max_workers=self.max_concurrency) as pool,
        ):
            futures = [pool.submit(self.complete, client, p, img) for p, img in zip(prompts, images, strict=True)]
            outs = [f.result() for f in futures]
        if outs and all(o.error == "connection" for o in outs):
            raise MLLMBackendError(f"{self.url} unreachable: every request failed to connect")
        return outs
