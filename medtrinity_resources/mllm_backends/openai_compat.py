"""OpenAI-compatible chat-completions endpoints (vLLM, SGLang, hosted APIs) through an async client.

One POST per prompt to ``<endpoint>/chat/completions`` with the overlay image inline as a
``data:image/png;base64`` URL. Requests run as asyncio tasks on an ``aiohttp`` session (kept open
across calls) on one event-loop thread per backend; a semaphore keeps at most `max_concurrency` in
flight (a request backing off keeps its slot). ``aiohttp`` rather than ``httpx.AsyncClient`` (which
the official ``openai`` client uses): at 256 requests in flight httpx's async pool measured ~10x
slower on the same payloads (``bench/caption_bench.py`` prints both).

429, 5xx, timeouts and connection errors are retried up to `transport_retries` times: after the
server's ``Retry-After`` (seconds or an HTTP date, capped at 60 s, plus a little jitter) when it sends
one, else after a jittered exponential backoff. 401/403/404 mean a configuration problem and raise
`MLLMBackendError`; any other 4xx (e.g. 400 "maximum context length") fails that request only
(``RawOutput.error`` ``http_400``, the server's words in ``detail``). With a JSON schema the request
carries ``response_format`` (json_schema, as vLLM's OpenAI server accepts it); a server that refuses it
is asked again in plain text, and this client sends no schema afterwards. Token counts come from the
answer's ``usage`` field.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import email.utils
import json
import os
import random
import threading
import time
import weakref
from collections.abc import Coroutine
from typing import Any

import aiohttp

from .base import MLLMBackendError, RawOutput
from .registry import register

MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0
CONFIG_ERRORS = (401, 403, 404)
SCHEMA_REFUSAL_STATUS = (400, 422)


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
    model: str,
    prompt: str,
    image_png: bytes | None,
    max_tokens: int,
    temperature: float,
    seed: int | None = None,
    image_url: str | None = None,
) -> dict:
    """Request body: one user message holding the image (if any) then the prompt text.

    `image_url` stands in for the image's data URL (`request_body` splices the image in later)."""
    content: list[dict[str, Any]] = []
    if image_png is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url or image_data_url(image_png)}})
    content.append({"type": "text", "text": prompt})
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "temperature": temperature,
        "max_tokens": max_tokens,
        **({"seed": seed} if seed is not None else {}),
    }


IMAGE_SLOT = "\x01overlay-image\x01"  # stands for the data URL while the rest of the body is JSON-encoded
_IMAGE_SLOT_JSON = json.dumps(IMAGE_SLOT).encode()


def request_body(payload: dict, image_png: bytes | None) -> bytes:
    """A payload built with ``image_url=IMAGE_SLOT`` as JSON bytes with the image's data URL spliced in:
    the base64 needs no escaping, so the large string is neither scanned by the JSON encoder nor copied
    to text and back. Byte-identical to ``json.dumps(chat_payload(...)).encode()``."""
    encoded = json.dumps(payload).encode()
    if image_png is None:
        return encoded
    head, tail = encoded.split(_IMAGE_SLOT_JSON, 1)
    return b"".join((head, b'"data:image/png;base64,', base64.b64encode(image_png), b'"', tail))


def response_format(json_schema: dict) -> dict:
    """``response_format`` asking for answers that match `json_schema` (OpenAI and vLLM spelling)."""
    return {"type": "json_schema", "json_schema": {"name": "caption", "schema": json_schema, "strict": True}}


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


