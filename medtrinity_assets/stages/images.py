"""images: ingest one shard's items into standardised 2D images (clean PNGs) + GT mask stacks.

Every item is handled on its own: reading, decoding and every write of its slices sit inside
one error boundary, so a bad file, a failing write or a bug costs that item a rejects row and
the rest of the shard goes on. Items the manifest already refused (``manifest_reject``: id
collisions, names that do not match the catalog's name capture) become rejects rows here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.catalog import MANIFEST_REJECT, RoiSettings, item_from_json
from medtrinity_assets.ingest import IngestPolicy, dedup_flags, encode_png, load_item, pixel_hashes
from medtrinity_assets.ingest.deid import safe_error_text
from medtrinity_assets.ingest.hashing import image_signature
from medtrinity_assets.ingest.masks import small_components
from medtrinity_assets.ingest.modalities import dicom_modality
from medtrinity_assets.records import RejectError, Slice2D, SourceItem
from medtrinity_assets.schema import IMAGES_SCHEMA, conform
from medtrinity_assets.stages.common import Rejects, dumps, encode_native, save_mask_layers
from medtrinity_assets.stages.facts import frame_columns


@dataclass
class ImagesResult:
    images: pl.DataFrame
    rejects: pl.DataFrame
    n_items: int
    seconds: float

    @property
    def gt_small_components(self) -> int:
        """GT mask components below the source's min_area_px (not grounded as ROIs), all images."""
        return int(self.images["gt_small_components"].sum() or 0) if self.images.height else 0


def resolve_modality(catalog_modality: str, meta: dict) -> str:
    """Catalog modality, or the DICOM header's when the catalog says 'auto'."""
    if catalog_modality.lower() != "auto":
        return catalog_modality
    return dicom_modality(str(meta.get("modality_header") or "")) or "Unknown"


def image_suffix(sl: Slice2D) -> str:
    if sl.slice_axis is None:
        return ""
    return f"@{sl.slice_axis}{int(sl.slice_index or 0):04d}"


def ingest_shard(
    manifest: pl.DataFrame,
    policies: dict[str, IngestPolicy],
    storage,
    roi_settings: dict[str, RoiSettings] | None = None,
) -> ImagesResult:
    """Ingest every item of a (dataset, shard) manifest slice. Bad items become rejects.

    `roi_settings` (per dataset) lets each image count the GT components ROI grounding will
    drop as smaller than ``min_area_px`` (column ``gt_small_components``); defaults otherwise.
    """
    t0 = time.perf_counter()
    if manifest.is_empty():
        return ImagesResult(conform([], IMAGES_SCHEMA), Rejects("", "", "images").frame(), 0, 0.0)
    dataset, shard = manifest["dataset"][0], manifest["shard"][0]
    rejects = Rejects(dataset, shard, "images")
    rows: list[dict] = []
    for item_json in manifest["item_json"].to_list():
        item: SourceItem = item_from_json(item_json)
        refused = item.extra.get(MANIFEST_REJECT)
        if refused:
            rejects.add(item.item_id, item.rel_path, refused["reason"], refused["detail"])
            continue
        settings = (roi_settings or {}).get(item.dataset) or RoiSettings()
        try:
            rows.extend(_ingest_item(item, policies[item.dataset], settings, storage))
        except RejectError as exc:
            rejects.add(item.item_id, item.rel_path, exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a failing read, write or bug must not lose the rest of the shard
            if isinstance(exc, _WriteError):
                rejects.add(item.item_id, item.rel_path, "write_failed", f"{exc} ({safe_error_text(exc.__cause__ or exc)})")
            else:
                rejects.add(item.item_id, item.rel_path, "unexpected_error", safe_error_text(exc))
    images = conform(rows, IMAGES_SCHEMA)
    if not images.is_empty():
        flags = dedup_flags(images.select("image_id", "image_sha256", "image_phash", "image_signature"))
        images = images.drop("duplicate_of").join(flags.select("image_id", "duplicate_of"), on="image_id", how="left")
        images = conform(images, IMAGES_SCHEMA)
    return ImagesResult(images, rejects.frame(), len(manifest), time.perf_counter() - t0)


class _WriteError(Exception):
    """A storage write of an item's output failed (the cause is chained)."""


def _ingest_item(item: SourceItem, policy: IngestPolicy, settings: RoiSettings, storage) -> list[dict]:
    """Rows of every slice of one item; all of its writes done, or an exception (nothing returned)."""
    slices = load_item(item, policy)
    if not slices:
        raise RejectError("no_slices", "no slice passed the slicing policy")
    return [_write_slice(item, sl, policy, settings, storage) for sl in slices]


def _write(storage, key: str, data: bytes, what: str) -> str:
    try:
        return storage.write_bytes(key, data)
    except Exception as exc:
        raise _WriteError(f"writing the {what} failed") from exc


def _write_slice(item: SourceItem, sl: Slice2D, policy: IngestPolicy, settings: RoiSettings, storage) -> dict:
    base = f"{item.dataset}/{item.item_id}{image_suffix(sl)}"
    image_uri = _write(storage, f"images/{base}.png", encode_png(sl.pixels), "image")
    masks_uri = None
    if sl.masks:
        masks_uri = _write(storage, f"gt_masks/{base}.npz", save_mask_layers(sl.masks, (sl.height, sl.width)), "mask stack")
    native_uri = None
    if sl.native is not None:
        native_uri = _write(storage, f"native/{base}.npz", encode_native(sl.native), "native values")
    sha, phash = pixel_hashes(sl.pixels)
    meta = dict(sl.meta)
    return {
        "image_id": base,
        "dataset": item.dataset,
        "shard": item.shard,
        "item_id": item.item_id,
        "source_file": item.rel_path,
        "slice_axis": sl.slice_axis,
        "slice_index": sl.slice_index,
        "modality": resolve_modality(item.modality, meta),
        "organs": list(item.organs),
        "labels": list(item.labels),
        "width": sl.width,
        "height": sl.height,
        "channels": 1 if sl.pixels.ndim == 2 else int(sl.pixels.shape[2]),
        "image_uri": image_uri,
        "gt_masks_uri": masks_uri,
        "n_gt_layers": len(sl.masks),
        "gt_small_components": small_components(sl.masks, settings.min_area_px, settings.merge_per_label),
        "image_sha256": sha,
        "image_phash": phash,
        "image_signature": image_signature(sl.pixels),
        "duplicate_of": None,
        "orientation": str(meta.get("orientation", "")),
        **frame_columns(sl.frame),
        "native_uri": native_uri,
        "native_unit": sl.native_unit if native_uri else None,
        "patient_hash": str(meta.get("patient_hash", "")),
        "ingest_meta": dumps(meta),
        "ingest_policy": policy.model_dump_json(),
    }
