"""roi_masks: ROIs of one shard's images — from ground-truth masks, else from routed expert models,
else a whole-image record (never dropped silently). Each ROI gets an overlay image for visual prompting."""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.catalog import RoiSettings
from medtrinity_assets.ingest import encode_png
from medtrinity_assets.records import ROI, Slice2D
from medtrinity_assets.rois import anatomical_position, render_overlay, roi_record, roi_relations, rois_from_masks
from medtrinity_assets.schema import ROIS_SCHEMA, conform
from medtrinity_assets.stages.common import Rejects, decode_png, load_mask_layers


@dataclass
class RoisResult:
    rois: pl.DataFrame
    rejects: pl.DataFrame
    seconds: float
    n_capped: int
    by_origin: dict[str, int]


def whole_image_row(image: dict) -> dict:
    return {
        "roi_id": f"{image['image_id']}#whole",
        "image_id": image["image_id"],
        "dataset": image["dataset"],
        "shard": image["shard"],
        "roi_index": -1,
        "label": None,
        "origin": "none",
        "score": None,
        "instance": None,
        "bbox_x0": None,
        "bbox_y0": None,
        "bbox_x1": None,
        "bbox_y1": None,
        "bbox_norm": None,
        "area_px": None,
        "area_frac": None,
        "centroid_x": None,
        "centroid_y": None,
        "n_components": 0,
        "position": None,
        "anatomical_position": None,
        "relations": [],
        "rle": None,
        "overlay_uri": image["image_uri"],
    }


def cap_rois(rois: list[ROI], settings: RoiSettings) -> tuple[list[ROI], int]:
    """Keep at most max_rois_per_image (the largest); the number dropped is reported in metadata."""
    n_capped = max(0, len(rois) - settings.max_rois_per_image)
    if n_capped:
        rois = sorted(rois, key=lambda r: -int(r.mask.sum()))[: settings.max_rois_per_image]
    return rois, n_capped


def expert_rois(pending: list[tuple[dict, Slice2D]], experts) -> dict[str, list[ROI]]:
    """Run routed experts in batches: one predict call per expert (per volume for 3D experts)."""
    groups: dict[tuple[str, str], list[tuple[dict, Slice2D]]] = {}
    for image, sl in pending:
        expert = experts.route(image["modality"], list(image["organs"]), list(image["labels"]))
        if not expert:
            continue
        volume_key = image["item_id"] if experts.spec(expert).spatial_dims == 3 else ""
        groups.setdefault((expert, volume_key), []).append((image, sl))
    out: dict[str, list[ROI]] = {}
    for (expert, _), members in groups.items():
        members.sort(key=lambda m: (m[0]["item_id"], m[0]["slice_index"] or 0))
        for (image, _), rois in zip(members, experts.predict(expert, [sl for _, sl in members])):
            out[image["image_id"]] = rois
    return out


def ground_shard(images: pl.DataFrame, settings: dict[str, RoiSettings], storage, experts=None) -> RoisResult:
    t0 = time.perf_counter()
    if images.is_empty():
        return RoisResult(conform([], ROIS_SCHEMA), Rejects("", "", "roi_masks").frame(), 0.0, 0, {})
    rejects = Rejects(images["dataset"][0], images["shard"][0], "roi_masks")
    loaded: list[tuple[dict, Slice2D]] = []
    for image in images.iter_rows(named=True):
        if image["duplicate_of"] and settings[image["dataset"]].duplicates == "drop":
            continue  # exact/near duplicate of an earlier image of this shard: described once
        try:
            pixels = decode_png(storage.read_uri(image["image_uri"]))
            masks = load_mask_layers(storage.read_uri(image["gt_masks_uri"])) if image["gt_masks_uri"] else []
        except Exception as exc:
            rejects.add(image["item_id"], image["source_file"], "roi_grounding_failed", f"{type(exc).__name__}: {exc}")
            continue
        loaded.append((image, Slice2D(pixels=pixels, masks=masks, slice_axis=image["slice_axis"], slice_index=image["slice_index"])))

    by_image: dict[str, list[ROI]] = {}
    for image, sl in loaded:
        if sl.masks:
            s = settings[image["dataset"]]
            by_image[image["image_id"]] = rois_from_masks(sl, min_area_px=s.min_area_px, merge_per_label=s.merge_per_label)
    if experts is not None:
        pending = [(image, sl) for image, sl in loaded if not sl.masks]
        try:
            by_image.update(expert_rois(pending, experts))
        except Exception as exc:  # a failing expert leaves those images described whole, with a reject row each
            for image, _ in pending:
                rejects.add(image["item_id"], image["source_file"], "expert_failed", f"{type(exc).__name__}: {exc}")

    rows: list[dict] = []
    n_capped = 0
    for image, sl in loaded:
        rois, capped = cap_rois(by_image.get(image["image_id"], []), settings[image["dataset"]])
        n_capped += capped
        if not rois:
            rows.append(whole_image_row(image))
            continue
        rows.extend(roi_rows(image, sl, rois, storage))
    df = conform(rows, ROIS_SCHEMA)
    by_origin = dict(df.group_by("origin").len().iter_rows()) if not df.is_empty() else {}
    return RoisResult(df, rejects.frame(), time.perf_counter() - t0, n_capped, by_origin)


def roi_rows(image: dict, sl: Slice2D, rois: list[ROI], storage) -> list[dict]:
    """Manifest rows (geometry, relations, overlay) for the ROIs of one image."""
    orientation = image["orientation"]
    organ_labels = {layer.label for layer in sl.masks if layer.label_id is not None}  # label maps hold organs
    relations = roi_relations(rois, sl.width, sl.height, orientation, organ_labels=organ_labels or None)
    rows = []
    for idx, (roi, rel) in enumerate(zip(rois, relations)):
        rec = roi_record(roi, sl.width, sl.height, orientation)
        overlay = render_overlay(sl.pixels, [roi])
        overlay_uri = storage.write_bytes(f"overlays/{image['image_id']}/roi_{idx:03d}.png", encode_png(overlay))
        box = (rec["bbox_x0"], rec["bbox_y0"], rec["bbox_x1"], rec["bbox_y1"])
        rows.append(
            {
                "roi_id": f"{image['image_id']}#{idx:03d}",
                "image_id": image["image_id"],
                "dataset": image["dataset"],
                "shard": image["shard"],
                "roi_index": idx,
                **{k: rec[k] for k in _GEOMETRY_KEYS},
                "anatomical_position": anatomical_position(box, sl.width, sl.height, orientation),
                "relations": list(rel),
                "overlay_uri": overlay_uri,
            }
        )
    return rows


_GEOMETRY_KEYS = (
    "label",
    "origin",
    "score",
    "instance",
    "bbox_x0",
    "bbox_y0",
    "bbox_x1",
    "bbox_y1",
    "bbox_norm",
    "area_px",
    "area_frac",
    "centroid_x",
    "centroid_y",
    "n_components",
    "position",
    "rle",
)
