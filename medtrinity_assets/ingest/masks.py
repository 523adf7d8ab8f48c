"""Ground-truth masks: decode every MaskRef onto the image's grid and split planes into MaskLayers.

Conventions (`ingest/conventions.py`): ``binary`` nonzero = foreground; ``threshold`` value >
threshold (lossy JPEG masks); ``multilabel`` integer ids named by `label_table`; ``instance`` every
nonzero id is one instance of `label`; ``boxes`` / ``polygons`` annotation files. Raster masks (PNG/JPEG/TIFF) are on the source's stored
pixel grid and follow the image's permutation/flips; volume masks (NIfTI/NRRD/MHA) are
canonicalised by their own direction; DICOM-SEG frames are placed by SOP UID / position.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage

from medtrinity_assets.ingest.annotations import annotation_layers
from medtrinity_assets.ingest.conventions import mask_convention, to_convention
from medtrinity_assets.ingest.formats import detect_format, strip_extension
from medtrinity_assets.ingest.guards import check_exists, check_regular_file, check_within_root
from medtrinity_assets.ingest.readers.dicom_seg import read_seg_masks
from medtrinity_assets.ingest.readers.raster import read_raster_labels
from medtrinity_assets.ingest.readers.volume import read_volume_labels
from medtrinity_assets.ingest.stack import MaskVolume, Stack
from medtrinity_assets.records import MaskLayer, MaskRef, RejectError

_KEPT_REASONS = {
    "decompression_bomb",
    "shape_mismatch",
    "unsupported_mask",
    "path_escapes_root",
    "mask_missing",
    "geometry_mismatch",
    "non_finite_values",
}
SPACING_TOL = 0.01


def _check_spacing(stack: Stack, spacing_zyx: tuple[float, float, float], path: str) -> None:
    if stack.kind != "volume" or any(s is None for s in stack.spacing):
        return
    for a, b in zip(stack.spacing, spacing_zyx):
        if abs(float(a) - float(b)) > SPACING_TOL * max(abs(float(a)), 1e-6):
            raise RejectError(
                "geometry_mismatch",
                f"mask {os.path.basename(path)} voxel spacing {tuple(round(s, 4) for s in spacing_zyx)} "
                f"differs from the image's {tuple(round(float(s), 4) for s in stack.spacing)}",
            )


def read_mask_values(ref: MaskRef, stack: Stack, max_pixels: int) -> list[MaskVolume]:
    """Decode one MaskRef onto `stack`'s canonical grid (RejectError on any mismatch)."""
    convention = mask_convention(ref.convention)
    if convention.annotation_file:
        height, width = (int(v) for v in tuple(stack.stored_shape)[-2:])
        volumes = []
        for label, instance, mask in annotation_layers(ref, height, width):
            values = np.broadcast_to(mask.astype(np.uint8), tuple(stack.stored_shape)).copy()
            volumes.append(MaskVolume(stack.to_canonical(values), "binary", label, None, instance))
        return volumes
    fmt = detect_format(ref.path)
    name = ref.label or strip_extension(ref.path)
    if fmt in ("png", "jpeg", "tiff"):
        values = read_raster_labels(ref.path, fmt, max_pixels, convention.colour, ref.convention)
        if tuple(values.shape) != tuple(stack.stored_shape):
            raise _shape_mismatch(ref.path, values.shape, stack.stored_shape)
        values = stack.to_canonical(values)
    elif fmt in ("nifti", "nrrd", "mha"):
        values, spacing = read_volume_labels(ref.path, max_pixels)
        if tuple(values.shape) != stack.spatial_shape:
            raise _shape_mismatch(ref.path, values.shape, stack.spatial_shape)
        _check_spacing(stack, spacing, ref.path)
    elif fmt == "dicom":
        volumes = read_seg_masks(ref.path, stack, max_pixels)
        if ref.convention == "multilabel" and ref.label_table:
            for v in volumes:
                v.label = ref.label_table.get(int(v.label_id or 0), v.label)
        elif ref.label and len(volumes) == 1:
            volumes[0].label = ref.label
        return volumes
    elif fmt == "empty":
        raise RejectError("corrupt_mask", f"mask {os.path.basename(ref.path)} is empty")
    else:
        raise RejectError("unsupported_mask", f"mask {os.path.basename(ref.path)}: format {fmt}")
    ids = to_convention(values, ref)
    return [MaskVolume(ids, convention.layers, name, ref.label_table, ref.instance)]


