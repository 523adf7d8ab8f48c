"""load_item: one SourceItem -> display-ready Slice2Ds with aligned ground-truth mask layers.

Steps (each a small function of its own module): guards (root, existence, format sniffing,
pixel budget) -> reader (DICOM / SimpleITK volume / raster) -> masks onto the same grid ->
slicing policy -> intensity plan -> per plane: display mapping, square pixels + size bound
(nearest neighbour for masks) -> MaskLayers + PHI-free meta.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtrinity_assets.ingest.deid import patient_hash, patient_salt, safe_error_text
from medtrinity_assets.ingest.formats import resolve_format
from medtrinity_assets.ingest.guards import check_detached_data, check_exists, check_regular_file, check_within_root
from medtrinity_assets.ingest.intensity import IntensityPlan, IntensitySource, plan_intensity
from medtrinity_assets.ingest.masks import load_mask_volumes, mask_layers
from medtrinity_assets.ingest.frames import display_frame, native_plane
from medtrinity_assets.ingest.orientation import ORIENTATION_TEXT, cut_plane, plane_spacing
from medtrinity_assets.ingest.policy import IngestPolicy
from medtrinity_assets.ingest.readers.dicom import read_dicom
from medtrinity_assets.ingest.readers.raster import read_raster, rgb_is_grey, rgb_to_grey
from medtrinity_assets.ingest.readers.volume import read_volume
from medtrinity_assets.ingest.resize import check_min_side, resize_labels, resize_pixels, target_size
from medtrinity_assets.ingest.slicing import (
    choose_axis,
    count_planes,
    foreground_fractions,
    mask_presence,
    select_planes,
)
from medtrinity_assets.ingest.stack import MaskVolume, Stack
from medtrinity_assets.records import RejectError, Slice2D, SourceItem

_CT_NAMES = {"ct", "computed tomography", "cect", "ncct", "cta"}


def catalog_says_ct(modality: str) -> bool:
    return modality.strip().lower() in _CT_NAMES or modality.strip().lower().startswith("ct ")


def read_stack(path: str, fmt: str, item: SourceItem, policy: IngestPolicy, root: str | None) -> Stack:
    """Decode the item's pixels with the reader of its format."""
    if fmt == "dicom":
        return read_dicom(path, policy.max_pixels, root)
    if fmt in ("nifti", "nrrd", "mha"):
        check_detached_data(path, fmt, root)
        return read_volume(path, policy.max_pixels, hu=catalog_says_ct(item.modality), keep_colour=policy.keep_colour)
    if fmt in ("png", "jpeg", "tiff"):
        return read_raster(path, fmt, policy.max_pixels, policy.keep_colour)
    raise RejectError("unsupported_format", f"no reader for format '{fmt}'")


def normalise_colour(stack: Stack, keep_colour: bool) -> Stack:
    """Grey stored as RGB becomes grey; colour becomes grey when `keep_colour` is False."""
    if not stack.rgb:
        return stack
    if stack.data.dtype == np.uint8 and rgb_is_grey(stack.data):
        stack.data = np.ascontiguousarray(stack.data[..., 0])
        stack.rgb = False
        stack.meta["colour"] = "grey stored as RGB"
    elif not keep_colour:
        stack.data = rgb_to_grey(stack.data)
        stack.rgb = False
        stack.meta["colour"] = "converted to grey (keep_colour=False)"
    return stack


def original_shape(stack: Stack) -> list[int]:
    """Stored pixel-array shape (frames/slices, rows, cols[, 3]); the leading 1 of a single 2D image dropped."""
    shape = list(stack.stored_shape)
    if shape and shape[0] == 1:
        shape = shape[1:]
    if stack.rgb:
        shape.append(3)
    return [int(s) for s in shape]


def _spacing_meta(stack: Stack) -> list[float] | None:
    if stack.kind == "volume" and all(s is not None for s in stack.spacing):
        return [round(float(s), 6) for s in stack.spacing]
    if stack.kind == "frames" and stack.spacing[1] and stack.spacing[2]:
        return [round(float(stack.spacing[1]), 6), round(float(stack.spacing[2]), 6)]
    return None


def item_meta(stack: Stack, item: SourceItem, fmt: str, plan: IntensityPlan, policy: IngestPolicy) -> dict[str, Any]:
    """Meta shared by all slices of an item (JSON-serialisable, PHI-free)."""
    meta = dict(stack.meta)
    meta["source_format"] = fmt
    meta["original_shape"] = original_shape(stack)
    spacing = _spacing_meta(stack)
    if spacing is not None:
        meta["spacing"] = spacing
    meta.setdefault("modality_header", "")
    meta.setdefault("body_part", "")
    meta.setdefault("photometric", "")
    meta.setdefault("transfer_syntax", "")
    meta["intensity"] = plan.describe()
    pid = stack.patient_id or str(item.extra.get("patient_id", "") or "")
    meta["patient_hash"] = patient_hash(pid, policy.patient_salt_env)
    if meta["patient_hash"]:
        meta["patient_hash_salt"] = patient_salt(policy.patient_salt_env)[1]
    return meta


def _plane(array: np.ndarray, axis: str, index: int) -> np.ndarray:
    return array[index] if axis == "frame" else cut_plane(array, axis, index)


