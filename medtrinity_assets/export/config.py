"""Release definitions (``data/releases.yaml``) validated with pydantic; errors name release and field.

A release says which sources go in (all, or a list; optionally only redistributable ones),
how records are split (fractions, salt, per-source grouping patterns), which benchmark image
folders to decontaminate against (perceptual hash, drop or flag), and how the files are cut
(WebDataset shard size, gallery size, VQA settings).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from medtrinity_assets import settings
from medtrinity_assets.catalog import Catalog
from medtrinity_resources.yaml_config import read_yaml_mapping, unique_names, validate_config

NAME_RE = r"^[a-z][a-z0-9_]{1,62}$"
SPLITS: tuple[str, ...] = ("train", "validation", "test")  # Hugging Face split names


class ReleaseConfigError(ValueError):
    """A release definition that cannot be used; the message names the release and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitFractions(_Strict):
    """Share of split groups (patients, else volumes/items) per split; must sum to 1."""

    train: float = Field(0.8, ge=0.0, le=1.0)
    validation: float = Field(0.1, ge=0.0, le=1.0, validation_alias=AliasChoices("validation", "val"))  # `val`: older releases files
    test: float = Field(0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SplitFractions":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self

    def as_dict(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


class VqaSettings(_Strict):
    """Question–answer derivation: ROI questions per image cap, and whether to add 'No' questions."""

    max_rois_per_image: int = Field(16, ge=0)
    negatives: bool = True


class ReleaseConfig(_Strict):
    name: str = Field(pattern=NAME_RE)
    title: str = ""
    description: str = ""
    version: str = "1.0.0"
    sources: list[str] | Literal["all"] = "all"
    redistributable_only: bool = True
    include_quarantined: bool = False
    splits: SplitFractions = SplitFractions()
    split_salt: str = Field("medtrinity-split-v1", min_length=1)
    # source -> regex on the record's source_file with a named group 'group' (e.g. the volume id
    # of 2D slices exported one file per slice); unmatched files fall back to the item.
    group_patterns: dict[str, str] = {}
    # benchmark name -> folder of its (test) images; relative paths resolve against the releases file
    benchmark_dirs: dict[str, str] = {}
    phash_max_distance: int = Field(4, ge=0, le=32)
    decontamination: Literal["drop", "flag"] = "drop"
    # exact/near duplicate images across shards and sources (asset image_duplicates): the first
    # image is kept; `keep` releases every copy
    duplicates: Literal["drop", "keep"] = "drop"
    shard_max_samples: int = Field(1000, ge=1)
    shard_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    gallery_samples: int = Field(48, ge=1)
    vqa: VqaSettings = VqaSettings()
    base_dir: str = ""  # folder of the releases file (set by the loader)

    @field_validator("sources")
    @classmethod
    def _sources_not_empty(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, list) and not v:
            raise ValueError("list at least one source, or write 'all'")
        return v

    @field_validator("group_patterns")
    @classmethod
    def _patterns_have_group(cls, v: dict[str, str]) -> dict[str, str]:
        for source, pattern in v.items():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern for '{source}' is not a regular expression: {exc}") from None
            if "group" not in compiled.groupindex:
                raise ValueError(f"pattern for '{source}' needs a named group (?P<group>...)")
        return v

    @field_validator("benchmark_dirs")
    @classmethod
    def _benchmark_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", name):
                raise ValueError(f"benchmark name '{name}' must be letters, digits, '_', '-' or '.'")
        return v

    def source_names(self, catalog: Catalog) -> list[str]:
        """The catalog sources this release draws from (before the licence filter)."""
        if self.sources == "all":
            return list(catalog.names)
        unknown = sorted(set(self.sources) - set(catalog.names))
        if unknown:
            raise ReleaseConfigError(
                f"release '{self.name}': field 'sources': unknown source(s) {', '.join(unknown)} "
                f"(catalog has: {', '.join(catalog.names)})"
            )
        return list(self.sources)

    def benchmark_paths(self) -> dict[str, Path]:
        """Benchmark folders resolved against the releases file; a missing folder is an error."""
        out = {}
        for name, folder in self.benchmark_dirs.items():
            p = Path(folder) if os.path.isabs(folder) else Path(self.base_dir or ".") / folder
            if not p.is_dir():
                raise ReleaseConfigError(f"release '{self.name}': field 'benchmark_dirs.{name}': no such folder {p}")
            out[name] = p.resolve()
        return out

    def with_benchmarks(self, extra: dict[str, str]) -> "ReleaseConfig":
        """A copy with more benchmark folders (absolute or relative to the working directory)."""
        merged = {**self.benchmark_dirs, **{k: str(Path(v).resolve()) for k, v in extra.items()}}
        return self.model_validate({**self.model_dump(), "benchmark_dirs": merged})


class ReleasesFile(_Strict):
    version: int = 1
    releases: list[ReleaseConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> "ReleasesFile":
        unique_names((r.name for r in self.releases), "release")
        return self


def releases_path() -> str:
    """``$MEDTRINITY_RELEASES`` or ``<repo>/data/releases.yaml``."""
    return settings.env("MEDTRINITY_RELEASES", str(settings.REPO_ROOT / "data" / "releases.yaml"))


def parse_releases(raw: Any, base_dir: str = "") -> dict[str, ReleaseConfig]:
    """Validate an already-parsed releases mapping; returns releases by name."""
    if not isinstance(raw, dict):
        raise ReleaseConfigError("releases file must be a mapping with a 'releases' list")
    entries = raw.get("releases")
    if isinstance(entries, list):
        entries = [{**e, "base_dir": base_dir} if isinstance(e, dict) else e for e in entries]
    parsed = validate_config(
        ReleasesFile, {**raw, "releases": entries}, raw, ReleaseConfigError, {"releases": "release"}, "releases file", "invalid releases: "
    )
    return {r.name: r for r in parsed.releases}


def load_releases(path: str | os.PathLike[str] | None = None) -> dict[str, ReleaseConfig]:
    """Read and validate the releases YAML (default `releases_path()`)."""
    p = Path(path or releases_path())
    raw = read_yaml_mapping(p, "releases", ReleaseConfigError)
    try:
        return parse_releases(raw, base_dir=str(p.resolve().parent))
    except ReleaseConfigError as exc:
        raise ReleaseConfigError(f"{p}: {exc}") from None
