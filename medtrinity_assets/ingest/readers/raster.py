"""PNG / JPEG (Pillow) and TIFF (tifffile) readers: 8/16-bit grey, RGB(A), palette, multi-page."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import tifffile
from PIL import Image, ImageSequence, UnidentifiedImageError

from medtrinity_assets.ingest.deid import safe_error_text
from medtrinity_assets.ingest.guards import check_pixel_budget
from medtrinity_assets.ingest.stack import Stack
from medtrinity_assets.records import RejectError

GREY_RGB_TOLERANCE = 4  # max channel spread for an RGB file to count as grey (JPEG chroma noise)

_PIL_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, zlib.error, EOFError, struct.error)


def rgb_is_grey(rgb: np.ndarray, tolerance: int = GREY_RGB_TOLERANCE) -> bool:
    """True when every pixel's channels differ by at most `tolerance` (grey stored as RGB)."""
    if rgb.ndim < 3 or rgb.shape[-1] < 3:
        return False
    c = rgb[..., :3].astype(np.int16)
    return bool(np.abs(c[..., 0] - c[..., 1]).max() <= tolerance and np.abs(c[..., 1] - c[..., 2]).max() <= tolerance)


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (same weights as Pillow's 'L'), keeping the dtype class."""
    c = rgb[..., :3].astype(np.float32)
    grey = c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114
    if rgb.dtype == np.uint8:
        return (grey + 0.5).astype(np.uint8)
    return grey


def composite_on_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Drop an alpha channel by compositing onto black."""
    a = alpha.astype(np.float32) / float(np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0)
    if colour.ndim == 3:
        a = a[..., None]
    out = colour.astype(np.float32) * a
    return (out + 0.5).astype(colour.dtype) if colour.dtype.kind in "ui" else out.astype(colour.dtype)


def pil_frame_to_array(img: Image.Image) -> tuple[np.ndarray, str]:
    """One Pillow frame -> (array (H, W) or (H, W, 3), note). Alpha dropped onto black, palette expanded."""
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L")), "bilevel"
    if mode == "P" or mode == "PA":
        rgba = np.asarray(img.convert("RGBA"))
        return composite_on_black(rgba[..., :3], rgba[..., 3]), "palette expanded to RGB"
    if mode == "LA" or mode == "La":
        la = np.asarray(img.convert("LA"))
        return composite_on_black(la[..., 0], la[..., 1]), "alpha composited onto black"
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        return composite_on_black(rgba[..., :3], rgba[..., 3]), "alpha composited onto black"
    if mode in ("L", "RGB", "F") or mode.startswith("I"):
        arr = np.asarray(img)
        if arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr, ""
    return np.asarray(img.convert("RGB")), f"{mode} converted to RGB"


def read_pil(path: str, max_pixels: int) -> tuple[np.ndarray, dict]:
    """All frames of a PNG/JPEG as (frames, H, W[, 3]); header size checked before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise RejectError("decompression_bomb", str(exc)) from None
    except _PIL_ERRORS as exc:
        raise RejectError("corrupt_file", f"cannot open image: {safe_error_text(exc)}") from None
    with img:
        width, height = img.size
        n_frames = int(getattr(img, "n_frames", 1) or 1)
        check_pixel_budget(width * height * n_frames, max_pixels)
        if width == 0 or height == 0:
            raise RejectError("no_pixel_data", "image has a zero dimension")
        meta = {"source_mode": img.mode, "source_format": (img.format or "").lower()}
        frames, notes = [], set()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                for frame in ImageSequence.Iterator(img):
                    frame.load()
                    arr, note = pil_frame_to_array(frame)
                    frames.append(np.array(arr))
                    if note:
                        notes.add(note)
        except Image.DecompressionBombError as exc:
            raise RejectError("decompression_bomb", str(exc)) from None
        except _PIL_ERRORS as exc:
            raise RejectError("corrupt_file", f"cannot decode image: {safe_error_text(exc)}") from None
    if notes:
        meta["colour_notes"] = sorted(notes)
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise RejectError("unsupported_dimensions", f"frames of different shapes: {sorted(shapes)}")
    return np.stack(frames), meta


def read_tiff(path: str, max_pixels: int) -> tuple[np.ndarray, dict]:
    """First series of a TIFF as (frames, H, W[, 3]); page sizes checked before decoding."""
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages or not tif.series:
                raise RejectError("no_pixel_data", "TIFF has no image pages")
            series = tif.series[0]
            shape, axes = tuple(series.shape), series.axes
            if len(shape) < 2:
                raise RejectError("no_pixel_data", f"TIFF without a 2D image (shape {shape})")
            n_pixels = int(np.prod(shape)) // (shape[-1] if axes.endswith("S") else 1)
            check_pixel_budget(n_pixels, max_pixels)
            if n_pixels == 0:
                raise RejectError("no_pixel_data", "TIFF image is empty")
            data = series.asarray()
    except RejectError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError, zlib.error, RuntimeError) as exc:
        raise RejectError("corrupt_file", f"cannot read TIFF: {safe_error_text(exc)}") from None
    meta = {"source_format": "tiff", "tiff_axes": axes}
    if axes.endswith("S") and data.shape[-1] in (3, 4):
        if data.shape[-1] == 4:
            data = composite_on_black(data[..., :3], data[..., 3])
            meta["colour_notes"] = ["alpha composited onto black"]
        data = data.reshape((-1,) + data.shape[-3:])
    elif axes.endswith("S"):
        raise RejectError("unsupported_dimensions", f"TIFF with {data.shape[-1]} samples per pixel")
    else:
        if data.ndim < 2:
            raise RejectError("unsupported_dimensions", f"TIFF axes {axes}")
        data = data.reshape((-1,) + data.shape[-2:])
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    return data, meta