def _shape_mismatch(path: str, mask_shape, image_shape) -> RejectError:
    detail = f"mask {os.path.basename(path)} is {_shape_text(mask_shape)}, image is {_shape_text(image_shape)}"
    return RejectError("shape_mismatch", detail)


def _shape_text(shape) -> str:
    dims = [int(s) for s in shape]
    if len(dims) == 3 and dims[0] == 1:
        dims = dims[1:]
    return "x".join(str(d) for d in dims)


def load_mask_volumes(masks: tuple[MaskRef, ...], stack: Stack, max_pixels: int, root: str | None) -> list[MaskVolume]:
    """All masks of an item on the image's grid; any bad mask rejects the item."""
    volumes: list[MaskVolume] = []
    for ref in masks:
        check_within_root(ref.path, root)
        check_exists(ref.path, "mask")
        check_regular_file(ref.path, "mask")
        try:
            volumes.extend(read_mask_values(ref, stack, max_pixels))
        except RejectError as exc:
            if exc.reason in _KEPT_REASONS or exc.reason == "corrupt_mask":
                raise
            raise RejectError(
                "corrupt_mask", f"mask {os.path.basename(ref.path)}: {exc.reason}: {exc.detail}"
            ) from None
    return volumes


def split_ids(plane_ids: np.ndarray) -> list[tuple[int, np.ndarray, tuple[int, int]]]:
    """(id, boolean crop, crop offset (row, col)) for every positive id of an integer plane, in id order.

    One pass over the foreground pixels (grouped by id); each id gets only its bounding-box crop,
    so memory follows the foreground, not ids x height x width (4,000 nuclei on a 512^2 tile
    hold about as much as the tile itself).
    """
    ys, xs = np.nonzero(plane_ids > 0)
    if ys.size == 0:
        return []
    ids = plane_ids[ys, xs]
    order = np.argsort(ids, kind="stable")
    ids, ys, xs = ids[order], ys[order], xs[order]
    uniq, starts = np.unique(ids, return_index=True)
    ends = list(starts[1:]) + [ids.size]
    out = []
    for value, start, end in zip(uniq, starts, ends):
        ry, rx = ys[start:end], xs[start:end]
        y0, x0 = int(ry.min()), int(rx.min())
        crop = np.zeros((int(ry.max()) - y0 + 1, int(rx.max()) - x0 + 1), dtype=bool)
        crop[ry - y0, rx - x0] = True
        out.append((int(value), crop, (y0, x0)))
    return out


def mask_layers(plane_ids: np.ndarray, volume: MaskVolume) -> list[MaskLayer]:
    """MaskLayers (sparse crops) of one (already resized) plane of one mask volume; empty structures are omitted."""
    shape = (int(plane_ids.shape[0]), int(plane_ids.shape[1]))
    if volume.convention == "binary":
        if not plane_ids.any():
            return []
        return [MaskLayer(volume.label, plane_ids != 0, instance=volume.instance, label_id=volume.label_id)]
    layers = []
    for value, crop, offset in split_ids(plane_ids):
        if volume.convention == "multilabel":
            name = (volume.label_table or {}).get(value, f"label_{value}")
            layers.append(MaskLayer.from_crop(name, crop, offset, shape, label_id=value))
        else:
            layers.append(MaskLayer.from_crop(volume.label, crop, offset, shape, instance=value))
    return layers


def small_components(layers: list[MaskLayer], min_area_px: int, merge_per_label: bool = False) -> int:
    """Number of 8-connected GT components below `min_area_px` (what ROI grounding drops).

    Counted as grounding sees them: per layer, or per label's union with `merge_per_label`.
    """
    if merge_per_label:
        unions: dict[str, np.ndarray] = {}
        for layer in layers:
            m = layer.mask
            unions[layer.label] = unions[layer.label] | m if layer.label in unions else m.copy()
        crops = list(unions.values())
    else:
        crops = [layer.crop for layer in layers if layer.crop.ndim == 2]
    dropped = 0
    for crop in crops:
        if not crop.any():
            continue
        labelled, n = ndimage.label(crop, structure=np.ones((3, 3), dtype=bool))
        areas = np.bincount(labelled.ravel(), minlength=n + 1)[1:]
        dropped += int(np.count_nonzero(areas < max(int(min_area_px), 1)))
    return dropped
