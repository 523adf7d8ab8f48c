"""The source catalog: one declarative YAML entry per source, validated with pydantic.

A source names its modality, organs, licence and a *layout adapter* that turns the files
under its root (a local directory) into `SourceItem`s. Adding a source of a supported layout
needs no code:

- ``files``    images matched by glob(s) (``**`` recurses; directory symlinks are not followed);
               masks found by name templates (``{stem}``, or named groups of ``names.regex``);
               modality and organ captured from the file names through a mapping (``names``)
- ``explicit`` items listed one by one (image, masks, per-item modality/organs/labels)

Per-item ``overrides`` (glob on the relative path) refine modality, organs and labels; a
``labels`` block normalises structure labels. Modules: `models` (pydantic), `loading`
(load_catalog and its checks), `listing` (adapters), `masks` (mask templates and label
tables), `names` (templates, label rules), `files` (the file index), `items` (ids, shards, JSON).
"""

from medtrinity_assets.catalog.items import item_fingerprint, item_from_json, item_id_for, item_to_json, shard_of
from medtrinity_assets.catalog.listing import MANIFEST_REJECT, Listing, list_items, list_source
from medtrinity_assets.catalog.loading import load_catalog
from medtrinity_assets.catalog.models import (
    Catalog,
    CatalogError,
    ExplicitItem,
    ExplicitLayout,
    ExplicitMask,
    FilesLayout,
    LabelRules,
    MaskSpec,
    NameCapture,
    Override,
    RoiSettings,
    SourceConfig,
)
from medtrinity_assets.catalog.names import normalise_label
from medtrinity_assets.ingest.conventions import ANNOTATION_CONVENTIONS

__all__ = [
    "ANNOTATION_CONVENTIONS",
    "MANIFEST_REJECT",
    "Catalog",
    "CatalogError",
    "ExplicitItem",
    "ExplicitLayout",
    "ExplicitMask",
    "FilesLayout",
    "LabelRules",
    "Listing",
    "MaskSpec",
    "NameCapture",
    "Override",
    "RoiSettings",
    "SourceConfig",
    "item_fingerprint",
    "item_from_json",
    "item_id_for",
    "item_to_json",
    "list_items",
    "list_source",
    "load_catalog",
    "normalise_label",
    "shard_of",
]