def read_raster_array(path: str, fmt: str, max_pixels: int) -> tuple[np.ndarray, dict]:
    """(frames, H, W[, 3]) array + technical meta for png | jpeg | tiff."""
    if fmt == "tiff":
        return read_tiff(path, max_pixels)
    return read_pil(path, max_pixels)


def read_raster(path: str, fmt: str, max_pixels: int, keep_colour: bool) -> Stack:
    """A raster image as a frame Stack (colour kept unless `keep_colour` is False or it is grey)."""
    data, meta = read_raster_array(path, fmt, max_pixels)
    meta["source_dtype"] = str(data.dtype)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise RejectError("non_finite_values", "image contains NaN or infinite values")
    if data.dtype.kind == "c":
        raise RejectError("unsupported_dimensions", "complex-valued image")
    rgb = data.ndim == 4
    if rgb and rgb_is_grey(data):
        data = np.ascontiguousarray(data[..., 0])
        rgb = False
        meta["colour"] = "grey stored as RGB"
    elif rgb and not keep_colour:
        data = rgb_to_grey(data)
        rgb = False
        meta["colour"] = "converted to grey (keep_colour=False)"
    else:
        meta["colour"] = "rgb" if rgb else "grey"
    return Stack(data=data, kind="frames", rgb=rgb, stored_shape=tuple(data.shape[:3]), meta=meta)


def read_raster_labels(path: str, fmt: str, max_pixels: int, colour: str, convention: str) -> np.ndarray:
    """A raster mask as (frames, H, W) values. A colour mask is read per its convention's `colour`:
    ``grey`` (converted), ``max`` (the largest channel), ``exact`` (must be grey: ids are not colours)."""
    data, _ = read_raster_array(path, fmt, max_pixels)
    if data.ndim == 4:
        if rgb_is_grey(data, tolerance=0 if colour == "exact" else GREY_RGB_TOLERANCE):
            data = data[..., 0]
        elif colour == "grey":
            data = rgb_to_grey(data)
        elif colour == "max":
            data = data.max(axis=-1)
        else:
            raise RejectError("unsupported_mask", f"colour {convention} mask {path.rsplit('/', 1)[-1]}")
    return data
