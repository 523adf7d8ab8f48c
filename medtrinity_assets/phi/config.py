"""PHI screening settings (`phi.yaml` beside this module), validated by pydantic and loaded once."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

SETTINGS_FILE = Path(__file__).with_name("phi.yaml")
TEXT_KINDS = ("date", "time", "id", "phone", "email", "postal", "name")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OcrSettings(_Strict):
    det_max_side: int = Field(736, ge=64, le=4096)
    det_max_upscale: float = Field(3.0, ge=1.0, le=8.0)
    det_box_thresh: float = Field(0.5, gt=0.0, lt=1.0)
    det_unclip_ratio: float = Field(1.6, gt=1.0, le=4.0)
    threads: int = Field(2, ge=1, le=64)
    max_height_frac: float = Field(0.2, gt=0.0, le=1.0)
    min_height_px: int = Field(5, ge=1)
    rec_min_score: float = Field(0.5, ge=0.0, le=1.0)
    min_aspect: float = Field(2.0, ge=0.0)
    pad_px: int = Field(2, ge=0)
    pad_frac: float = Field(0.35, ge=0.0, le=2.0)


def _compile_all(patterns: dict[str, list[str]], where: str) -> dict[str, list[re.Pattern[str]]]:
    out: dict[str, list[re.Pattern[str]]] = {}
    for kind, regexes in patterns.items():
        if kind not in TEXT_KINDS:
            raise ValueError(f"{where}: unknown kind '{kind}' (known: {', '.join(TEXT_KINDS)})")
        compiled = []
        for rx in regexes:
            try:
                compiled.append(re.compile(rx))
            except re.error as exc:
                raise ValueError(f"{where}.{kind}: invalid regex {rx!r}: {exc}") from None
        out[kind] = compiled
    return out


class PhiSettings(_Strict):
    version: int = 1
    ocr: OcrSettings = OcrSettings()
    text_patterns: dict[str, list[str]]
    pixel_patterns: dict[str, list[str]] = {}
    safe_words: frozenset[str]

    @field_validator("text_patterns", "pixel_patterns")
    @classmethod
    def _valid_regexes(cls, v: dict[str, list[str]], info) -> dict[str, list[str]]:
        _compile_all(v, info.field_name)
        return v

    @field_validator("safe_words", mode="before")
    @classmethod
    def _lower(cls, v: list[str]) -> frozenset[str]:
        return frozenset(str(w).lower() for w in v)

    def compiled_text(self) -> dict[str, list[re.Pattern[str]]]:
        return _compile_all(self.text_patterns, "text_patterns")

    def compiled_pixel(self) -> dict[str, list[re.Pattern[str]]]:
        """Text patterns plus the stricter pixel-only ones, per kind."""
        merged = {k: list(v) for k, v in self.text_patterns.items()}
        for kind, regexes in self.pixel_patterns.items():
            merged.setdefault(kind, []).extend(regexes)
        return _compile_all(merged, "pixel_patterns")


def read_settings(path: str | Path) -> PhiSettings:
    """Parse and validate a settings file; a bad field fails naming the file and the field."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    try:
        return PhiSettings.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"invalid PHI settings {path}: {exc}") from None


@lru_cache(maxsize=1)
def load_settings() -> PhiSettings:
    return read_settings(SETTINGS_FILE)
