"""DICOM through pydicom: single files, series directories, (enhanced) multi-frame, DICOM-SEG masks.

Pixel decoding goes through pydicom's plugins (uncompressed, RLE, deflate natively; JPEG
baseline/extended/lossless, JPEG-LS and JPEG 2000 through pylibjpeg-libjpeg/-openjpeg).
Stored values are rescaled (Rescale Slope/Intercept per frame -> HU for CT), PALETTE COLOR is
expanded and YBR converted to RGB; MONOCHROME1 is inverted at display mapping time.
Only whitelisted technical header fields reach `Stack.meta` (see `deid`).
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut

from medtrinity_assets.ingest.deid import safe_error_text, technical_meta, transfer_syntax_meta
from medtrinity_assets.ingest.formats import detect_format
from medtrinity_assets.ingest.guards import check_pixel_budget, check_within_root
from medtrinity_assets.ingest.orientation import (
    direction_from_dicom,
    radiograph_flips,
    reorientation_from_direction,
)
from medtrinity_assets.ingest.stack import MaskVolume, Stack
from medtrinity_assets.records import RejectError

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_NOT_IMAGE_MODALITIES = {
    "SEG": "DICOM SEG",
    "RTSTRUCT": "DICOM RT Structure Set",
    "SR": "DICOM Structured Report",
    "RTPLAN": "DICOM RT Plan",
    "PR": "DICOM Presentation State",
    "KO": "DICOM Key Object",
}
_PROJECTION_MODALITIES = {"CR", "DX", "RG", "DR", "PX", "IO"}
_GEOMETRY_TOL = 1e-3


# --------------------------------------------------------------------------- header access


def read_header(path: str, defer: bool = True) -> pydicom.Dataset:
    """Parse a DICOM file (pixel data deferred); RejectError('corrupt_file') when it cannot be parsed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, defer_size="256 KB" if defer else None)
            # touch the data set so that a truncated header fails here, not later
            _ = len(ds)
            _ = ds.get("Modality"), ds.get("Rows"), ds.get("SOPClassUID")
    except (
        InvalidDicomError,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        IndexError,
        NotImplementedError,
        struct.error,
    ) as exc:
        raise RejectError("corrupt_file", f"cannot parse DICOM: {safe_error_text(exc)}") from None
    if len(ds) == 0:
        raise RejectError("corrupt_file", "no DICOM elements found")
    return ds


def header_int(ds: Any, keyword: str, default: int = 0) -> int:
    """An integer attribute; RejectError('corrupt_file') when its value is not an integer."""
    try:
        value = ds.get(keyword, default) if ds is not None else default
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise RejectError("corrupt_file", f"invalid {keyword} value in the DICOM header") from None


def is_seg(ds: pydicom.Dataset) -> bool:
    return str(ds.get("Modality", "")).upper() == "SEG" or str(ds.get("SOPClassUID", "")) == SEG_SOP_CLASS


def check_is_image(ds: pydicom.Dataset) -> None:
    """RejectError for non-image objects: SEG/RTSTRUCT/SR... ('not_an_image') or no pixel data."""
    modality = str(ds.get("Modality", "")).upper()
    if is_seg(ds):
        raise RejectError("not_an_image", "DICOM SEG (a segmentation object: use it as a mask of its source image)")
    if modality in _NOT_IMAGE_MODALITIES and not any(k in ds for k in _PIXEL_KEYWORDS):
        raise RejectError("not_an_image", _NOT_IMAGE_MODALITIES[modality])
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise RejectError("no_pixel_data", "DICOM object without pixel data")
    for keyword in ("Rows", "Columns"):
        if not header_int(ds, keyword):
            raise RejectError("corrupt_file", f"pixel data without {keyword}")


