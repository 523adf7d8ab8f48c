"""Orientation: bring volumes to one canonical voxel order and cut display-convention planes.

Canonical order is the DICOM/ITK patient system LPS as a numpy array ``V[z, y, x]``: x grows
toward patient Left, y toward Posterior, z toward Superior. Planes are then cut so that

- axial:    patient left on image right, anterior up (radiological convention)
- coronal:  patient left on image right, superior up
- sagittal: anterior on image left, superior up

Only axis permutations and flips are used (no interpolation), choosing the orthogonal axes
closest to the acquisition; an oblique acquisition is flagged in meta, not resampled.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

AXES = ("axial", "coronal", "sagittal")

ORIENTATION_TEXT = {
    "axial": "radiological axial: patient left on image right, anterior up",
    "coronal": "radiological coronal: patient left on image right, superior up",
    "sagittal": "sagittal: anterior on image left, superior up",
}
AS_ACQUIRED = "as acquired (2D source)"

# canonical numpy axis cut by each plane (V[z, y, x])
_CUT_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}
# physical axis (0=x L, 1=y P, 2=z S) normal to each plane
_NORMAL_AXIS = {0: "sagittal", 1: "coronal", 2: "axial"}


@dataclass(frozen=True)
class Reorientation:
    """Transpose + flips taking a stored (k, j, i) array to canonical (z, y, x)."""

    order: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    native_axis: str  # plane of the stored slices (normal of the k axis)
    obliquity: float  # smallest |cosine| between an index axis and its physical axis (1.0 = orthogonal)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Canonical view of a stored (k, j, i[, c]) array (no copy)."""
        extra = tuple(range(3, array.ndim))
        out = array.transpose(self.order + extra)
        index = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return out[index]

    def spacing(self, spacing_ijk: tuple[float, float, float]) -> tuple[float, float, float]:
        """Canonical (z, y, x) spacing from ITK-order (i, j, k) spacing."""
        kji = (spacing_ijk[2], spacing_ijk[1], spacing_ijk[0])
        return tuple(float(kji[a]) for a in self.order)  # type: ignore[return-value]

    @property
    def is_identity(self) -> bool:
        return self.order == (0, 1, 2) and not any(self.flips)


def reorientation_from_direction(direction: np.ndarray | list[float] | tuple[float, ...]) -> Reorientation:
    """Reorientation for an ITK-style direction matrix (column c = physical direction of index axis c, LPS)."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    best, best_score = (0, 1, 2), -1.0
    for perm in itertools.permutations(range(3)):  # perm[c] = physical axis of index axis c
        score = sum(abs(d[perm[c], c]) for c in range(3))
        if score > best_score + 1e-9:
            best, best_score = perm, score
    index_of_phys = {p: c for c, p in enumerate(best)}
    order, flips = [], []
    for out_axis in range(3):  # canonical out axis 0=z(2), 1=y(1), 2=x(0)
        phys = 2 - out_axis
        c = index_of_phys[phys]
        order.append(2 - c)  # numpy axis of index axis c in a (k, j, i) array
        flips.append(bool(d[phys, c] < 0))
    obliquity = float(min(abs(d[best[c], c]) for c in range(3)))
    return Reorientation(tuple(order), tuple(flips), _NORMAL_AXIS[best[2]], obliquity)  # type: ignore[arg-type]


def direction_from_dicom(orientation: list[float] | tuple[float, ...], reverse_normal: bool = False) -> np.ndarray:
    """ITK direction from DICOM ImageOrientationPatient (row cosine, column cosine) + slice normal."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:6], dtype=float)
    normal = np.cross(row, col)
    if reverse_normal:
        normal = -normal
    return np.stack([row, col, normal], axis=1)


def n_planes(shape_zyx: tuple[int, ...], axis: str) -> int:
    """Number of planes a canonical volume has along `axis`."""
    return int(shape_zyx[_CUT_AXIS[axis]])


def cut_plane(volume: np.ndarray, axis: str, index: int) -> np.ndarray:
    """Plane `index` of a canonical V[z, y, x(, c)] volume, in display orientation (a view)."""
    if axis == "axial":
        return volume[index]
    if axis == "coronal":
        return volume[::-1, index]
    if axis == "sagittal":
        return volume[::-1, :, index]
    raise ValueError(f"unknown axis {axis!r}")


def plane_profile(volume: np.ndarray, axis: str, reduce) -> np.ndarray:
    """`reduce(volume, axes)` over the in-plane axes: one value per plane along `axis`."""
    cut = _CUT_AXIS[axis]
    in_plane = tuple(a for a in range(volume.ndim) if a != cut)
    return np.asarray(reduce(volume, in_plane))


def plane_spacing(spacing_zyx: tuple[float, float, float] | None, axis: str) -> tuple[float, float] | None:
    """(row, column) spacing of a displayed plane."""
    if spacing_zyx is None:
        return None
    z, y, x = spacing_zyx
    return {"axial": (y, x), "coronal": (z, x), "sagittal": (z, y)}[axis]


def radiograph_flips(patient_orientation: list[str] | tuple[str, ...] | None) -> tuple[bool, bool] | None:
    """(flip_rows, flip_cols) bringing a projection radiograph to 'patient left on image right, feet down'.

    Uses DICOM PatientOrientation (direction of rows, direction of columns); None when it is not
    a frontal L/R + H/F pair.
    """
    if not patient_orientation or len(patient_orientation) != 2:
        return None
    row_dir, col_dir = (str(v).upper()[:1] for v in patient_orientation)
    if row_dir not in ("L", "R") or col_dir not in ("H", "F"):
        return None
    return col_dir == "H", row_dir == "R"
