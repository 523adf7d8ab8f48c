"""Layout adapters: the files under a source root -> `SourceItem`s (with their masks and shards).

`list_source` returns the items and the findings of the listing (warnings naming the source
and the field: label regexes that miss some mask files, directory symlinks not followed,
manifest rejects). Faults that leave nothing to list fail with `CatalogError` naming the
field: a missing root, image patterns or mask patterns that match no file at all, a label
regex that matches none of its pattern's files, an unreadable label table. Items that cannot
be kept apart or classified are kept in the manifest with ``extra["manifest_reject"]``
(reason, detail); the images stage writes them to the rejects table.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from dataclasses import dataclass, field

from medtrinity_assets.catalog.files import FileIndex
from medtrinity_assets.catalog.items import item_id_for, shard_of
from medtrinity_assets.catalog.masks import MaskResolver, explicit_masks
from medtrinity_assets.catalog.models import Catalog, CatalogError, FilesLayout, NameCapture, SourceConfig
from medtrinity_assets.catalog.names import compiled
from medtrinity_assets.ingest.formats import EXTENSIONS, format_from_name, strip_extension
from medtrinity_assets.ingest.modalities import canonical_modality
from medtrinity_assets.records import MaskRef, SourceItem

MANIFEST_REJECT = "manifest_reject"


@dataclass
class Listing:
    items: list[SourceItem]
    findings: list[str] = field(default_factory=list)

    @property
    def rejects(self) -> list[SourceItem]:
        return [i for i in self.items if MANIFEST_REJECT in i.extra]


@dataclass
class _Facts:
    modality: str
    organs: tuple[str, ...]
    labels: tuple[str, ...] = ()
    values: dict[str, str] = field(default_factory=dict)  # template values: stem + name groups
    reject: dict[str, str] | None = None


def list_items(catalog: Catalog, source: SourceConfig) -> list[SourceItem]:
    """All items of a source, sorted by item id, each with its shard (`list_source` also gives the findings)."""
    return list_source(catalog, source).items


def list_source(catalog: Catalog, source: SourceConfig) -> Listing:
    """Items and findings of one source (see the module docstring)."""
    root = catalog.source_root(source)
    if not os.path.isdir(root):
        raise CatalogError(f"source '{source.name}': field 'root': directory not found: {root}")
    if isinstance(source.layout, FilesLayout):
        listing = _files_listing(catalog, source, root)
    else:
        listing = _explicit_listing(catalog, source, root)
    _flag_collisions(listing)
    listing.items.sort(key=lambda i: i.item_id)
    return listing


def _make(catalog: Catalog, source: SourceConfig, root: str, rel: str, masks: tuple[MaskRef, ...], facts: _Facts) -> SourceItem:
    modality, organs, labels = _apply_overrides(source, rel, facts)
    iid = item_id_for(rel)
    path = os.path.join(root, rel)
    extra: dict = {"source_root": root}
    if facts.reject:
        extra[MANIFEST_REJECT] = facts.reject
    return SourceItem(
        dataset=source.name,
        item_id=iid,
        image_path=os.path.abspath(path),
        rel_path=rel,
        format=source.format if source.format != "auto" else (format_from_name(path) or "auto"),
        modality=canonical_modality(modality, tuple(catalog.modalities)) or modality,
        organs=organs,
        labels=labels,
        masks=masks,
        shard=str(shard_of(source.name, iid, catalog.shard_count)).zfill(len(catalog.shard_keys[0])),
        extra=extra,
    )


def _apply_overrides(source: SourceConfig, rel: str, facts: _Facts) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    modality, organs, labels = facts.modality, facts.organs, facts.labels
    for ov in source.overrides:
        if fnmatch.fnmatch(rel, ov.match):
            modality = ov.modality or modality
            organs = tuple(ov.organs) if ov.organs is not None else organs
            labels = tuple(ov.labels) if ov.labels is not None else labels
    return modality, organs, labels


def _captured(source: SourceConfig, capture: NameCapture | None, rel: str) -> _Facts:
    stem = strip_extension(rel)
    facts = _Facts(source.modality, tuple(source.organs), values={"stem": stem})
    if capture is None:
        return facts
    path = f"{os.path.dirname(rel)}/{stem}".lstrip("/")
    m = compiled(capture.regex).search(path)
    if m is None:
        if capture.required:
            facts.reject = {"reason": "name_not_matched", "detail": "the path does not match layout.names.regex"}
        return facts
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    facts.values.update(groups)
    if "modality" in groups:
        value = groups["modality"]
        mapped = _lookup(capture.modality, value) or (value if canonical_modality(value) else None)
        if mapped is None:
            facts.reject = {"reason": "unmapped_name_value", "detail": "the captured modality has no entry in layout.names.modality"}
        else:
            facts.modality = mapped
    if "organ" in groups:
        value = groups["organ"]
        mapped_organs = _lookup(capture.organs, value) if capture.organs else value.replace("_", " ")
        if mapped_organs is None:
            facts.reject = {"reason": "unmapped_name_value", "detail": "the captured organ has no entry in layout.names.organs"}
        else:
            facts.organs = (mapped_organs,) if isinstance(mapped_organs, str) else tuple(mapped_organs)
    return facts


def _lookup(mapping: dict, value: str):
    if value in mapping:
        return mapping[value]
    folded = {str(k).casefold(): v for k, v in mapping.items()}
    return folded.get(value.casefold())


def _files_listing(catalog: Catalog, source: SourceConfig, root: str) -> Listing:
    layout = source.layout
    assert isinstance(layout, FilesLayout)
    index = FileIndex.scan(root)
    findings = []
    if index.dir_links:
        shown = ", ".join(index.dir_links[:5]) + (" ..." if len(index.dir_links) > 5 else "")
        findings.append(f"source '{source.name}': field 'root': {len(index.dir_links)} directory symlink(s) not followed: {shown}")
    images = index.match(layout.image_patterns)
    if not images:
        raise CatalogError(
            f"source '{source.name}': field 'layout.images': {layout.image_patterns} match no file under {root}"
            + (f" ({findings[0].split(': ', 2)[2]})" if index.dir_links else "")
        )
    resolver = MaskResolver(index, root, layout.masks, source)
    side_files = EXTENSIONS["text"]
    items = []
    for rel in images:
        if rel in resolver.all_mask_files or rel.lower().endswith(side_files):
            continue
        if any(fnmatch.fnmatch(rel, ex) for ex in layout.exclude):
            continue
        facts = _captured(source, layout.names, rel)
        masks = resolver.masks_for(rel, facts.values)
        items.append(_make(catalog, source, root, rel, masks, facts))
    findings += resolver.finish()
    return Listing(items, findings)


def _explicit_listing(catalog: Catalog, source: SourceConfig, root: str) -> Listing:
    items = []
    for i, it in enumerate(source.layout.items):  # type: ignore[union-attr]
        rel = os.path.normpath(it.image).replace(os.sep, "/")
        masks = explicit_masks(it, i, root, source)
        facts = _Facts(it.modality or source.modality, tuple(it.organs) if it.organs is not None else tuple(source.organs), tuple(it.labels))
        items.append(_make(catalog, source, root, rel, masks, facts))
    return Listing(items)


def _flag_collisions(listing: Listing) -> None:
    """Items that would share an id: the first (by path) keeps it, the others become manifest rejects."""
    first: dict[str, SourceItem] = {}
    out = []
    for item in sorted(listing.items, key=lambda i: (i.item_id, i.rel_path)):
        if item.item_id not in first:
            first[item.item_id] = item
            out.append(item)
            continue
        n = sum(1 for o in out if o.item_id.startswith(item.item_id + "~dup")) + 2
        extra = {**item.extra, MANIFEST_REJECT: {"reason": "item_id_collision", "detail": f"same item id as {first[item.item_id].rel_path}"}}
        out.append(dataclasses.replace(item, item_id=f"{item.item_id}~dup{n}", extra=extra))
    n_flagged = sum(1 for i in out if MANIFEST_REJECT in i.extra)
    if n_flagged:
        listing.findings.append(f"source '{out[0].dataset}': {n_flagged} item(s) are manifest rejects (see the images rejects table)")
    listing.items = out
