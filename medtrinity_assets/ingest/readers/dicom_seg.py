"""DICOM-SEG objects as masks: one binary MaskVolume per segment, placed on the image's slices."""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pydicom

from medtrinity_assets.ingest.guards import check_pixel_budget
from medtrinity_assets.ingest.readers.dicom_dataset import (
    GEOMETRY_TOL,
    decode_pixels,
    floats,
    header_int,
    is_seg,
    read_header,
    seq_item,
)
from medtrinity_assets.ingest.stack import MaskVolume, Stack
from medtrinity_assets.records import RejectError


def _segment_labels(ds: pydicom.Dataset) -> dict[int, str]:
    """Segment number -> structure name: the coded property's meaning (mandatory in a conformant
    SEG), the free-text Segment Label only when no code is given."""
    labels = {}
    for item in ds.get("SegmentSequence", []) or []:
        number = header_int(item, "SegmentNumber", 0)
        code = seq_item(item, "SegmentedPropertyTypeCodeSequence")
        name = str(getattr(code, "CodeMeaning", "") or "") or str(item.get("SegmentLabel", "") or "")
        name = re.sub(r"[^\w ()/+.,'-]", "", name).strip()[:64]  # a structure name, nothing else
        labels[number] = name or f"segment_{number}"
    return labels


def read_seg_masks(path: str, stack: Stack, max_pixels: int) -> list[MaskVolume]:
    """One binary MaskVolume per segment of a DICOM-SEG, placed on `stack`'s slices.

    Frames are matched to the image's stored slices by referenced SOP Instance UID, else by
    position along the slice normal (within half a slice spacing). pydicom's warnings about
    non-conformant values (which quote the values) are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _seg_volumes(path, stack, max_pixels)


def _seg_volumes(path: str, stack: Stack, max_pixels: int) -> list[MaskVolume]:
    ds = read_header(path, defer=False)
    if not is_seg(ds):
        raise RejectError("unsupported_mask", "DICOM mask file is not a DICOM SEG")
    n_frames = max(header_int(ds, "NumberOfFrames", 1), 1)
    check_pixel_budget(header_int(ds, "Rows") * header_int(ds, "Columns") * n_frames, max_pixels, "mask")
    n_slices, rows, cols = stack.stored_shape
    if (header_int(ds, "Rows"), header_int(ds, "Columns")) != (rows, cols):
        raise RejectError(
            "shape_mismatch", f"SEG frames {header_int(ds, 'Rows')}x{header_int(ds, 'Columns')} vs image {rows}x{cols}"
        )
    frames = decode_pixels(ds)
    if str(ds.get("SegmentationType", "BINARY")).upper() == "FRACTIONAL":
        top = float(ds.get("MaximumFractionalValue", 255) or 255)
        frames = (frames.astype(np.float32) >= top / 2.0).astype(np.uint8)
    labels = _segment_labels(ds)
    uids = [u for u in (stack.slice_uids or []) if u]
    # SOP UIDs identify slices only when each slice is its own instance (not frames of one object)
    uid_index = (
        {u: i for i, u in enumerate(stack.slice_uids or [])} if len(set(uids)) == len(stack.slice_uids or [1]) else {}
    )
    positions = np.asarray(stack.slice_positions) if stack.slice_positions else None
    half_gap = 0.5 * (float(np.median(np.diff(positions))) if positions is not None and len(positions) > 1 else 1.0)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    volumes: dict[int, np.ndarray] = {}
    placed = 0
    for f in range(frames.shape[0]):
        item = per_frame[f] if f < len(per_frame) else None
        seg_id = getattr(seq_item(item, "SegmentIdentificationSequence"), "ReferencedSegmentNumber", None)
        seg_id = int(seg_id) if seg_id is not None else 1
        target = _match_seg_frame(item, uid_index, positions, stack.slice_normal, half_gap, n_slices)
        if target is None:
            continue
        vol = volumes.setdefault(seg_id, np.zeros((n_slices, rows, cols), dtype=np.uint8))
        vol[target] |= (frames[f] > 0).astype(np.uint8)
        placed += 1
    if placed == 0:
        raise RejectError("shape_mismatch", "no SEG frame refers to a slice of this image")
    # `vol` is in sorted-slice order (the order of `slice_positions`), i.e. before the volume's reorientation
    place = stack.reorientation.apply if stack.reorientation is not None else stack.to_canonical
    return [
        MaskVolume(place(vol), "binary", labels.get(sid, f"segment_{sid}"), label_id=sid)
        for sid, vol in sorted(volumes.items())
    ]


def _match_seg_frame(
    item: Any,
    uid_index: dict[str, int],
    positions: np.ndarray | None,
    normal: np.ndarray | None,
    half_gap: float,
    n_slices: int,
) -> int | None:
    """Stored slice index a SEG frame belongs to (by referenced SOP UID, else by position), or None."""
    derivation = seq_item(item, "DerivationImageSequence")
    source = seq_item(derivation, "SourceImageSequence")
    uid = str(getattr(source, "ReferencedSOPInstanceUID", "") or "")
    if uid and uid in uid_index:
        return uid_index[uid]
    pos = floats(getattr(seq_item(item, "PlanePositionSequence"), "ImagePositionPatient", None))
    if pos and positions is not None and normal is not None:
        proj = float(np.dot(np.asarray(pos), normal))
        nearest = int(np.argmin(np.abs(positions - proj)))
        if abs(positions[nearest] - proj) <= half_gap + GEOMETRY_TOL:
            return nearest
        return None
    if n_slices == 1 and positions is None:
        return 0
    return None
