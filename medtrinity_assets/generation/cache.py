"""Content-addressed cache of model calls, stored through the storage resource.

One JSON object per call at ``cache/mllm_calls/<k[:2]>/<k>.json`` where ``k`` is the SHA-256 of
the image bytes' hash, the exact prompt's hash, the model (backend, id, revision), the settings
that change an answer (decoding, temperature, seed, dtype) and the token limit. Shared by all runs,
partitions and deployments that use the same storage root. Only answers are cached, never
transport errors (those are retried on the next run).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from medtrinity_resources.mllm_backends import RawOutput

CACHE_PREFIX = "cache/mllm_calls"
IO_THREADS = 16


def content_hash(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""


def call_key(image_hash: str, prompt: str, identity: dict, max_new_tokens: int) -> str:
    """Key of one model call: image content, prompt, model id/revision, settings and token limit."""
    material = {
        "image": image_hash,
        "prompt": hashlib.sha256(prompt.encode()).hexdigest(),
        "backend": identity.get("backend", ""),
        "model": identity.get("model", ""),
        "revision": identity.get("revision", ""),
        "settings": identity.get("settings", {}),
        "max_new_tokens": int(max_new_tokens),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class CallCache:
    """get/put raw answers by call key in `storage` (a `MedtrinityStorage`); ``enabled=False`` is a no-op."""

    def __init__(self, storage, enabled: bool = True, prefix: str = CACHE_PREFIX) -> None:
        self.storage = storage
        self.enabled = enabled and storage is not None
        self.prefix = prefix

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key[:2]}/{key}.json"

    def _get(self, key: str) -> RawOutput | None:
        obj = self.object_key(key)
        if not self.storage.exists(obj):
            return None
        try:
            data = json.loads(self.storage.read_bytes(obj))
        except (ValueError, RuntimeError):
            return None  # a torn or unreadable entry is a miss; the call is made again and rewritten
        return RawOutput(**{k: data[k] for k in RawOutput.__dataclass_fields__ if k in data})

    def get_many(self, keys: list[str]) -> list[RawOutput | None]:
        if not self.enabled or not keys:
            return [None] * len(keys)
        with ThreadPoolExecutor(max_workers=min(IO_THREADS, len(keys))) as pool:
            return list(pool.map(self._get, keys))

    def put_many(self, items: list[tuple[str, RawOutput]]) -> int:
        """Store answers (errors skipped); returns how many were written."""
        todo = [(k, out) for k, out in items if not out.error]
        if not self.enabled or not todo:
            return 0
        with ThreadPoolExecutor(max_workers=min(IO_THREADS, len(todo))) as pool:
            list(pool.map(lambda kv: self.storage.write_bytes(self.object_key(kv[0]), json.dumps(asdict(kv[1])).encode()), todo))
        return len(todo)
