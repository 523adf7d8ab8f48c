"""Named resource sets, one per deployment, selected by MEDTRINITY_DEPLOYMENT (see settings.py).

- ``local``: storage in a local directory, embedded chromadb, models on the CPU (MEDTRINITY_DEVICE
  overrides). What `medtrinity demo` and the tests use.
- ``s3``: storage under ``s3://bucket/prefix`` through dagster-aws's S3Resource (credentials from the
  usual AWS chain; MEDTRINITY_S3_ENDPOINT_URL for MinIO), CPU models. The Docker Compose stack.
- ``gpu``: ``s3`` with models on ``cuda``; dataset runs carry the GPU tag and the expert and MLLM
  steps share the ``gpu`` pool (defs/context.py).

A value given by an environment variable reaches the resource as ``dg.EnvVar(<name>)``: resolved
where the run executes and shown by name (not value) in the UI. Unset variables take the documented
default. A set that cannot work fails at load, naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from medtrinity_assets import settings
from medtrinity_resources.embedder import SentenceEmbedder
from medtrinity_resources.experts import load_expert_config
from medtrinity_resources.io_manager import ParquetManifestIOManager
from medtrinity_resources.judge import CaptionJudgeResource
from medtrinity_resources.knowledge_store import KnowledgeStore
from medtrinity_resources.mllm import NO_MODEL, MLLMResource
from medtrinity_resources.mllm_backends import MLLMBackendError, backend_class
from medtrinity_resources.storage import MedtrinityStorage


def configured(name: str, default: str) -> str | EnvVar:
    """``EnvVar(name)`` when the variable is set, else `default`."""
    return EnvVar(name) if settings.is_set(name) else default


#: MLLMResource fields settable by environment: field -> (variable, kind)
MLLM_ENV: dict[str, tuple[str, str]] = {
    "model_revision": ("MEDTRINITY_MLLM_REVISION", "str"),
    "dtype": ("MEDTRINITY_MLLM_DTYPE", "str"),
    "device_map": ("MEDTRINITY_MLLM_DEVICE_MAP", "str"),
    "api_key_env": ("MEDTRINITY_MLLM_API_KEY_ENV", "str"),
    "batch_size": ("MEDTRINITY_MLLM_BATCH_SIZE", "int"),
    "max_new_tokens": ("MEDTRINITY_MLLM_MAX_NEW_TOKENS", "int"),
    "truncation_max_new_tokens": ("MEDTRINITY_MLLM_TRUNCATION_MAX_NEW_TOKENS", "int"),
    "max_concurrency": ("MEDTRINITY_MLLM_CONCURRENCY", "int"),
    "transport_retries": ("MEDTRINITY_MLLM_TRANSPORT_RETRIES", "int"),
    "seed": ("MEDTRINITY_MLLM_SEED", "int"),
    "timeout_s": ("MEDTRINITY_MLLM_TIMEOUT_S", "float"),
    "temperature": ("MEDTRINITY_MLLM_TEMPERATURE", "float"),
    "retry_backoff_s": ("MEDTRINITY_MLLM_RETRY_BACKOFF_S", "float"),
    "trust_remote_code": ("MEDTRINITY_MLLM_TRUST_REMOTE_CODE", "bool"),
    "structured_output": ("MEDTRINITY_MLLM_STRUCTURED_OUTPUT", "bool"),
}


def mllm_env_settings() -> dict:
    """The MLLM settings given by environment: strings and integers as `dg.EnvVar` (shown by name),
    floats and switches parsed here (Dagster's EnvVar has no float/bool form)."""
    out: dict = {}
    for field, (name, kind) in MLLM_ENV.items():
        if not settings.is_set(name):
            continue
        if kind == "str":
            out[field] = EnvVar(name)
        elif kind == "int":
            out[field] = EnvVar.int(name)
        elif kind == "float":
            out[field] = float(settings.env(name))
        else:
            out[field] = settings.switch(name)
    return out


def seed_mllm(device: str) -> MLLMResource:
    """The strong model that captions the seed subset (stage 1), configured apart from `mllm`."""
    backend = settings.env("MEDTRINITY_SEED_MLLM_BACKEND", "openai")
    model = configured("MEDTRINITY_SEED_MLLM_MODEL", "")
    return MLLMResource(
        backend=backend,
        model_path=model if backend == "transformers" else "",
        model_name=model if backend == "openai" else "",
        endpoint_url=configured("MEDTRINITY_SEED_MLLM_ENDPOINT", ""),
        api_key_env=configured("MEDTRINITY_SEED_MLLM_API_KEY_ENV", "OPENAI_API_KEY"),
        max_concurrency=EnvVar.int("MEDTRINITY_SEED_MLLM_CONCURRENCY") if settings.is_set("MEDTRINITY_SEED_MLLM_CONCURRENCY") else 64,
        device=configured("MEDTRINITY_DEVICE", device),
    )


def local_storage() -> MedtrinityStorage:
    root = settings.storage_root()
    if root.startswith("s3://"):
        raise settings.SettingsError(
            f"MEDTRINITY_STORAGE={root} is on S3 but MEDTRINITY_DEPLOYMENT is 'local': set MEDTRINITY_DEPLOYMENT=s3 (or gpu)"
        )
    return MedtrinityStorage(root=configured("MEDTRINITY_STORAGE", str(Path(root))))


def s3_storage() -> MedtrinityStorage:
    root = settings.env("MEDTRINITY_STORAGE")
    if not root.startswith("s3://") or not root[len("s3://") :].strip("/"):
        raise settings.SettingsError(
            f"MEDTRINITY_DEPLOYMENT={settings.deployment()} needs MEDTRINITY_STORAGE=s3://bucket/prefix (got {root!r})"
        )
    endpoint = EnvVar("MEDTRINITY_S3_ENDPOINT_URL") if settings.is_set("MEDTRINITY_S3_ENDPOINT_URL") else None
    return MedtrinityStorage(root=EnvVar("MEDTRINITY_STORAGE"), s3=S3Resource(endpoint_url=endpoint))


def mllm_model(backend: str, model) -> dict:
    """MEDTRINITY_MLLM_MODEL as the field the backend reads: its class's `model_field` (default
    ``model_path``, local weights; the served backend reads ``model_name``). No model: nothing."""
    if backend == NO_MODEL:
        return {}
    try:
        return {getattr(backend_class(backend), "model_field", "model_path"): model}
    except MLLMBackendError:
        return {}  # an unknown backend: the resource names the registered ones when it is used


def model_resources(storage: MedtrinityStorage, default_device: str) -> dict:
    """Everything but the storage: embedder, knowledge store, MLLM, expert models, manifest IO."""
    device = settings.env("MEDTRINITY_DEVICE", default_device)
    backend = settings.env("MEDTRINITY_MLLM_BACKEND", "grounded_composer")
    model = configured("MEDTRINITY_MLLM_MODEL", "")
    return {
        "storage": storage,
        "manifest_io": ParquetManifestIOManager(storage=storage),
        "embedder": SentenceEmbedder(
            backend=configured("MEDTRINITY_EMBEDDER", "static"),
            model_path=configured("MEDTRINITY_EMBEDDER_MODEL", ""),
            device=configured("MEDTRINITY_DEVICE", device),
            dtype=configured("MEDTRINITY_EMBEDDER_DTYPE", settings.embedder_dtype(device)),
        ),
        "knowledge_store": KnowledgeStore(
            persist_dir=configured("MEDTRINITY_KNOWLEDGE_DIR", settings.knowledge_dir()),
            url=configured("MEDTRINITY_CHROMA_URL", ""),
        ),
        "mllm": MLLMResource(
            backend=backend,
            **mllm_model(backend, model),
            endpoint_url=configured("MEDTRINITY_MLLM_ENDPOINT", ""),
            device=configured("MEDTRINITY_DEVICE", device),
            **mllm_env_settings(),
        ),
        "seed_mllm": seed_mllm(device),
        "experts": load_expert_config(settings.env("MEDTRINITY_EXPERTS") or None, default_device=device),
        "caption_judge": CaptionJudgeResource(
            endpoint_url=configured("MEDTRINITY_JUDGE_ENDPOINT", ""),
            model_name=configured("MEDTRINITY_JUDGE_MODEL", ""),
            sample_percent=EnvVar.int("MEDTRINITY_JUDGE_SAMPLE_PERCENT") if settings.is_set("MEDTRINITY_JUDGE_SAMPLE_PERCENT") else 0,
        ),
    }


def local_resources() -> dict:
    return model_resources(local_storage(), default_device="cpu")


def s3_resources() -> dict:
    return model_resources(s3_storage(), default_device="cpu")


def gpu_resources() -> dict:
    return model_resources(s3_storage(), default_device="cuda")


RESOURCE_SETS: dict[str, Callable[[], dict]] = {"local": local_resources, "s3": s3_resources, "gpu": gpu_resources}


def build_resources(deployment: str | None = None) -> dict:
    """The resource set of `deployment` (default: MEDTRINITY_DEPLOYMENT)."""
    return RESOURCE_SETS[deployment or settings.deployment()]()


def storage_from_settings() -> MedtrinityStorage:
    """The configured storage with its values resolved now, for use outside a run (the CLI reads
    manifests and releases with it; tests read what runs wrote)."""
    configured_storage = local_storage() if settings.deployment() == "local" else s3_storage()  # validates
    endpoint = settings.env("MEDTRINITY_S3_ENDPOINT_URL") or None
    root = settings.storage_root()
    return MedtrinityStorage(root=root, s3=S3Resource(endpoint_url=endpoint) if configured_storage.s3 is not None else None)
