"""images: ingest one shard's items into standardised 2D images (clean PNGs) + GT mask stacks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.catalog import item_from_json
from medtrinity_assets.ingest import IngestPolicy, dedup_flags, encode_png, load_item, pixel_hashes
from medtrinity_assets.phi import PhiPolicy, screen_item
from medtrinity_assets.records import RejectError, Slice2D, SourceItem
from medtrinity_assets.schema import IMAGES_SCHEMA, conform
from medtrinity_assets.stages.common import Rejects, dumps, save_mask_layers

DICOM_MODALITIES = {
    "CT": "CT",
    "MR": "MRI",
    "CR": "X-ray",
    "DX": "X-ray",
    "DR": "X-ray",
    "RG": "X-ray",
    "MG": "Mammography",
    "US": "Ultrasound",
    "NM": "Nuclear medicine",
    "PT": "PET",
    "XA": "X-ray angiography",
    "OT": "Other",
    "SM": "Microscopy",
}


@dataclass
class ImagesResult:
    images: pl.DataFrame
    rejects: pl.DataFrame
    n_items: int
    seconds: float


def resolve_modality(catalog_modality: str, meta: dict) -> str:
    """Catalog modality, or the DICOM header's when the catalog says 'auto'."""
    if catalog_modality.lower() != "auto":
        return catalog_modality
    header = str(meta.get("modality_header") or "").upper()
    return DICOM_MODALITIES.get(header, header or "Unknown")


def image_suffix(sl: Slice2D) -> str:
    if sl.slice_axis is None:
        return ""
    return f"@{sl.slice_axis}{int(sl.slice_index or 0):04d}"


def ingest_shard(
    manifest: pl.DataFrame, policies: dict[str, IngestPolicy], storage, phi: dict[str, PhiPolicy] | None = None
) -> ImagesResult:
    """Ingest every item of a (dataset, shard) manifest slice. Bad items become rejects.

    `phi` is each source's PHI policy (default: `PhiPolicy()`, i.e. ``auto``); burned-in text is
    screened (and masked) right after loading, before anything is hashed or written."""
    t0 = time.perf_counter()
    if manifest.is_empty():
        return ImagesResult(conform([], IMAGES_SCHEMA), Rejects("", "", "images").frame(), 0, 0.0)
    dataset, shard = manifest["dataset"][0], manifest["shard"][0]
    rejects = Rejects(dataset, shard, "images")
    rows: list[dict] = []
    for item_json in manifest["item_json"].to_list():
        item: SourceItem = item_from_json(item_json)
        policy = policies[item.dataset]
        try:
            slices = load_item(item, policy)
            if not slices:
                raise RejectError("no_slices", "no slice passed the slicing policy")
        except RejectError as exc:
            rejects.add(item.item_id, item.rel_path, exc.reason, exc.detail)
            continue
        except Exception as exc:  # an unexpected failure must not lose the rest of the shard
            rejects.add(item.item_id, item.rel_path, "unexpected_error", f"{type(exc).__name__}: {exc}")
            continue
        phi_columns = screen_item(item, slices, (phi or {}).get(item.dataset), policy.patient_salt_env)  # masks in place
        for sl, phi_cols in zip(slices, phi_columns):
            rows.append({**_write_slice(item, sl, policy, storage), **phi_cols})
    images = conform(rows, IMAGES_SCHEMA)
    if not images.is_empty():
        flags = dedup_flags(images.select("image_id", "image_sha256", "image_phash"))
        images = images.drop("duplicate_of").join(flags.select("image_id", "duplicate_of"), on="image_id", how="left")
        images = conform(images, IMAGES_SCHEMA)
    return ImagesResult(images, rejects.frame(), len(manifest), time.perf_counter() - t0)


def _write_slice(item: SourceItem, sl: Slice2D, policy: IngestPolicy, storage) -> dict:
    suffix = image_suffix(sl)
    base = f"{item.dataset}/{item.item_id}{suffix}"
    png = encode_png(sl.pixels)
    image_uri = storage.write_bytes(f"images/{base}.png", png)
    masks_uri = None
    if sl.masks:
        masks_uri = storage.write_bytes(f"gt_masks/{base}.npz", save_mask_layers(sl.masks, (sl.height, sl.width)))
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
        "image_sha256": sha,
        "image_phash": phash,
        "duplicate_of": None,
        "orientation": str(meta.get("orientation", "")),
        "patient_hash": str(meta.get("patient_hash", "")),
        "ingest_meta": dumps(meta),
        "ingest_policy": policy.model_dump_json(),
    }
