"""DICOM through pydicom: single files, series directories, (enhanced) multi-frame -> `Stack`.

Stored values are rescaled (Rescale Slope/Intercept per frame -> HU for CT), PALETTE COLOR is
expanded and YBR converted to RGB; MONOCHROME1 is inverted at display mapping time. Header
access and decoding live in `dicom_dataset`, DICOM-SEG masks in `dicom_seg`. Only whitelisted,
value-checked technical header fields reach `Stack.meta` (see `deid`).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom

from medtrinity_assets.ingest.deid import technical_meta, transfer_syntax_meta
from medtrinity_assets.ingest.formats import detect_format
from medtrinity_assets.ingest.guards import check_pixel_budget, check_within_root
from medtrinity_assets.ingest.modalities import is_projection
from medtrinity_assets.ingest.orientation import (
    canonical_world_grid,
    direction_from_dicom,
    radiograph_flips,
    reorientation_from_direction,
)
from medtrinity_assets.ingest.readers.dicom_dataset import (
    GEOMETRY_TOL,
    FrameGeometry,
    check_is_image,
    decode_pixels,
    frame_geometry,
    header_int,
    header_voi_lut,
    header_window,
    read_header,
    rescale_for_frame,
    rescaled_frames,
)
from medtrinity_assets.ingest.stack import Stack
from medtrinity_assets.records import RejectError


def _geometry_volume(
    frames: np.ndarray, geoms: list[FrameGeometry]
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], list[float], np.ndarray, list[int]] | None:
    """Sort frames along their common slice normal; None when they do not form one volume."""
    if not geoms or any(g.orientation is None or g.position is None for g in geoms):
        return None
    ori = geoms[0].orientation
    if any(np.abs(g.orientation - ori).max() > GEOMETRY_TOL * 10 for g in geoms):
        return None
    direction = direction_from_dicom(ori)
    normal = direction[:, 2]
    proj = np.array([float(np.dot(g.position, normal)) for g in geoms])
    order = list(np.argsort(proj, kind="stable"))
    sorted_proj = proj[order]
    if len(order) > 1 and np.min(np.diff(sorted_proj)) < GEOMETRY_TOL:
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
            world=canonical_world_grid(geoms[order[0]].position, direction, spacing_ijk, tuple(stored.shape[:3]), reo),
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
    flips = radiograph_flips(ds.get("PatientOrientation")) if is_projection(modality) else None
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
