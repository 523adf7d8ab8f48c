"""Item ids (unique by construction), stable shards, change fingerprints, and the item JSON.

An item id is the item's path relative to the source root, extension included
(``images/twin.png`` and ``images/twin.jpg`` are two items), with ``%``, ``@``, ``#``, ``~``
and control characters percent-encoded: an image id is ``<dataset>/<item id>`` plus
``@<axis><index>`` for a slice of a volume and a ROI id adds ``#<n>``, so no file name can
produce another item's slice id (``x@axial0045.png`` is ``x%40axial0045.png``). A path
component longer than `MAX_COMPONENT_BYTES` keeps its start and its extension around a hash of
the whole name (``~h<12 hex>``), so every output name stays far below the 255-byte limit.
"""

from __future__ import annotations

import hashlib
import json
import os

from medtrinity_assets.ingest.formats import known_extension
from medtrinity_assets.records import MaskRef, SourceItem

MAX_COMPONENT_BYTES = 150
_KEEP_BYTES = 110
_ESCAPED = {"%", "@", "#", "~"}


def _escape(component: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED or ord(c) < 32 or ord(c) == 127 else c for c in component)


def _bounded(component: str) -> str:
    if len(component.encode("utf-8")) <= MAX_COMPONENT_BYTES:
        return component
    digest = hashlib.sha1(component.encode("utf-8")).hexdigest()[:12]
    ext = known_extension(component)
    head = component.encode("utf-8")[:_KEEP_BYTES].decode("utf-8", errors="ignore")
    return f"{head}~h{digest}{ext}"


def item_id_for(rel_path: str) -> str:
    """The item id of a path relative to the source root (see the module docstring)."""
    parts = [p for p in rel_path.replace(os.sep, "/").split("/") if p not in ("", ".")]
    return "/".join(_bounded(_escape(p)) for p in parts)


def shard_of(dataset: str, item_id: str, shard_count: int) -> int:
    """Stable bucket of an item: adding files never moves existing items."""
    digest = hashlib.sha1(f"{dataset}/{item_id}".encode()).hexdigest()
    return int(digest[:12], 16) % shard_count


def item_fingerprint(item: SourceItem) -> str:
    """Size + mtime of the image and its masks: what the change sensor compares."""
    parts = []
    for p in [item.image_path, *[m.path for m in item.masks]]:
        try:
            st = os.stat(p)
            parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{p}:missing")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _mask_json(m: MaskRef) -> dict:
    return {
        "path": m.path,
        "convention": m.convention,
        "label": m.label,
        "instance": m.instance,
        "label_table": {str(k): v for k, v in (m.label_table or {}).items()} or None,
        "threshold": m.threshold,
        "image_key": m.image_key,
        "box_format": m.box_format,
    }


def item_to_json(item: SourceItem) -> str:
    d = {
        "dataset": item.dataset,
        "item_id": item.item_id,
        "image_path": item.image_path,
        "rel_path": item.rel_path,
        "format": item.format,
        "modality": item.modality,
        "organs": list(item.organs),
        "labels": list(item.labels),
        "masks": [_mask_json(m) for m in item.masks],
        "shard": item.shard,
        "extra": item.extra,
    }
    return json.dumps(d, sort_keys=True)


def item_from_json(text: str) -> SourceItem:
    d = json.loads(text)
    masks = tuple(
        MaskRef(
            path=m["path"],
            convention=m["convention"],
            label=m.get("label"),
            instance=m.get("instance"),
            label_table={int(k): v for k, v in m["label_table"].items()} if m.get("label_table") else None,
            threshold=m.get("threshold", 127),
            image_key=m.get("image_key"),
            box_format=m.get("box_format", "xyxy"),
        )
        for m in d["masks"]
    )
    return SourceItem(
        dataset=d["dataset"],
        item_id=d["item_id"],
        image_path=d["image_path"],
        rel_path=d["rel_path"],
        format=d["format"],
        modality=d["modality"],
        organs=tuple(d["organs"]),
        labels=tuple(d["labels"]),
        masks=masks,
        shard=d["shard"],
        extra=d.get("extra", {}),
    )