def _seq_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def _functional(ds: pydicom.Dataset, frame: int, seq_keyword: str) -> Any:
    """Item of a functional group macro for `frame` (per-frame first, then shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        item = _seq_item(per_frame[frame], seq_keyword)
        if item is not None:
            return item
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    return _seq_item(shared, seq_keyword)


def _floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (str, bytes, int, float)) else value
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def _first_float(value: Any) -> float | None:
    vals = _floats(value)
    return vals[0] if vals else None


@dataclass
class FrameGeometry:
    position: np.ndarray | None  # ImagePositionPatient
    orientation: np.ndarray | None  # ImageOrientationPatient (6)
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing)
    thickness: float | None


def frame_geometry(ds: pydicom.Dataset, frame: int) -> FrameGeometry:
    """Geometry of one frame (enhanced functional groups, or the classic top-level attributes)."""
    pos = _floats(getattr(_functional(ds, frame, "PlanePositionSequence"), "ImagePositionPatient", None))
    ori = _floats(getattr(_functional(ds, frame, "PlaneOrientationSequence"), "ImageOrientationPatient", None))
    measures = _functional(ds, frame, "PixelMeasuresSequence")
    spacing = _floats(getattr(measures, "PixelSpacing", None))
    thickness = _first_float(getattr(measures, "SliceThickness", None))
    if pos is None:
        pos = _floats(ds.get("ImagePositionPatient"))
    if ori is None:
        ori = _floats(ds.get("ImageOrientationPatient"))
    if spacing is None:
        spacing = _floats(ds.get("PixelSpacing")) or _floats(ds.get("ImagerPixelSpacing"))
    if thickness is None:
        thickness = _first_float(ds.get("SliceThickness"))
    return FrameGeometry(
        np.asarray(pos, dtype=float) if pos and len(pos) == 3 else None,
        np.asarray(ori, dtype=float) if ori and len(ori) == 6 else None,
        (spacing[0], spacing[1]) if spacing and len(spacing) >= 2 and min(spacing[:2]) > 0 else None,
        thickness,
    )


def rescale_for_frame(ds: pydicom.Dataset, frame: int) -> tuple[float, float, str]:
    """(slope, intercept, rescale type) for a frame."""
    item = _functional(ds, frame, "PixelValueTransformationSequence")
    src = item if item is not None and "RescaleSlope" in item else ds
    slope = _first_float(src.get("RescaleSlope")) if "RescaleSlope" in src else None
    intercept = _first_float(src.get("RescaleIntercept")) if "RescaleIntercept" in src else None
    rtype = str(src.get("RescaleType", "") or "").upper()
    return (slope if slope else 1.0), (intercept or 0.0), rtype


def header_window(ds: pydicom.Dataset, frame: int = 0) -> tuple[float, float, str] | None:
    """(center, width, function) from Frame VOI LUT or the classic window attributes."""
    item = _functional(ds, frame, "FrameVOILUTSequence")
    src = item if item is not None and "WindowCenter" in item else ds
    center, width = _first_float(src.get("WindowCenter")), _first_float(src.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    function = str(src.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    return center, width, ("SIGMOID" if function == "SIGMOID" else "LINEAR")


def header_voi_lut(ds: pydicom.Dataset) -> tuple[np.ndarray, int, int] | None:
    """(table, first mapped value, bits) of the first VOI LUT Sequence item, if any."""
    item = _seq_item(ds, "VOILUTSequence")
    if item is None or "LUTDescriptor" not in item or "LUTData" not in item:
        return None
    n_entries, first, bits = (int(v) for v in item.LUTDescriptor)
    n_entries = n_entries or 65536
    raw = item.LUTData
    if isinstance(raw, (bytes, bytearray)):  # OW: one 16-bit word per entry, whatever `bits`
        little = (getattr(ds, "original_encoding", None) or (None, True))[1] is not False
        table = np.frombuffer(raw[: 2 * (len(raw) // 2)], dtype="<u2" if little else ">u2")
    else:
        table = np.asarray(raw if isinstance(raw, (list, tuple)) or hasattr(raw, "__len__") else [raw])
    if table.size < 2:
        return None
    return table[:n_entries].astype(np.int64), first, bits


# --------------------------------------------------------------------------- pixel decoding


def _is_compressed(ds: pydicom.Dataset) -> bool:
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return bool(uid is not None and getattr(uid, "is_compressed", False))


def decode_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """Decoded frames as (frames, rows, cols[, 3]) in native byte order, colour converted to RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except Exception as exc:  # pydicom raises many types from its decoders; classify them
        msg = safe_error_text(exc)
        ts = transfer_syntax_meta(ds)["transfer_syntax"]
        if "less than expected" in msg or "truncat" in msg.lower() or "insufficient" in msg.lower():
            raise RejectError("corrupt_file", f"pixel data truncated: {msg}") from None
        if _is_compressed(ds):
            raise RejectError("decode_failed", f"cannot decode {ts}: {msg}") from None
        raise RejectError("corrupt_file", f"cannot decode pixel data ({ts}): {msg}") from None
    n_frames = max(header_int(ds, "NumberOfFrames", 1), 1)
    samples = max(header_int(ds, "SamplesPerPixel", 1), 1)
    if n_frames == 1 or arr.ndim == (2 if samples == 1 else 3):
        arr = arr[None]
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        arr = palette_to_rgb(arr, ds)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise RejectError("non_finite_values", "float pixel data with NaN/inf")
    return arr


