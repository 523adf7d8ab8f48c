"""NIfTI / NRRD / MHA / MHD volumes: geometry (and non-NIfTI voxels) through SimpleITK, canonicalised to LPS."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medtrinity_assets.ingest.formats import detect_format
from medtrinity_assets.ingest.guards import check_pixel_budget
from medtrinity_assets.ingest.orientation import canonical_world_grid, reorientation_from_direction
from medtrinity_assets.ingest.readers.nifti import nifti_world_codes, read_nifti_voxels
from medtrinity_assets.ingest.stack import Stack
from medtrinity_assets.records import RejectError


def _reader(path: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise RejectError("corrupt_file", f"cannot read volume header: {_short(exc)}") from None
    return reader


def _short(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _direction_3d(direction: tuple[float, ...], dim: int) -> np.ndarray:
    d = np.asarray(direction, dtype=float).reshape(dim, dim)
    if dim >= 3:
        return d[:3, :3]
    out = np.eye(3)
    out[:2, :2] = d
    return out


def read_volume_array(path: str, max_pixels: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], dict]:
    """(stored array (k, j, i[, c]), direction 3x3, spacing (i, j, k), meta) of a SimpleITK-readable file.

    The header is read first (size checked against `max_pixels` before any voxel is decoded);
    NIfTI voxels come from `read_nifti_voxels`, other formats from SimpleITK.
    """
    reader = _reader(path)
    dim = reader.GetDimension()
    size = tuple(int(s) for s in reader.GetSize())
    n_components = int(reader.GetNumberOfComponents())
    if dim < 2 or dim > 4:
        raise RejectError("unsupported_dimensions", f"{dim}-D image")
    if dim == 4 and size[3] != 1:
        raise RejectError("unsupported_dimensions", f"4-D volume with {size[3]} time points/channels: {size}")
    if n_components != 1 and not (n_components == 3 and reader.GetPixelID() == sitk.sitkVectorUInt8):
        raise RejectError("unsupported_dimensions", f"{n_components} components per voxel (only 8-bit RGB)")
    n_voxels = int(np.prod(size))
    check_pixel_budget(n_voxels, max_pixels, "volume")
    if n_voxels == 0:
        raise RejectError("no_pixel_data", f"volume of size {size}")
    if detect_format(path) == "nifti":
        array = read_nifti_voxels(path)
    else:
        try:
            image = reader.Execute()
        except RuntimeError as exc:
            raise RejectError("corrupt_file", f"cannot read volume data: {_short(exc)}") from None
        array = np.array(sitk.GetArrayViewFromImage(image))  # own the memory (the view dies with `image`)
        if dim == 4:
            array = array[0]
        if dim == 2:
            array = array[None]
    spacing = tuple(float(s) for s in reader.GetSpacing()) + (1.0,) * 3
    direction = _direction_3d(reader.GetDirection(), dim)
    meta = {
        "source_dtype": str(array.dtype),
        "direction": [round(float(v), 6) for v in direction.reshape(-1)],
    }
    origin = tuple(float(v) for v in reader.GetOrigin()) + (0.0,) * 3
    if _has_world_frame(path, dim):
        meta["_world_origin"] = origin[:3]  # popped by read_volume (not persisted as is)
    return array, direction, (spacing[0], spacing[1], spacing[2]), meta


def _has_world_frame(path: str, dim: int) -> bool:
    """Whether the file places its voxels in patient/template space (NIfTI: a q/s-form code)."""
    if dim < 3:
        return False
    if detect_format(path) == "nifti":
        codes = nifti_world_codes(path)
        return bool(codes and (codes[0] > 0 or codes[1] > 0))
    return True  # NRRD "space" / MHA Offset+TransformMatrix are always patient space in ITK


def check_finite(array: np.ndarray) -> None:
    """RejectError('non_finite_values') for NaN/inf voxels."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        n_bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise RejectError("non_finite_values", f"{n_bad} NaN/infinite voxels")


def read_volume(path: str, max_pixels: int, hu: bool, keep_colour: bool) -> Stack:
    """A canonical (LPS) volume Stack; `hu` says the values are Hounsfield units (catalog CT)."""
    array, direction, spacing_ijk, meta = read_volume_array(path, max_pixels)
    check_finite(array)
    rgb = array.ndim == 4
    if rgb and not keep_colour:
        c = array.astype(np.float32)
        array = c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114
        rgb = False
    reo = reorientation_from_direction(direction)
    data = reo.apply(array)
    world_origin = meta.pop("_world_origin", None)
    world = None
    if world_origin is not None:
        world = canonical_world_grid(world_origin, direction, spacing_ijk, tuple(array.shape[:3]), reo)
    meta["reoriented"] = not reo.is_identity
    if reo.obliquity < 0.95:
        meta["oblique"] = round(reo.obliquity, 4)
    return Stack(
        data=data,
        kind="volume",
        spacing=reo.spacing(spacing_ijk),
        rgb=rgb,
        hu=hu and not rgb,
        native_axis=reo.native_axis,
        reorientation=reo,
        to_canonical=reo.apply,
        stored_shape=tuple(array.shape[:3]),
        meta=meta,
        world=world,
    )


def read_volume_labels(path: str, max_pixels: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A label/mask volume in canonical order, with its canonical (z, y, x) spacing."""
    array, direction, spacing_ijk, _ = read_volume_array(path, max_pixels)
    check_finite(array)
    if array.ndim == 4:
        raise RejectError("unsupported_mask", "multi-component mask volume")
    reo = reorientation_from_direction(direction)
    return reo.apply(array), reo.spacing(spacing_ijk)