def retry_after_seconds(header: str | None) -> float | None:
    """A ``Retry-After`` header (delta seconds or an HTTP date) as seconds from now; None if absent or unreadable."""
    if not header:
        return None
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def backoff_seconds(attempt: int, base_s: float, retry_after: str | None, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry `attempt` (0-based).

    With a ``Retry-After``: that long (capped at `MAX_RETRY_AFTER_S`) plus up to 10% (at most
    `base_s`) of jitter, never less. Without: equal-jitter exponential backoff, between half and all
    of ``base_s * 2**attempt`` (capped at `MAX_BACKOFF_S`), so clients refused together spread out."""
    rng = rng or random
    after = retry_after_seconds(retry_after)
    if after is not None:
        after = min(after, MAX_RETRY_AFTER_S)
        return after + rng.uniform(0.0, min(0.1 * after, base_s))
    nominal = min(base_s * (2**attempt), MAX_BACKOFF_S)
    return nominal / 2 + rng.uniform(0.0, nominal / 2)


class LoopThread:
    """One asyncio event loop on a daemon thread; `run` blocks the caller until a coroutine is done.

    Works the same from a Dagster step, a plain script or a thread that has its own running loop.
    A forked child (the parent's thread does not survive a fork) starts its own loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self.loop: asyncio.AbstractEventLoop | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="mllm-openai-loop", daemon=True).start()
                self.loop, self._pid = loop, os.getpid()
            return self.loop

    def run(self, coro: Coroutine, timeout: float | None = None) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise


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
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.settings = {
            **ident["settings"],
            "endpoint": self.url,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "transport_retries": self.max_retries,
        }
        self.structured = bool(cfg.structured_output)
        self._thread = LoopThread()
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._session_pid = -1
        _LIVE.add(self)

    def _open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """The session and the in-flight semaphore of this process's loop (called on the loop thread)."""
        if self._session is None or self._session.closed or self._session_pid != os.getpid():
            connector = aiohttp.TCPConnector(limit=self.max_concurrency, limit_per_host=0)
            self._session = aiohttp.ClientSession(connector=connector, headers=self.headers)
            self._slots = asyncio.Semaphore(self.max_concurrency)
            self._session_pid = os.getpid()
        return self._session, self._slots  # type: ignore[return-value]

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> tuple[int, bytes, str | None]:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with session.post(self.url, data=body, timeout=timeout, headers={"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.read(), resp.headers.get("Retry-After")

    async def complete(self, prompt: str, image_png: bytes | None, max_tokens: int, json_schema: dict | None = None) -> RawOutput:
        """One prompt, retried on 429/5xx/timeouts/connection errors; RawOutput.error once retries run out.

        A server that answers 400/422 naming the schema is asked again without it (not counted as a
        retry), and no later request of this client sends it."""
        session, slots = self._open()
        payload = chat_payload(self.model, prompt, image_png, max_tokens, self.temperature, self.seed, IMAGE_SLOT)
        if json_schema is not None and self.structured:
            payload["response_format"] = response_format(json_schema)
        body = request_body(payload, image_png)
        attempt = 0
        async with slots:
            while True:
                retry_after = None
                try:
                    status, answer, retry_after = await self._post(session, body)
                except TimeoutError:
                    error = "timeout"
                except aiohttp.ClientError:
                    error = "connection"
                else:
                    if status == 200:
                        return self._answer(answer)
                    text = answer.decode("utf-8", "replace")
                    if status in CONFIG_ERRORS:
                        raise MLLMBackendError(f"{self.url} answered HTTP {status}: {text[:300]}")
                    if status in SCHEMA_REFUSAL_STATUS and "response_format" in payload and refuses_schema(text):
                        self.structured = False  # the server does not take the schema: plain text from now on
                        payload.pop("response_format")
                        body = request_body(payload, image_png)
                        continue
                    if status != 429 and status < 500:
                        return RawOutput(error=f"http_{status}", detail=text[:300])
                    error = f"http_{status}"
                if attempt >= self.max_retries:
                    return RawOutput(error=error)
                await asyncio.sleep(backoff_seconds(attempt, self.retry_backoff_s, retry_after))
                attempt += 1

    def _answer(self, body: bytes) -> RawOutput:
        try:
            out = parse_response(json.loads(body))
        except (ValueError, TypeError, AttributeError):
            return RawOutput(error="invalid_response", detail=body[:300].decode("utf-8", "replace"))
        out.model_version = out.model_version or self.model_version
        return out

    async def agenerate(
        self, prompts: list[str], images: list[bytes | None], max_new_tokens: int, json_schema: dict | None = None
    ) -> list[RawOutput]:
        """All prompts as concurrent tasks (the semaphore bounds them); a configuration error cancels the rest."""
        tasks = [
            asyncio.ensure_future(self.complete(p, img, max_new_tokens, json_schema))
            for p, img in zip(prompts, images, strict=True)
        ]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def generate(
        self, prompts: list[str], images: list[bytes | None], max_new_tokens: int, json_schema: dict | None = None
    ) -> list[RawOutput]:
        outs = self._thread.run(self.agenerate(prompts, images, max_new_tokens, json_schema))
        if outs and all(o.error == "connection" for o in outs):
            raise MLLMBackendError(f"{self.url} unreachable: every request failed to connect")
        return outs

    def close(self) -> None:
        """Close the HTTP session (a later `generate` opens a new one)."""
        if self._session is not None and not self._session.closed and self._session_pid == os.getpid():
            self._thread.run(self._session.close(), timeout=5.0)
        self._session = None


_LIVE: weakref.WeakSet[OpenAICompatBackend] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close open sessions at interpreter exit (no "Unclosed client session" noise in step logs)."""
    for backend in list(_LIVE):
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
