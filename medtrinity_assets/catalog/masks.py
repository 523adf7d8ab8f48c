"""Mask files of an image: name templates resolved against the file index, labels normalised."""

from __future__ import annotations

import json
import os
from pathlib import Path

from medtrinity_assets.catalog.files import FileIndex
from medtrinity_assets.catalog.models import CatalogError, ExplicitItem, LabelRules, MaskSpec, SourceConfig
from medtrinity_assets.catalog.names import (
    REGEX_LABEL_DEFAULT,
    as_wildcards,
    compiled,
    fill_glob,
    fill_regex,
    normalise_label,
    templates_in,
)
from medtrinity_assets.ingest.conventions import ANNOTATION_CONVENTIONS
from medtrinity_assets.ingest.formats import strip_extension
from medtrinity_assets.ingest.guards import file_kind
from medtrinity_assets.records import MaskRef


def read_label_table(spec: dict[int, str] | str | None, root: str, source: str, field: str) -> dict[int, str] | None:
    """A label table given inline or as a JSON file relative to the root (``labels_present`` accepted)."""
    if spec is None or isinstance(spec, dict):
        return {int(k): v for k, v in spec.items()} if spec else None
    path = os.path.join(root, spec)
    try:
        if file_kind(path) != "file":
            raise OSError(f"not a regular file ({file_kind(path)})")
        data = json.loads(Path(path).read_text())
        if isinstance(data, dict) and "labels_present" in data:
            data = data["labels_present"]
        return {int(k): str(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise CatalogError(f"source '{source}': field '{field}': cannot read {spec}: {exc}") from None


def _labels(table: dict[int, str] | None, rules: LabelRules | None) -> dict[int, str] | None:
    if table is None or rules is None:
        return table
    return {k: normalise_label(v, rules) for k, v in table.items()}


class MaskResolver:
    """Mask refs of every image of a files layout; counts what each spec matched for the findings."""

    def __init__(self, index: FileIndex, root: str, specs: list[MaskSpec], source: SourceConfig) -> None:
        self.index, self.root, self.specs, self.source = index, root, specs, source
        self.rules = source.labels
        self.tables = [
            _labels(read_label_table(s.label_table, root, source.name, f"layout.masks.{i}.label_table"), self.rules)
            for i, s in enumerate(specs)
        ]
        self.all_mask_files = set(index.match([as_wildcards(s.pattern) for s in specs])) if specs else set()
        self.files_matched = [set() for _ in specs]
        self.regex_missed = [set() for _ in specs]
        self.claimed = [set() for _ in specs]  # files that became a mask of some image

    def masks_for(self, image_rel: str, values: dict[str, str]) -> tuple[MaskRef, ...]:
        refs: list[MaskRef] = []
        for i, spec in enumerate(self.specs):
            if any(name not in values for name in _names(spec)):
                continue  # a template group this image's name did not provide
            regex = compiled(fill_regex(spec.label_regex, values)) if spec.label_regex else None
            for rel in self.index.match_one(fill_glob(spec.pattern, values)):
                if rel == image_rel:
                    continue
                self.files_matched[i].add(rel)
                label, instance = self._label(spec, regex, rel)
                if regex is not None and label is None:
                    self.regex_missed[i].add(rel)
                    continue
                self.claimed[i].add(rel)
                refs.append(self._ref(spec, self.tables[i], rel, image_rel, label, instance))
        return tuple(refs)

    def _label(self, spec: MaskSpec, regex, rel: str) -> tuple[str | None, int | None]:
        if regex is None:
            return (normalise_label(spec.label, self.rules) if spec.label and self.rules else spec.label), None
        m = regex.match(strip_extension(rel))
        if not m:
            return None, None
        instance = m.groupdict().get("instance")
        return normalise_label(m.group("label"), self.rules or REGEX_LABEL_DEFAULT), int(instance) if instance else None

    def _ref(self, spec: MaskSpec, table, rel: str, image_rel: str, label, instance) -> MaskRef:
        return MaskRef(
            path=os.path.abspath(os.path.join(self.root, rel)),
            convention=spec.convention,
            label=label,
            instance=instance,
            label_table=table,
            threshold=spec.threshold,
            image_key=os.path.basename(image_rel) if spec.convention in ANNOTATION_CONVENTIONS else None,
            box_format=spec.box_format,
        )

    def finish(self) -> list[str]:
        """CatalogError for specs that found nothing at all; warnings for partial label matches."""
        name, findings = self.source.name, []
        for i, spec in enumerate(self.specs):
            field = f"layout.masks.{i}"
            if not self.files_matched[i]:
                raise CatalogError(f"source '{name}': field '{field}.pattern': '{spec.pattern}' matches no mask file for any image")
            missed = sorted(self.regex_missed[i] - self.claimed[i])  # matched by no image's label_regex
            if missed and not self.claimed[i]:
                raise CatalogError(
                    f"source '{name}': field '{field}.label_regex': matches none of the {len(missed)} mask files "
                    f"of the pattern (e.g. '{missed[0]}')"
                )
            if missed:
                findings.append(
                    f"source '{name}': field '{field}.label_regex': {len(missed)} of {len(self.files_matched[i])} "
                    f"mask files do not match and are ignored (e.g. '{missed[0]}')"
                )
        return findings


def _names(spec: MaskSpec) -> set[str]:
    return templates_in(spec.pattern) | (templates_in(spec.label_regex) if spec.label_regex else set())


def explicit_masks(item: ExplicitItem, index: int, root: str, source: SourceConfig) -> tuple[MaskRef, ...]:
    """Mask refs of one explicitly listed item."""
    image = os.path.join(root, item.image)
    return tuple(
        MaskRef(
            path=os.path.abspath(os.path.join(root, m.path)),
            convention=m.convention,
            label=normalise_label(m.label, source.labels) if m.label and source.labels else m.label,
            label_table=_labels(read_label_table(m.label_table, root, source.name, f"layout.items.{index}.masks.{j}.label_table"), source.labels),
            threshold=m.threshold,
            image_key=os.path.basename(image) if m.convention in ANNOTATION_CONVENTIONS else None,
            box_format=m.box_format,
        )
        for j, m in enumerate(item.masks)
    )
