"""roi_masks: ROIs of one shard's images — from ground-truth masks, else from routed expert models,
else a whole-image record (never dropped silently). Each ROI gets an overlay image for visual prompting."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import polars as pl

from medtrinity_assets.catalog import RoiSettings
from medtrinity_assets.ingest import encode_png
from medtrinity_assets.records import ROI, Slice2D
from medtrinity_assets.rois import (
    grid_position,
    rois_from_label_map,
    measure_roi,
    render_overlay,
    roi_record,
    roi_neighbourhood,
    rois_from_masks,
    slice_values,
)
from medtrinity_assets.rois.groups import InstanceGroup, group_instances, with_group
from medtrinity_assets.schema import ROIS_SCHEMA, conform
from medtrinity_assets.stages.common import Rejects, decode_native, decode_png, load_mask_layers
from medtrinity_assets.stages.facts import frame_from_row, measurement_columns, position_columns, relation_structs


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
        **position_columns(None),
        "relations": [],
        "contacts": None,
        **measurement_columns(None),
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
    """Run routed experts in batches (one predict call per expert, per volume for 3D experts) and
    turn their label maps into ROIs."""
    groups: dict[tuple[str, str], list[tuple[dict, Slice2D]]] = {}
    for image, sl in pending:
        expert = experts.route(image["modality"], list(image["organs"]), list(image["labels"]))
        if not expert:
            continue
        volume_key = image["item_id"] if experts.spec(expert).spatial_dims == 3 else ""
        groups.setdefault((expert, volume_key), []).append((image, sl))
    out: dict[str, list[ROI]] = {}
    for (expert, _), members in groups.items():
        spec = experts.spec(expert)
        members.sort(key=lambda m: (m[0]["item_id"], m[0]["slice_index"] or 0))
        for (image, _), label_map in zip(members, experts.predict(expert, [sl for _, sl in members])):
            out[image["image_id"]] = rois_from_label_map(label_map, spec.min_area_px, spec.score_threshold)
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
            native = decode_native(storage.read_uri(image["native_uri"])) if image.get("native_uri") else None
        except Exception as exc:
            rejects.add(image["item_id"], image["source_file"], "roi_grounding_failed", f"{type(exc).__name__}: {exc}")
            continue
        sl = Slice2D(pixels=pixels, masks=masks, slice_axis=image["slice_axis"], slice_index=image["slice_index"])
        sl.native, sl.native_unit, sl.frame = native, image.get("native_unit"), frame_from_row(image)
        loaded.append((image, sl))

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
        s = settings[image["dataset"]]
        rois, groups = by_image.get(image["image_id"], []), {}
        if s.instances == "group" and rois:
            spacing = sl.frame.spacing_rc if sl.frame else None
            rois, groups = group_instances(rois, sl.width, sl.height, spacing, s.group_above)
        if len(rois) > s.max_rois_per_image:  # the cap keeps the largest; group indices follow them
            kept, capped = cap_rois(rois, s)
            n_capped += capped
            position = {id(r): j for j, r in enumerate(kept)}
            groups = {position[id(rois[i])]: g for i, g in groups.items() if id(rois[i]) in position}
            rois = kept
        if not rois:
            rows.append(whole_image_row(image))
            continue
        rows.extend(roi_rows(image, sl, rois, storage, groups, components=s.components))
    df = conform(rows, ROIS_SCHEMA)
    by_origin = dict(df.group_by("origin").len().iter_rows()) if not df.is_empty() else {}
    return RoisResult(df, rejects.frame(), time.perf_counter() - t0, n_capped, by_origin)


def roi_rows(
    image: dict, sl: Slice2D, rois: list[ROI], storage, groups: dict[int, InstanceGroup] | None = None, components: str = "instances"
) -> list[dict]:
    """Manifest rows (geometry, typed position, relations and contacts, measurements, overlay) of one image's
    ROIs; `groups` (ROI index -> `InstanceGroup`) adds the instance summary of grouped ROIs;
    `components` (catalog ``rois.components``) says what several ROIs of one label are."""
    organ_labels = {layer.label for layer in sl.masks if layer.label_id is not None}  # label maps hold organs
    near = roi_neighbourhood(rois, sl.width, sl.height, sl.frame, organ_labels=organ_labels or None)
    values = slice_values(sl.pixels, sl.native, sl.native_unit)
    spacing = sl.frame.spacing_rc if sl.frame else None
    by_label: dict[str, list[int]] = {}
    for idx, roi in enumerate(rois):
        by_label.setdefault(roi.label, []).append(idx)
    label_union = {label: _union([rois[j].mask for j in members]) for label, members in by_label.items() if len(members) > 1}
    rows = []
    for idx, (roi, rel, contacts) in enumerate(zip(rois, near.relations, near.contacts)):
        rec = roi_record(roi, sl.width, sl.height)
        overlay = render_overlay(sl.pixels, [roi])
        overlay_uri = storage.write_bytes(f"overlays/{image['image_id']}/roi_{idx:03d}.png", encode_png(overlay))
        box = (rec["bbox_x0"], rec["bbox_y0"], rec["bbox_x1"], rec["bbox_y1"])
        centroid = (rec["centroid_x"] * sl.width, rec["centroid_y"] * sl.height)
        union = label_union.get(roi.label)
        siblings = None if union is None else union & ~roi.mask
        measured = measure_roi(roi.mask, values, spacing, same_label=siblings, label_count=len(by_label[roi.label]))
        if len(by_label[roi.label]) > 1:
            measured = replace(measured, count_kind=components)
        if groups and idx in groups:
            measured = with_group(measured, groups[idx])
        rows.append(
            {
                "roi_id": f"{image['image_id']}#{idx:03d}",
                "image_id": image["image_id"],
                "dataset": image["dataset"],
                "shard": image["shard"],
                "roi_index": idx,
                **{k: rec[k] for k in _GEOMETRY_KEYS},
                **position_columns(grid_position(box, sl.width, sl.height, sl.frame, centroid)),
                "relations": relation_structs(rel),
                "contacts": list(contacts),
                **measurement_columns(measured),
                "overlay_uri": overlay_uri,
            }
        )
    return rows


def _union(masks: list):
    if not masks:
        return None
    out = masks[0].copy()
    for m in masks[1:]:
        out |= m
    return out


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
