"""One DICOM data set through pydicom: header access, frame geometry, rescale/VOI, pixel decoding.

Pixel decoding goes through pydicom's plugins (uncompressed, RLE, deflate natively; JPEG
baseline/extended/lossless, JPEG-LS and JPEG 2000 through pylibjpeg-libjpeg/-openjpeg).
PALETTE COLOR is expanded; header values are read defensively (a bad value is a reject, its
text never echoed).
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut

from medtrinity_assets.ingest.deid import safe_error_text, transfer_syntax_meta
from medtrinity_assets.ingest.modalities import non_image_kind
from medtrinity_assets.records import RejectError

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
GEOMETRY_TOL = 1e-3


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
    if non_image_kind(modality) and not any(k in ds for k in _PIXEL_KEYWORDS):
        raise RejectError("not_an_image", non_image_kind(modality))
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise RejectError("no_pixel_data", "DICOM object without pixel data")
    for keyword in ("Rows", "Columns"):
        if not header_int(ds, keyword):
            raise RejectError("corrupt_file", f"pixel data without {keyword}")


def seq_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def functional(ds: pydicom.Dataset, frame: int, seq_keyword: str) -> Any:
    """Item of a functional group macro for `frame` (per-frame first, then shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        item = seq_item(per_frame[frame], seq_keyword)
        if item is not None:
            return item
    shared = seq_item(ds, "SharedFunctionalGroupsSequence")
    return seq_item(shared, seq_keyword)


def floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (str, bytes, int, float)) else value
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def first_float(value: Any) -> float | None:
    vals = floats(value)
    return vals[0] if vals else None


@dataclass
class FrameGeometry:
    position: np.ndarray | None  # ImagePositionPatient
    orientation: np.ndarray | None  # ImageOrientationPatient (6)
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing)
    thickness: float | None


def frame_geometry(ds: pydicom.Dataset, frame: int) -> FrameGeometry:
    """Geometry of one frame (enhanced functional groups, or the classic top-level attributes)."""
    pos = floats(getattr(functional(ds, frame, "PlanePositionSequence"), "ImagePositionPatient", None))
    ori = floats(getattr(functional(ds, frame, "PlaneOrientationSequence"), "ImageOrientationPatient", None))
    measures = functional(ds, frame, "PixelMeasuresSequence")
    spacing = floats(getattr(measures, "PixelSpacing", None))
    thickness = first_float(getattr(measures, "SliceThickness", None))
    if pos is None:
        pos = floats(ds.get("ImagePositionPatient"))
    if ori is None:
        ori = floats(ds.get("ImageOrientationPatient"))
    if spacing is None:
        spacing = floats(ds.get("PixelSpacing")) or floats(ds.get("ImagerPixelSpacing"))
    if thickness is None:
        thickness = first_float(ds.get("SliceThickness"))
    return FrameGeometry(
        np.asarray(pos, dtype=float) if pos and len(pos) == 3 else None,
        np.asarray(ori, dtype=float) if ori and len(ori) == 6 else None,
        (spacing[0], spacing[1]) if spacing and len(spacing) >= 2 and min(spacing[:2]) > 0 else None,
        thickness,
    )


def rescale_for_frame(ds: pydicom.Dataset, frame: int) -> tuple[float, float, str]:
    """(slope, intercept, rescale type) for a frame."""
    item = functional(ds, frame, "PixelValueTransformationSequence")
    src = item if item is not None and "RescaleSlope" in item else ds
    slope = first_float(src.get("RescaleSlope")) if "RescaleSlope" in src else None
    intercept = first_float(src.get("RescaleIntercept")) if "RescaleIntercept" in src else None
    rtype = str(src.get("RescaleType", "") or "").upper()
    return (slope if slope else 1.0), (intercept or 0.0), rtype


def header_window(ds: pydicom.Dataset, frame: int = 0) -> tuple[float, float, str] | None:
    """(center, width, function) from Frame VOI LUT or the classic window attributes."""
    item = functional(ds, frame, "FrameVOILUTSequence")
    src = item if item is not None and "WindowCenter" in item else ds
    center, width = first_float(src.get("WindowCenter")), first_float(src.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    function = str(src.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    return center, width, ("SIGMOID" if function == "SIGMOID" else "LINEAR")


def header_voi_lut(ds: pydicom.Dataset) -> tuple[np.ndarray, int, int] | None:
    """(table, first mapped value, bits) of the first VOI LUT Sequence item, if any."""
    item = seq_item(ds, "VOILUTSequence")
    if item is None or "LUTDescriptor" not in item or "LUTData" not in item:
        return None
    try:
        n_entries, first, bits = (int(v) for v in item.LUTDescriptor)
        raw = item.LUTData
        if isinstance(raw, (bytes, bytearray)):  # OW: one 16-bit word per entry, whatever `bits`
            little = (getattr(ds, "original_encoding", None) or (None, True))[1] is not False
            table = np.frombuffer(raw[: 2 * (len(raw) // 2)], dtype="<u2" if little else ">u2")
        else:
            table = np.asarray(raw if isinstance(raw, (list, tuple)) or hasattr(raw, "__len__") else [raw])
        table = table.astype(np.int64)
    except (TypeError, ValueError, OverflowError):  # the values are never echoed: they may be free text
        raise RejectError("corrupt_file", "invalid VOI LUT Sequence (descriptor or data not numeric)") from None
    if table.size < 2:
        return None
    return table[: n_entries or 65536], first, bits


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
