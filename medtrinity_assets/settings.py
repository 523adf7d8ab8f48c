"""Every setting of the project, in one table, read from the environment with local, offline defaults.

MEDTRINITY_DEPLOYMENT picks the resource set (`medtrinity_assets/defs/resources.py`):
``local`` (default: local storage, embedded chromadb, CPU), ``s3`` (storage on S3 through
dagster-aws, MEDTRINITY_STORAGE must be ``s3://bucket/prefix``) or ``gpu`` (``s3`` with
``cuda`` as the default device, dataset runs tagged ``medtrinity/gpu=true`` and the expert and
MLLM steps in the ``gpu`` pool). The other variables override single values within the set.

The code location reads the catalog, corpora and releases files when it loads (they generate the
partitions); resources receive the variables that are set as ``dg.EnvVar`` (resolved where the run
executes and shown by name in the UI), the documented default otherwise. ``SETTINGS`` is the table
that README.md's configuration section and docs/deployment.md document (a test keeps them equal).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENTS = ("local", "s3", "gpu")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # as documented
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("MEDTRINITY_DEPLOYMENT", "`local`", "resource set: `local`, `s3` or `gpu` (see docs/deployment.md)"),
    Setting("MEDTRINITY_CATALOG", "`data/catalog.yaml`", "source catalog"),
    Setting("MEDTRINITY_CORPORA", "`data/knowledge/corpora.yaml`", "knowledge corpora"),
    Setting("MEDTRINITY_RELEASES", "`data/releases.yaml`", "dataset releases"),
    Setting("MEDTRINITY_HOME", "`output/`", "local working directory"),
    Setting("MEDTRINITY_STORAGE", "`$MEDTRINITY_HOME/dataset`", "storage root: a directory (`local`) or `s3://bucket/prefix` (`s3`, `gpu`, required)"),
    Setting("MEDTRINITY_S3_ENDPOINT_URL", "AWS", "S3-compatible endpoint (MinIO, moto)"),
    Setting("MEDTRINITY_KNOWLEDGE_DIR", "`$MEDTRINITY_HOME/knowledge`", "embedded chromadb + keyword index"),
    Setting("MEDTRINITY_CHROMA_URL", "—", "a chroma server instead of the embedded store"),
    Setting("MEDTRINITY_EMBEDDER", "`static`", "`static` (MiniLM distilled to a static table) or `sentence_transformers` (all-MiniLM-L6-v2)"),
    Setting("MEDTRINITY_EMBEDDER_MODEL", "bundled model of the backend", "a local static (model2vec-format) or sentence-transformers model directory"),
    Setting("MEDTRINITY_EMBEDDER_DTYPE", "bf16 where the CPU has it", "`float32` / `bfloat16` / `float16` for the embedder"),
    Setting("MEDTRINITY_MLLM_BACKEND", "`grounded_composer`", "or `transformers`, `openai`"),
    Setting("MEDTRINITY_MLLM_MODEL", "—", "local model dir (`transformers`) or served model name (`openai`)"),
    Setting("MEDTRINITY_MLLM_ENDPOINT", "—", "OpenAI-compatible base URL (key from `OPENAI_API_KEY`)"),
    Setting("MEDTRINITY_SEED_MLLM_BACKEND", "`openai`", "backend of the strong seed model that captions the seed subset (`openai` or `transformers`)"),
    Setting("MEDTRINITY_SEED_MLLM_MODEL", "—", "served model id (or local model dir) of the seed model"),
    Setting("MEDTRINITY_SEED_MLLM_ENDPOINT", "—", "OpenAI-compatible base URL of the seed model"),
    Setting("MEDTRINITY_SEED_MLLM_API_KEY_ENV", "`OPENAI_API_KEY`", "variable holding the seed endpoint's key"),
    Setting("MEDTRINITY_SEED_MLLM_CONCURRENCY", "`64`", "seed requests in flight"),
    Setting("MEDTRINITY_JUDGE_ENDPOINT", "—", "OpenAI-compatible base URL of the caption judge (a second model)"),
    Setting("MEDTRINITY_JUDGE_MODEL", "—", "served model name of the caption judge"),
    Setting("MEDTRINITY_JUDGE_SAMPLE_PERCENT", "`0` (off)", "share of records the judge scores (`caption_confidence`; below 0.5 quarantines with `judge_disagrees`)"),
    Setting("MEDTRINITY_MLLM_REVISION", "—", "model revision recorded with every caption and in the call-cache key"),
    Setting("MEDTRINITY_MLLM_DTYPE", "`auto`", "bfloat16 on GPU, float32 on CPU; or `float16` / `bfloat16` / `float32`"),
    Setting("MEDTRINITY_MLLM_DEVICE_MAP", "—", "transformers `device_map` (e.g. `auto` over several GPUs)"),
    Setting("MEDTRINITY_MLLM_TRUST_REMOTE_CODE", "off", "load checkpoints that ship their own model code"),
    Setting("MEDTRINITY_MLLM_API_KEY_ENV", "`OPENAI_API_KEY`", "variable holding the served endpoint's key"),
    Setting("MEDTRINITY_MLLM_BATCH_SIZE", "`4`", "prompts per `generate` call (transformers)"),
    Setting("MEDTRINITY_MLLM_MAX_NEW_TOKENS", "`1024`", "answer token limit"),
    Setting("MEDTRINITY_MLLM_TRUNCATION_MAX_NEW_TOKENS", "2 × max new tokens", "limit of the one re-ask of a cut answer"),
    Setting("MEDTRINITY_MLLM_CONCURRENCY", "`64`", "served requests in flight"),
    Setting("MEDTRINITY_MLLM_TRANSPORT_RETRIES", "`3`", "served: retries of 429/5xx/timeouts (Retry-After honoured)"),
    Setting("MEDTRINITY_MLLM_TIMEOUT_S", "`300`", "seconds per request"),
    Setting("MEDTRINITY_MLLM_STRUCTURED_OUTPUT", "on", "served: send the answer's JSON schema as `response_format` (vLLM guided decoding); `off` for servers without it"),
    Setting("MEDTRINITY_MLLM_SEED", "`0`", "sampling seed (sent to served models)"),
    Setting("MEDTRINITY_MLLM_TEMPERATURE", "`0`", "0 = greedy"),
    Setting("MEDTRINITY_MLLM_RETRY_BACKOFF_S", "`1`", "first transport backoff, doubled per retry"),
    Setting("MEDTRINITY_DEVICE", "`cpu` (`cuda` for `gpu`)", "`cpu` / `cuda` / `auto` for the embedder, experts and MLLM"),
    Setting("MEDTRINITY_EXPERTS", "—", "YAML of expert models (MONAI bundle dirs, YOLO .pt) and routing rules"),
    Setting("MEDTRINITY_RUN_TAGS", "—", "JSON of extra tags on dataset runs (e.g. `dagster-k8s/config` for GPU nodes)"),
    Setting("MEDTRINITY_PATIENT_SALT", "built-in", "salt of the patient hashes that group records for splits"),
    Setting("MEDTRINITY_WEBSERVER_URL", "—", "a running Dagster webserver for `medtrinity demo/release/backfill` to use"),
)
NAMES = frozenset(s.name for s in SETTINGS)


class SettingsError(ValueError):
    """A setting with a value the project cannot use; the message names the variable."""


def env(name: str, default: str = "") -> str:
    """The variable's value (stripped), or `default` when unset or empty."""
    return os.environ.get(name, "").strip() or default