def _plane_spacing(stack: Stack, axis: str) -> tuple[float | None, float | None] | None:
    if axis == "frame":
        return (stack.spacing[1], stack.spacing[2]) if stack.spacing[1] and stack.spacing[2] else None
    if any(s is None for s in stack.spacing):
        return None
    return plane_spacing(stack.spacing, axis)  # type: ignore[arg-type]


def make_slice(
    stack: Stack,
    masks: list[MaskVolume],
    plan: IntensityPlan,
    axis: str,
    index: int,
    out_hw: tuple[int, int],
    base_meta: dict[str, Any],
    n: int,
) -> Slice2D:
    """Display pixels + mask layers + meta of one plane."""
    raw = _plane(stack.data, axis, index)
    pixels = resize_pixels(np.ascontiguousarray(plan.apply(raw)), out_hw)
    layers = []
    for mv in masks:
        ids = resize_labels(_plane(mv.data, axis, index), out_hw)
        layers.extend(mask_layers(ids, mv))
    meta = dict(base_meta)
    meta["output_shape"] = [int(out_hw[0]), int(out_hw[1])]
    if raw.shape[:2] != out_hw:
        meta["resized_from"] = [int(raw.shape[0]), int(raw.shape[1])]
    spacing = _plane_spacing(stack, axis)
    spacing_out = None
    if spacing is not None:
        spacing_out = (
            round(float(spacing[0]) * raw.shape[0] / out_hw[0], 6),
            round(float(spacing[1]) * raw.shape[1] / out_hw[1], 6),
        )
        meta["pixel_spacing_out"] = list(spacing_out)
    native, native_unit = native_plane(stack, raw, out_hw)
    single_2d = axis == "frame" and n == 1
    meta["slice_axis"] = None if single_2d else axis
    meta["slice_index"] = None if single_2d else int(index)
    meta["n_slices"] = int(n)
    if axis == "frame" and n > 1:
        meta["frame_index"] = int(index)
    return Slice2D(
        pixels=pixels,
        masks=layers,
        slice_axis=None if single_2d else axis,
        slice_index=None if single_2d else int(index),
        meta=meta,
        native=native,
        native_unit=native_unit,
        frame=display_frame(stack, axis, index, out_hw, spacing_out),
    )


def load_item(item: SourceItem, policy: IngestPolicy) -> list[Slice2D]:
    """Display-ready slices of one source item; RejectError(reason, detail) for bad input."""
    root = str(item.extra.get("source_root") or "") or None
    path = check_within_root(item.image_path, root)
    check_exists(item.image_path)
    check_regular_file(path)
    fmt = resolve_format(path, item.format)
    stack = normalise_colour(read_stack(path, fmt, item, policy, root), policy.keep_colour)
    axis = choose_axis(stack, policy.slicing)
    n = count_planes(stack, axis)
    probe = _plane(stack.data, axis, 0)
    out_hw = target_size(
        probe.shape[0],
        probe.shape[1],
        _plane_spacing(stack, axis),
        policy.output.max_side,
        policy.slicing.resample_isotropic,
    )
    check_min_side(*out_hw, policy.output.min_side)
    masks = load_mask_volumes(item.masks, stack, policy.max_pixels, root)
    presence = mask_presence(masks, axis, n) if masks else None
    fg = foreground_fractions(stack, axis) if policy.slicing.min_foreground > 0 else None
    indices, rule = select_planes(n, policy.slicing, bool(item.masks), presence, fg)
    if not indices:
        raise RejectError(
            "no_slices",
            f"no plane of {n} passed the slicing policy ({rule}, min_foreground={policy.slicing.min_foreground})",
        )
    source = IntensitySource(
        stack.data,
        stack.rgb,
        stack.hu,
        stack.header_window,
        stack.voi_lut,
        stack.monochrome1,
        stack.bits_stored,
        eight_bit_display=stack.kind == "frames" or fmt == "dicom",
    )
    plan = plan_intensity(source, policy.intensity, tuple(item.organs))
    base = item_meta(stack, item, fmt, plan, policy)
    base["orientation"] = stack.frame_orientation if axis == "frame" else ORIENTATION_TEXT[axis]
    base["selection"] = {"rule": rule, "policy": policy.slicing.select, "n_candidates": int(n)}
    return [make_slice(stack, masks, plan, axis, i, out_hw, base, n) for i in indices]


def load_items(
    items: list[SourceItem] | tuple[SourceItem, ...], policy: IngestPolicy
) -> tuple[dict[tuple[str, str], list[Slice2D]], list[dict[str, str]]]:
    """Ingest many items without raising: ({(dataset, item_id): slices}, [reject rows]).

    A reject row has dataset, item_id, source_file, reason, detail; an unexpected exception
    becomes reason ``unexpected_error`` (with its type and message) so one bad file never
    stops a batch.
    """
    slices: dict[tuple[str, str], list[Slice2D]] = {}
    rejects: list[dict[str, str]] = []
    for item in items:
        try:
            slices[(item.dataset, item.item_id)] = load_item(item, policy)
        except RejectError as exc:
            rejects.append(_reject_row(item, exc.reason, exc.detail))
        except Exception as exc:  # noqa: BLE001 - the batch must go on; the reason says what happened
            rejects.append(_reject_row(item, "unexpected_error", safe_error_text(exc, limit=500)))
    return slices, rejects


def _reject_row(item: SourceItem, reason: str, detail: str) -> dict[str, str]:
    return {
        "dataset": item.dataset,
        "item_id": item.item_id,
        "source_file": item.rel_path,
        "reason": reason,
        "detail": detail,
    }
