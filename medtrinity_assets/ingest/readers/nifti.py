"""NIfTI-1/-2 voxel data read directly (geometry still comes from SimpleITK).

ITK's NIfTI reader silently zero-fills truncated data and replaces NaN/inf voxels with 0, so
NIfTI voxels are read here: one decompression, exact length and finiteness checks, and the
header's scl_slope/scl_inter applied as ITK does.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from medtrinity_assets.ingest.deid import safe_error_text
from medtrinity_assets.records import RejectError

# NIfTI datatype code -> numpy type (without byte order); 128 RGB24 handled as 3 x uint8
_DTYPES = {
    2: "u1",
    4: "i2",
    8: "i4",
    16: "f4",
    64: "f8",
    256: "i1",
    512: "u2",
    768: "u4",
    1024: "i8",
    1280: "u8",
    128: "u1",
}
_COMPLEX = {32, 1792, 2048}


@dataclass(frozen=True)
class NiftiHeader:
    endian: str  # '<' or '>'
    dims: tuple[int, ...]  # (nx, ny, nz, nt, ...) as stored, length dim[0]
    datatype: int
    vox_offset: int
    slope: float
    intercept: float
    separate_data: bool  # 'ni1'/'ni2': voxels in a separate .img file

    @property
    def n_voxels(self) -> int:
        return int(np.prod([max(d, 1) for d in self.dims], dtype=np.int64)) if self.dims else 0

    @property
    def rgb(self) -> bool:
        return self.datatype == 128


def parse_nifti_header(header: bytes) -> NiftiHeader | None:
    """The fields needed to read voxels, from the first 540 bytes of a NIfTI-1/-2 file."""
    for endian in ("<", ">"):
        if len(header) < 4:
            return None
        (size,) = struct.unpack(endian + "i", header[:4])
        if size == 348 and len(header) >= 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            (datatype,) = struct.unpack(endian + "h", header[70:72])
            (offset,) = struct.unpack(endian + "f", header[108:112])
            slope, intercept = struct.unpack(endian + "ff", header[112:120])
            magic = header[344:348]
        elif size == 540 and len(header) >= 540:
            (datatype,) = struct.unpack(endian + "h", header[12:14])
            dims = struct.unpack(endian + "8q", header[16:80])
            (offset,) = struct.unpack(endian + "q", header[168:176])
            slope, intercept = struct.unpack(endian + "dd", header[176:192])
            magic = header[4:8]
        else:
            continue
        n_dims = max(0, min(int(dims[0]), 7))
        return NiftiHeader(
            endian,
            tuple(int(d) for d in dims[1 : n_dims + 1]),
            int(datatype),
            int(max(offset, size + 4)),
            float(slope),
            float(intercept),
            magic[:3] in (b"ni1", b"ni2"),
        )
    return None


def nifti_world_codes(path: str) -> tuple[int, int] | None:
    """(qform_code, sform_code) of a NIfTI-1/-2 header; None when the header cannot be read.

    Both 0 means the file states no scanner or template space: its affine is only voxel sizes.
    """
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            header = fh.read(540)
    except (EOFError, OSError, zlib.error):
        return None
    for endian in ("<", ">"):
        if len(header) < 4:
            return None
        (size,) = struct.unpack(endian + "i", header[:4])
        if size == 348 and len(header) >= 256:
            return struct.unpack(endian + "hh", header[252:256])  # type: ignore[return-value]
        if size == 540 and len(header) >= 352:
            return struct.unpack(endian + "ii", header[344:352])  # type: ignore[return-value]
    return None


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            return fh.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise RejectError("corrupt_file", f"gzip stream damaged or truncated: {safe_error_text(exc)}") from None


def read_nifti_voxels(path: str) -> np.ndarray:
    """Voxels as a numpy array (k, j, i) or (k, j, i, 3) for RGB24, scaled by scl_slope/scl_inter.

    RejectError: ``corrupt_file`` (bad header, truncated data), ``non_finite_values``,
    ``unsupported_dimensions`` (time series / vector data), ``unsupported_pixel_type``.
    """
    raw = _read_bytes(path)
    hdr = parse_nifti_header(raw[:540])
    if hdr is None:
        raise RejectError("corrupt_file", "not a NIfTI-1/2 header")
    if hdr.separate_data:
        raise RejectError("unsupported_format", "NIfTI header with a separate .img data file")
    if hdr.datatype in _COMPLEX or hdr.datatype not in _DTYPES:
        raise RejectError("unsupported_pixel_type", f"NIfTI datatype {hdr.datatype}")
    dims = list(hdr.dims) + [1] * (5 - min(len(hdr.dims), 5))
    nx, ny, nz, nt, nu = dims[:5]
    if nt > 1 or int(np.prod(dims[5:], dtype=np.int64)) > 1:
        raise RejectError("unsupported_dimensions", f"NIfTI with dims {hdr.dims}: time series or higher dimensions")
    vector_rgb = nu == 3 and hdr.datatype == 2  # ITK-style RGB: 5th dimension of 3 uint8 components
    if nu > 1 and not vector_rgb:
        raise RejectError("unsupported_dimensions", f"NIfTI with {nu} components per voxel")
    dtype = np.dtype(hdr.endian + _DTYPES[hdr.datatype])
    count = hdr.n_voxels * (3 if hdr.rgb else 1)
    needed = hdr.vox_offset + count * dtype.itemsize
    if len(raw) < needed:
        raise RejectError("corrupt_file", f"NIfTI data truncated: {len(raw):,} of {needed:,} bytes")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=hdr.vox_offset)
    if vector_rgb:  # components are the slowest axis: (3, z, y, x) -> (z, y, x, 3)
        data = np.moveaxis(data.reshape(3, nz, ny, nx), 0, -1)
    else:
        data = data.reshape((nz, ny, nx) + ((3,) if hdr.rgb else ()))
    if dtype.byteorder == ">" or (dtype.byteorder == "<" and not np.little_endian):
        data = data.astype(dtype.newbyteorder("="))
    if data.dtype.kind == "f":
        n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if n_bad:
            raise RejectError("non_finite_values", f"{n_bad} NaN/infinite voxels")
    if data.ndim == 3 and hdr.slope != 0.0 and (hdr.slope != 1.0 or hdr.intercept != 0.0):  # as ITK: slope 0 = none
        if not np.isfinite(hdr.slope) or not np.isfinite(hdr.intercept):
            raise RejectError("non_finite_values", "non-finite scl_slope/scl_inter")
        data = data.astype(np.float32) * np.float32(hdr.slope) + np.float32(hdr.intercept)
    return data
