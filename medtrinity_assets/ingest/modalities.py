"""The modality vocabulary (``ingest/modalities.yaml``): catalog names, their spellings, DICOM codes.

- `canonical_modality(name, extra)`  a catalog spelling -> its canonical name, or None (unknown)
- `dicom_modality(code)`             DICOM Modality code -> catalog modality ('' when unknown)
- `is_projection(code)`              radiograph codes (display orientation from Patient Orientation)
- `non_image_kind(code)`             what a non-image DICOM object is ('' for images)

A catalog extends the vocabulary with a top-level ``modalities:`` list (`ExtraModality`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

DATA_FILE = Path(__file__).with_name("modalities.yaml")
AUTO = "auto"  # catalog modality: take it from the DICOM header


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DicomCode(_Strict):
    modality: str
    projection: bool = False


class ModalityTable(_Strict):
    modalities: dict[str, list[str]]
    dicom_codes: dict[str, DicomCode]
    non_image_codes: dict[str, str]


class ExtraModality(_Strict):
    """A modality a catalog adds to the vocabulary (its name and other spellings)."""

    name: str
    aliases: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def modality_table() -> ModalityTable:
    table = ModalityTable.model_validate(yaml.safe_load(DATA_FILE.read_text()))
    unknown = {c.modality for c in table.dicom_codes.values()} - set(table.modalities)
    if unknown:
        raise ValueError(f"{DATA_FILE}: dicom_codes name modalities that are not listed: {sorted(unknown)}")
    return table


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


@lru_cache(maxsize=64)
def _spellings(extra: tuple[ExtraModality, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, aliases in modality_table().modalities.items():
        for spelling in (name, *aliases):
            out.setdefault(_key(spelling), name)
    for entry in extra:
        for spelling in (entry.name, *entry.aliases):
            out[_key(spelling)] = entry.name
    return out


def canonical_modality(name: str, extra: tuple[ExtraModality, ...] = ()) -> str | None:
    """The canonical catalog name of `name` (case, spaces and underscores ignored); None when unknown.
    ``auto`` stays ``auto``."""
    if _key(name) == AUTO:
        return AUTO
    return _spellings(tuple(extra)).get(_key(name))


def known_modalities(extra: tuple[ExtraModality, ...] = ()) -> list[str]:
    return sorted(set(modality_table().modalities) | {e.name for e in extra})


def dicom_modality(code: str) -> str:
    """Catalog modality of a DICOM Modality code ('' when the code is not an image modality we know)."""
    entry = modality_table().dicom_codes.get((code or "").strip().upper())
    return entry.modality if entry else ""


def is_projection(code: str) -> bool:
    entry = modality_table().dicom_codes.get((code or "").strip().upper())
    return bool(entry and entry.projection)


def non_image_kind(code: str) -> str:
    return modality_table().non_image_codes.get((code or "").strip().upper(), "")
