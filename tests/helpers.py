"""Shared test helpers (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import os

from medtrinity_assets.records import MaskRef, SourceItem


def file_item(
    path,
    fmt: str,
    modality: str,
    organs=(),
    masks: tuple[MaskRef, ...] | list[MaskRef] = (),
    root=None,
    dataset: str = "t",
) -> SourceItem:
    """A SourceItem for one file, identified by its base name."""
    path = str(path)
    return SourceItem(
        dataset=dataset,
        item_id=os.path.basename(path),
        image_path=path,
        rel_path=os.path.basename(path),
        format=fmt,
        modality=modality,
        organs=tuple(organs),
        masks=tuple(masks),
        extra={"source_root": str(root)} if root else {},
    )
