"""The caption wording data files (``captions/data/*.yaml``), validated once and cached.

- ``vocabulary.yaml``  modality families, organ names and body regions (captions/vocab.py)
- ``labels.yaml``      how structure labels are written (captions/labels.py)
- ``wording.yaml``     sentence variants, position and relation phrases (captions/composer.py)
- ``appearance.yaml``  thresholds and words for appearance from measurements (captions/appearance.py)

Each file is read with `medtrinity_resources.yaml_config` and validated by a pydantic model;
a broken file fails with a `WordingDataError` naming the file and the field. Templates are
checked to be valid `str.format` strings.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medtrinity_resources.yaml_config import read_yaml_mapping, validate_config

DATA_DIR = Path(__file__).resolve().parent / "data"


class WordingDataError(ValueError):
    """A caption wording data file that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def template_fields(template: str) -> set[str]:
    """The ``{placeholder}`` names of a format template (ValueError when malformed)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _check_templates(values):
    items = values.values() if isinstance(values, dict) else values if isinstance(values, list) else [values]
    for v in items:
        if isinstance(v, (dict, list)):
            _check_templates(v)
        elif isinstance(v, str):
            try:
                template_fields(v)
            except ValueError as exc:
                raise ValueError(f"bad template {v!r}: {exc}") from None
    return values


# ----------------------------------------------------------------------------- vocabulary


class ModalityEntry(_Strict):
    short: str
    long: str
    terms: tuple[str, ...]
    contrast_words: tuple[str, str]
    intensity_noun: str


class PositionWordTable(_Strict):
    vertical: dict[str, str]
    horizontal: dict[str, str]
    centre: tuple[str, ...]


class Vocabulary(_Strict):
    irregular_singulars: dict[str, str]
    position_words: PositionWordTable
    modalities: dict[str, ModalityEntry]
    modality_codes: dict[str, str]
    compatible_modalities: dict[str, tuple[str, ...]]
    organ_synonyms: dict[str, tuple[str, ...]]
    organ_regions: dict[str, str]
    region_words: dict[str, str]
    adjacent_regions: dict[str, tuple[str, ...]]
    organ_adjectives: dict[str, tuple[str, ...]]
    anatomy_words: tuple[str, ...]

    @field_validator("modality_codes")
    @classmethod
    def _codes_upper(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k != k.upper()]
        if bad:
            raise ValueError(f"modality codes must be upper case: {bad}")
        return v


# ----------------------------------------------------------------------------- labels


class LabelName(_Strict):
    one: str
    many: str
    single_mask: str | None = None
    plural: bool = False  # the label names several structures in one mask ("portal vein and splenic vein")


class Labels(_Strict):
    side_words: tuple[str, ...]
    negative_labels: frozenset[str]
    names: dict[str, LabelName]
    singular_s: frozenset[str]
    plurals: dict[str, str]
    numbered: frozenset[str]
    vertebra_prefix: str


# ----------------------------------------------------------------------------- wording


class Positions(_Strict):
    # equivalent phrasings of one grid cell by the sides it names (the first is the reference form;
    # the composer varies); the cells and their sides are grid/grid.yaml (medtrinity_assets.grid)
    corner: tuple[str, ...] = Field(min_length=1)
    vertical_only: tuple[str, ...] = Field(min_length=1)
    horizontal_only: tuple[str, ...] = Field(min_length=1)
    refined: tuple[str, ...] = Field(min_length=1)
    refined_middle: tuple[str, ...] = Field(min_length=1)
    centre: tuple[str, ...] = Field(min_length=1)
    patient_side: dict[str, tuple[str, ...]]  # equivalent forms, the first the reference form
    patient_level: dict[str, str]
    patient_depth: dict[str, str]


class RelationWords(_Strict):
    # equivalent phrasings (the first is the reference form); one pick per record for all clauses
    within: tuple[str, ...] = Field(min_length=1)
    overlaps: tuple[str, ...] = Field(min_length=1)
    borders: tuple[str, ...] = Field(min_length=1)
    borders_same: tuple[str, ...] = Field(min_length=1)
    contains: tuple[str, ...] = Field(min_length=1)
    contains_many: tuple[str, ...] = Field(min_length=1)
    direction: str
    direction_same: str
    image_frame: tuple[str, ...] = Field(min_length=1)  # appended to clauses naming image-frame directions only
    in_contact: tuple[str, ...] = Field(min_length=1)  # ends a direction clause to a structure the ROI also borders
    direction_verb: tuple[str, ...] = Field(min_length=1)
    directions: dict[str, tuple[str, ...]]  # equivalent phrasings per typed direction


class Spread(_Strict):
    min_share: float = Field(ge=0, le=1)
    words: str


class Counts(_Strict):
    one_of: str
    further: tuple[str, ...] = Field(min_length=1)  # "{n} further structures" (an overview's unlisted ones)
    share_of: tuple[str, ...] = Field(min_length=1)  # "{share} of the image"
    field: tuple[str, ...] = Field(min_length=1)
    # grouped instances: share of the 25 grid cells holding an instance centre -> words (first match)
    spread: tuple[Spread, ...] = Field(min_length=1)


class Surround(_Strict):
    # equivalent forms, the first the reference form; {other} / {organ}: a structure's name
    default: tuple[str, ...] = Field(min_length=1)
    within: tuple[str, ...] = Field(min_length=1)
    rgb: tuple[str, ...] = Field(min_length=1)
    microscopy: tuple[str, ...] = Field(min_length=1)


class FrameWords(_Strict):
    kind: dict[str, str]
    lateral: dict[str, str]
    up: dict[str, str]
    anterior_side: dict[str, str]


class Wording(_Strict):
    positions: Positions
    relations: RelationWords
    counts: Counts
    sentences: dict[str, list[str] | dict[str, list[str]]]
    passage_relation_words: dict[str, str]
    definition_skip: dict[str, str] = {}
    frame: FrameWords
    surround: Surround

    @field_validator("sentences")
    @classmethod
    def _templates(cls, v):
        for key, variants in v.items():
            if not variants:
                raise ValueError(f"sentences.{key} has no variant")
        return _check_templates(v)

    def variants(self, key: str, sub: str | None = None) -> list[str]:
        entry = self.sentences[key]
        if isinstance(entry, dict):
            return entry[sub or ""]
        return entry


# ----------------------------------------------------------------------------- appearance


class Reliability(_Strict):
    min_area_px: int = Field(ge=1)
    contrast_cap: float = Field(gt=0)
    min_difference: dict[str, float]
    similar_max_difference: dict[str, float]


Forms = tuple[str, ...]  # equivalent wordings of one reading; the first is the reference form


class Band(_Strict):
    below: float
    words: Forms = Field(min_length=1)


class Bounds(_Strict):
    homogeneous: float
    heterogeneous: float


class ShapeRules(_Strict):
    min_shape_px: int
    irregular_solidity: float
    irregular_circularity: float
    elongated: float
    round_elongation: float
    round_circularity: float


class IntensityWords(_Strict):
    darker: Forms = Field(min_length=1)
    brighter: Forms = Field(min_length=1)
    similar: Forms = Field(min_length=1)


class ColourName(_Strict):
    """A named colour: HSV bands (hue degrees, a band may cross 0: [340, 15]; saturation and value
    0..1; a missing band holds everything) and its equivalent words, the first the reference form."""

    name: str
    hue: tuple[float, float] | None = None
    saturation: tuple[float, float] | None = None
    value: tuple[float, float] | None = None
    words: Forms = Field(min_length=1)


class Appearance(_Strict):
    reliability: Reliability
    contrast: dict[str, float]
    ct_bands: list[Band] = Field(min_length=1)
    max_std_hu: float
    heterogeneity: dict[str, Bounds]
    colour: dict[str, float]
    shape: ShapeRules
    margin: dict[str, float]
    size: dict[str, float]
    intensity_words: dict[str, IntensityWords]
    degree: dict[str, str]
    marked_contrast: float
    compare_max_contrast: float = Field(gt=0)  # composer: compare with a neighbour only below this |standardised difference|
    compare_classes: dict[str, list[str]]  # class -> structure keys compared with each other
    compare_across: list[tuple[str, str]] = []  # pairs of classes also compared
    slight_michelson_max: dict[str, float]
    texture_words: dict[str, Forms]
    shape_words: dict[str, Forms]
    margin_words: dict[str, Forms]
    colour_words: dict[str, Forms]
    colour_names: list[ColourName] = Field(min_length=1)

    @field_validator("texture_words", "shape_words", "margin_words", "colour_words")
    @classmethod
    def _some_form(cls, v: dict[str, Forms]) -> dict[str, Forms]:
        empty = [k for k, forms in v.items() if not forms]
        if empty:
            raise ValueError(f"no wording for {empty}")
        return v

    def reference(self, table: str, key: str | None, default: str = "") -> str:
        """The reference form of a reading (``texture_words``, ``homogeneous`` -> ``homogeneous``)."""
        forms = getattr(self, table).get(key or "")
        return forms[0] if forms else default

    @model_validator(mode="after")
    def _classes(self) -> "Appearance":
        keys = [k for members in self.compare_classes.values() for k in members]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        unknown = sorted({c for pair in self.compare_across for c in pair} - set(self.compare_classes))
        if twice or unknown:
            raise ValueError(f"compare_classes: structures in two classes {twice}; compare_across names no class {unknown}")
        return self

    def compare_class(self, key: str) -> str | None:
        """The comparison class of a structure key (`labels.structure_key`), or None."""
        return next((c for c, members in self.compare_classes.items() if key in members), None)

    @field_validator("ct_bands")
    @classmethod
    def _ascending(cls, v: list[Band]) -> list[Band]:
        if [b.below for b in v] != sorted(b.below for b in v):
            raise ValueError("ct_bands must be in ascending order of `below`")
        return v

    @field_validator("intensity_words")
    @classmethod
    def _default_words(cls, v: dict[str, IntensityWords]) -> dict[str, IntensityWords]:
        if "default" not in v:
            raise ValueError("intensity_words needs a `default` entry")
        return v


# ----------------------------------------------------------------------------- loading


def load_data(name: str, model: type[BaseModel], directory: Path | None = None) -> BaseModel:
    """``data/<name>.yaml`` validated by `model` (WordingDataError on any problem)."""
    path = (directory or DATA_DIR) / f"{name}.yaml"
    raw = read_yaml_mapping(path, f"caption {name} data", WordingDataError)
    return validate_config(model, raw, raw, WordingDataError, top=f"{path.name}")


@lru_cache(maxsize=None)
def vocabulary() -> Vocabulary:
    return load_data("vocabulary", Vocabulary)  # type: ignore[return-value]


@lru_cache(maxsize=None)
def labels() -> Labels:
    return load_data("labels", Labels)  # type: ignore[return-value]


@lru_cache(maxsize=None)
def wording() -> Wording:
    return load_data("wording", Wording)  # type: ignore[return-value]


@lru_cache(maxsize=None)
def appearance() -> Appearance:
    return load_data("appearance", Appearance)  # type: ignore[return-value]