def is_set(name: str) -> bool:
    return bool(env(name))


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def switch(name: str, default: bool = False) -> bool:
    """An on/off variable: 1/true/yes/on or 0/false/no/off (any case); anything else is an error
    naming the variable, so a typo never silently turns a feature off."""
    value = env(name).lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise SettingsError(f"{name}={value!r}: use one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")


def deployment() -> str:
    value = env("MEDTRINITY_DEPLOYMENT", "local")
    if value not in DEPLOYMENTS:
        raise SettingsError(f"MEDTRINITY_DEPLOYMENT={value!r}: use one of {', '.join(DEPLOYMENTS)}")
    return value


def device() -> str:
    """MEDTRINITY_DEVICE, else the deployment's default (cuda for `gpu`, cpu otherwise)."""
    return env("MEDTRINITY_DEVICE", "cuda" if deployment() == "gpu" else "cpu")


def uses_gpu() -> bool:
    return device() in ("cuda", "auto") or device().startswith("cuda:")


def home() -> str:
    return env("MEDTRINITY_HOME", str(REPO_ROOT / "output"))


def catalog_path() -> str:
    return env("MEDTRINITY_CATALOG", str(REPO_ROOT / "data" / "catalog.yaml"))


def corpora_path() -> str:
    return env("MEDTRINITY_CORPORA", str(REPO_ROOT / "data" / "knowledge" / "corpora.yaml"))


def releases_path() -> str:
    return env("MEDTRINITY_RELEASES", str(REPO_ROOT / "data" / "releases.yaml"))


def storage_root() -> str:
    return env("MEDTRINITY_STORAGE", str(Path(home()) / "dataset"))


def knowledge_dir() -> str:
    return env("MEDTRINITY_KNOWLEDGE_DIR", str(Path(home()) / "knowledge"))


def embedder_dtype(device_name: str) -> str:
    """MEDTRINITY_EMBEDDER_DTYPE, else bfloat16 where the CPU computes it natively (about 2.5x
    faster than float32 for MiniLM here, cosine >= 0.998), float16 on CUDA, float32 otherwise.
    Decided without importing torch where the CPU flags can be read (the code location loads faster)."""
    chosen = env("MEDTRINITY_EMBEDDER_DTYPE")
    if chosen:
        return chosen
    if device_name == "cuda" or device_name.startswith("cuda:"):
        return "float16"
    if device_name == "auto":
        import torch

        if torch.cuda.is_available():
            return "float16"
    return "bfloat16" if cpu_has_bf16() else "float32"


def cpu_has_bf16() -> bool:
    """What torch.ops.mkldnn._is_mkldnn_bf16_supported() answers on x86 (AVX-512 BW, VL and DQ),
    read from /proc/cpuinfo; other systems ask torch."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), None)
    except OSError:
        flags = None
    if flags is not None:
        return {"avx512bw", "avx512vl", "avx512dq"} <= set(flags)
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # noqa: SLF001 - no public probe
    except (AttributeError, RuntimeError):
        return False