def palette_to_rgb(frames: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """PALETTE COLOR -> uint8 RGB via the palette lookup tables."""
    try:
        rgb = np.stack([apply_color_lut(f, ds) for f in frames])
    except Exception as exc:
        raise RejectError("corrupt_file", f"invalid palette lookup table: {safe_error_text(exc)}") from None
    bits = int(ds.get("RedPaletteColorLookupTableDescriptor", [0, 0, 8])[2])
    if bits > 8 or rgb.max() > 255:
        rgb = (rgb.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    return rgb.astype(np.uint8)


def rescale(frames: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Modality rescale; integer results stay integer (int16 when they fit)."""
    if slope == 1.0 and intercept == 0.0:
        return frames
    if float(slope).is_integer() and float(intercept).is_integer() and frames.dtype.kind in "ui":
        out = frames.astype(np.int32) * int(slope) + int(intercept)
        if out.size and out.min() >= -32768 and out.max() <= 32767:
            return out.astype(np.int16)
        return out
    return frames.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def rescaled_frames(ds: pydicom.Dataset, frames: np.ndarray) -> tuple[np.ndarray, dict]:
    """Apply per-frame rescale; returns frames and a meta dict describing it."""
    if frames.ndim == 4:  # colour: no modality LUT
        return frames, {}
    params = [rescale_for_frame(ds, i) for i in range(frames.shape[0])]
    if all(p[:2] == params[0][:2] for p in params):
        out = rescale(frames, params[0][0], params[0][1])
    else:
        out = np.stack([rescale(f, s, b).astype(np.float32) for f, (s, b, _) in zip(frames, params)])
    slope, intercept, rtype = params[0]
    meta = (
        {"rescale": {"slope": slope, "intercept": intercept, "type": rtype or ""}}
        if (slope, intercept) != (1.0, 0.0)
        else {}
    )
    return out, meta


# --------------------------------------------------------------------------- assembling stacks


def _geometry_volume(
    frames: np.ndarray, geoms: list[FrameGeometry]
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], list[float], np.ndarray, list[int]] | None:
    """Sort frames along their common slice normal; None when they do not form one volume."""
    if not geoms or any(g.orientation is None or g.position is None for g in geoms):
        return None
    ori = geoms[0].orientation
    if any(np.abs(g.orientation - ori).max() > _GEOMETRY_TOL * 10 for g in geoms):
        return None
    direction = direction_from_dicom(ori)
    normal = direction[:, 2]
    proj = np.array([float(np.dot(g.position, normal)) for g in geoms])
    order = list(np.argsort(proj, kind="stable"))
    sorted_proj = proj[order]
    if len(order) > 1 and np.min(np.diff(sorted_proj)) < _GEOMETRY_TOL:
        return None  # repeated positions (several echoes/phases): not one volume
    spacing_rc = geoms[0].pixel_spacing or (1.0, 1.0)
    if len(order) > 1:
        slice_spacing = float(np.median(np.diff(sorted_proj)))
    else:
        slice_spacing = float(geoms[0].thickness or 1.0)
    stored = frames[order]
    return (
        stored,
        direction,
        (spacing_rc[1], spacing_rc[0], slice_spacing),
        [float(p) for p in sorted_proj],
        normal,
        [int(i) for i in order],
    )


def build_stack(
    frames: np.ndarray,
    geoms: list[FrameGeometry],
    ds: pydicom.Dataset,
    meta: dict,
    sop_uids: list[str] | None = None,
) -> Stack:
    """Frames + geometry -> canonical volume when the geometry allows, else an as-acquired frame stack."""
    rgb = frames.ndim == 4
    geo = _geometry_volume(frames, geoms)
    if geo is not None:
        stored, direction, spacing_ijk, positions, normal, order = geo
        reo = reorientation_from_direction(direction)
        meta["reoriented"] = not reo.is_identity
        if reo.obliquity < 0.95:
            meta["oblique"] = round(reo.obliquity, 4)
        if len(positions) > 2:
            gaps = np.diff(positions)
            if np.max(gaps) - np.min(gaps) > 0.1 * max(abs(float(np.median(gaps))), 1e-6):
                meta["uneven_slice_spacing"] = True
        return Stack(
            data=reo.apply(stored),
            kind="volume",
            spacing=reo.spacing(spacing_ijk),
            rgb=rgb,
            native_axis=reo.native_axis,
            reorientation=reo,
            to_canonical=lambda a, _o=order, _r=reo: _r.apply(a[_o]),
            stored_shape=tuple(frames.shape[:3]),
            meta=meta,
            slice_positions=positions,
            slice_uids=[sop_uids[i] for i in order] if sop_uids else None,
            slice_normal=normal,
        )
    spacing_rc = geoms[0].pixel_spacing if geoms else None
    stack = Stack(
        data=frames,
        kind="frames",
        spacing=(None, spacing_rc[0], spacing_rc[1]) if spacing_rc else (None, None, None),
        rgb=rgb,
        stored_shape=tuple(frames.shape[:3]),
        meta=meta,
    )
    modality = str(ds.get("Modality", "")).upper()
    flips = radiograph_flips(ds.get("PatientOrientation")) if modality in _PROJECTION_MODALITIES else None
    if flips is not None:
        rows, cols = flips
        index = (
            slice(None),
            slice(None, None, -1) if rows else slice(None),
            slice(None, None, -1) if cols else slice(None),
        )
        stack.data = frames[index]
        stack.to_canonical = lambda a, _i=index: a[_i]
        stack.frame_orientation = "radiographic: patient left on image right, head up"
        meta["reoriented"] = bool(rows or cols)
    return stack


def _common_meta(ds: pydicom.Dataset, frames: np.ndarray) -> dict:
    meta = technical_meta(ds)
    meta.update(transfer_syntax_meta(ds))
    meta["source_dtype"] = str(frames.dtype)
    photometric = meta.get("photometric", "")
    if photometric.startswith("YBR"):
        meta["colour"] = f"{photometric} converted to RGB"
    elif photometric == "PALETTE COLOR":
        meta["colour"] = "palette expanded to RGB"
    return meta


def _intensity_fields(stack: Stack, ds: pydicom.Dataset, rescale_type: str) -> Stack:
    modality = str(ds.get("Modality", "")).upper()
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    stack.hu = modality == "CT" and not stack.rgb and rescale_type in ("", "HU")
    stack.header_window = header_window(ds)
    stack.voi_lut = header_voi_lut(ds)
    stack.monochrome1 = photometric == "MONOCHROME1"
    bits = ds.get("BitsStored")
    stack.bits_stored = int(bits) if bits else None
    stack.patient_id = str(ds.get("PatientID", "") or "")
    return stack


def read_dicom_file(path: str, max_pixels: int) -> Stack:
    """A single DICOM file (single- or multi-frame)."""
    ds = read_header(path)
    check_is_image(ds)
    n_frames = max(header_int(ds, "NumberOfFrames", 1), 1)
    check_pixel_budget(header_int(ds, "Rows") * header_int(ds, "Columns") * max(n_frames, 1), max_pixels)
    frames = decode_pixels(ds)
    meta = _common_meta(ds, frames)
    frames, rescale_meta = rescaled_frames(ds, frames)
    meta.update(rescale_meta)
    geoms = [frame_geometry(ds, i) for i in range(frames.shape[0])]
    stack = build_stack(frames, geoms, ds, meta, sop_uids=[str(ds.get("SOPInstanceUID", ""))] * frames.shape[0])
    return _intensity_fields(stack, ds, rescale_for_frame(ds, 0)[2])


def _series_files(directory: str, root: str | None) -> list[str]:
    files = []
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            check_within_root(path, root)
            if os.path.getsize(path) > 0 and detect_format(path) == "dicom":
                files.append(path)
    return sorted(files)


def read_dicom_series(directory: str, max_pixels: int, root: str | None = None) -> Stack:
    """A directory holding one DICOM series, sorted by position along the slice normal."""
    files = _series_files(directory, root)
    if not files:
        raise RejectError("no_pixel_data", "directory holds no DICOM files")
    headers = []
    non_images = []
    for path in files:
        ds = read_header(path)
        try:
            check_is_image(ds)
        except RejectError as exc:
            non_images.append(exc)
            continue
        headers.append(ds)
    if not headers:
        raise non_images[0]
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in headers}
    if len(series) > 1:
        raise RejectError("multiple_series", f"directory holds {len(series)} series; one item must be one series")
    shapes = {
        (header_int(ds, "Rows"), header_int(ds, "Columns"), max(header_int(ds, "SamplesPerPixel", 1), 1))
        for ds in headers
    }
    if len(shapes) > 1:
        raise RejectError("inconsistent_series", f"slices of different sizes: {sorted(shapes)}")
    rows, cols, _ = shapes.pop()
    n_frames = sum(max(header_int(ds, "NumberOfFrames", 1), 1) for ds in headers)
    if n_frames != len(headers):
        raise RejectError("inconsistent_series", "series directory mixes multi-frame files; ingest them as files")
    check_pixel_budget(rows * cols * n_frames, max_pixels, "series")
    geoms = [frame_geometry(ds, 0) for ds in headers]
    if any(g.position is None for g in geoms):  # no geometry: instance order
        order = sorted(range(len(headers)), key=lambda i: header_int(headers[i], "InstanceNumber", 0))
        headers, geoms = [headers[i] for i in order], [geoms[i] for i in order]
    frames = []
    for ds in headers:
        decoded = decode_pixels(ds)
        out, _ = rescaled_frames(ds, decoded)
        frames.append(out[0])
    dtypes = {f.dtype for f in frames}
    stacked = np.stack([f.astype(np.float32) for f in frames]) if len(dtypes) > 1 else np.stack(frames)
    first = headers[0]
    meta = _common_meta(first, stacked)
    slope, intercept, rtype = rescale_for_frame(first, 0)
    if (slope, intercept) != (1.0, 0.0):
        meta["rescale"] = {"slope": slope, "intercept": intercept, "type": rtype}
    meta["series_n_files"] = len(headers)
    sop_uids = [str(ds.get("SOPInstanceUID", "")) for ds in headers]
    stack = build_stack(stacked, geoms, first, meta, sop_uids=sop_uids)
    if stack.kind != "volume" and len(headers) > 1 and all(g.position is not None for g in geoms):
        raise RejectError("inconsistent_series", "slices do not share one orientation or repeat positions")
    return _intensity_fields(stack, first, rtype)


def read_dicom(path: str, max_pixels: int, root: str | None = None) -> Stack:
    """A DICOM file or series directory (pydicom's warnings about non-conformant values are silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if os.path.isdir(path):
            return read_dicom_series(path, max_pixels, root)
        return read_dicom_file(path, max_pixels)


# --------------------------------------------------------------------------- DICOM-SEG as masks


def _segment_labels(ds: pydicom.Dataset) -> dict[int, str]:
    labels = {}
    for item in ds.get("SegmentSequence", []) or []:
        number = header_int(item, "SegmentNumber", 0)
        name = str(item.get("SegmentLabel", "") or "")
        if not name:
            code = _seq_item(item, "SegmentedPropertyTypeCodeSequence")
            name = str(getattr(code, "CodeMeaning", "") or "")
        name = re.sub(r"[^\w ()/+.,'-]", "", name).strip()[:64]  # a structure name, nothing else
        labels[number] = name or f"segment_{number}"
    return labels


def read_seg_masks(path: str, stack: Stack, max_pixels: int) -> list[MaskVolume]:
    """One binary MaskVolume per segment of a DICOM-SEG, placed on `stack`'s slices.

    Frames are matched to the image's stored slices by referenced SOP Instance UID, else by
    position along the slice normal (within half a slice spacing).
    """
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
        seg_id = getattr(_seq_item(item, "SegmentIdentificationSequence"), "ReferencedSegmentNumber", None)
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
    derivation = _seq_item(item, "DerivationImageSequence")
    source = _seq_item(derivation, "SourceImageSequence")
    uid = str(getattr(source, "ReferencedSOPInstanceUID", "") or "")
    if uid and uid in uid_index:
        return uid_index[uid]
    pos = _floats(getattr(_seq_item(item, "PlanePositionSequence"), "ImagePositionPatient", None))
    if pos and positions is not None and normal is not None:
        proj = float(np.dot(np.asarray(pos), normal))
        nearest = int(np.argmin(np.abs(positions - proj)))
        if abs(positions[nearest] - proj) <= half_gap + _GEOMETRY_TOL:
            return nearest
        return None
    if n_slices == 1 and positions is None:
        return 0
    return None
