"""Corpus declarations (data/knowledge/corpora.yaml) validated with pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medtrinity_assets.records import RejectError
from medtrinity_resources.yaml_config import describe_validation_error, read_yaml_mapping

AdapterName = Literal["disease_ontology", "uberon", "medquad", "pubmedqa", "jsonl", "pubmed_xml"]
CORPUS_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,48}[a-z0-9]$"


class CorpusConfigError(RejectError):
    """A corpora.yaml problem; names the corpus and the field."""

    def __init__(self, corpus: str, field: str, detail: str) -> None:
        super().__init__("bad_corpus_config", f"corpus {corpus!r}, field {field!r}: {detail}")
        self.corpus = corpus
        self.field = field


class ChunkingConfig(BaseModel):
    """Word windows: `max_words` per chunk, `overlap` words shared by consecutive chunks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_words: int = Field(140, gt=0, le=2000)
    overlap: int = Field(20, ge=0)

    @model_validator(mode="after")
    def _overlap_below_window(self) -> ChunkingConfig:
        if self.overlap >= self.max_words:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than max_words ({self.max_words})")
        return self


class CorpusConfig(BaseModel):
    """One knowledge corpus: where it is, how it is read and chunked, its licence and citation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=CORPUS_NAME_PATTERN)
    adapter: AdapterName
    path: Path  # absolute once loaded (given relative to the yaml file)
    licence: str = Field(min_length=1)
    citation: str = Field(min_length=1)
    chunking: ChunkingConfig = ChunkingConfig()
    max_documents: int | None = Field(None, gt=0)
    description: str = ""


def default_corpora_path() -> Path:
    from medtrinity_assets import settings

    return Path(settings.corpora_path())


def load_corpus_config(path: str | Path | None = None, check_paths: bool = True) -> dict[str, CorpusConfig]:
    """Read and validate corpora.yaml; paths are resolved relative to the yaml file.

    Raises `CorpusConfigError` naming the corpus and field at fault.
    """
    yaml_path = Path(path) if path is not None else default_corpora_path()
    raw = read_yaml_mapping(yaml_path, "corpora", lambda message: CorpusConfigError("*", "file", message))
    corpora = raw.get("corpora")
    if not isinstance(corpora, dict) or not corpora:
        raise CorpusConfigError("*", "corpora", f"{yaml_path} needs a non-empty 'corpora:' mapping of name -> settings")
    return {
        str(name): parse_corpus(str(name), body, yaml_path.parent, check_paths=check_paths)
        for name, body in corpora.items()
    }


def parse_corpus(name: str, body: Any, base_dir: Path, check_paths: bool = True) -> CorpusConfig:
    """Validate one corpus entry; a relative `path` is taken relative to `base_dir`."""
    if not isinstance(body, dict):
        raise CorpusConfigError(name, "*", f"expected a mapping of settings, got {type(body).__name__}")
    if "name" in body and body["name"] != name:
        raise CorpusConfigError(name, "name", f"differs from its key ({body['name']!r})")
    try:
        config = CorpusConfig.model_validate({**body, "name": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "*"
        raise CorpusConfigError(name, field, describe_validation_error(exc, body, top="")) from None
    resolved = config.path if config.path.is_absolute() else (base_dir / config.path).resolve()
    if check_paths and not resolved.exists():
        raise CorpusConfigError(name, "path", f"{resolved} does not exist")
    return config.model_copy(update={"path": resolved})
