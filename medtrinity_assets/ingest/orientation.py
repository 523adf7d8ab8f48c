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


# --------------------------------------------------------------------------- typed display frames

#: display convention of each cut plane (see the module docstring)
PLANE_FRAMES: dict[str, dict[str, str | None]] = {
    "axial": {"plane": "axial", "lateral": "radiological", "up": "anterior", "anterior_side": None},
    "coronal": {"plane": "coronal", "lateral": "radiological", "up": "superior", "anterior_side": None},
    "sagittal": {"plane": "sagittal", "lateral": None, "up": "superior", "anterior_side": "left"},
}
#: a projection radiograph flipped to "patient left on image right, head up"
RADIOGRAPH_FRAME: dict[str, str | None] = {"plane": "projection", "lateral": "radiological", "up": "superior", "anterior_side": None}

# unit vectors (LPS) of displayed rows/columns for each cut plane, and whether rows run against z
@dataclass(frozen=True)
class WorldGrid:
    """Where the canonical voxels V[z, y, x] lie in LPS millimetres: voxel (z, y, x)'s centre is at
    origin + z * sz * z_dir + y * sy * y_dir + x * sx * x_dir (canonical spacing (sz, sy, sx)).

    The directions are the acquisition's own (unit vectors, signed by the canonical flips), so an
    oblique volume keeps its true geometry; for an orthogonal one they are the LPS axes."""

    origin: tuple[float, float, float]
    z_dir: tuple[float, float, float]
    y_dir: tuple[float, float, float]
    x_dir: tuple[float, float, float]


def canonical_world_grid(
    origin: np.ndarray | tuple[float, ...],
    direction: np.ndarray | list[float] | tuple[float, ...],
    spacing_ijk: tuple[float, float, float],
    shape_kji: tuple[int, int, int],
    reo: Reorientation,
) -> WorldGrid:
    """The world grid of `reo.apply`'s canonical array for a stored (k, j, i) volume whose index
    (0, 0, 0) lies at `origin` (LPS mm), ITK `direction` (column c = LPS direction of index axis c)."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    o = np.asarray(origin, dtype=float).reshape(3)
    dirs = []
    for out_axis in range(3):  # canonical z, y, x
        c = 2 - reo.order[out_axis]  # ITK index axis behind this canonical axis
        sign = -1.0 if reo.flips[out_axis] else 1.0
        if reo.flips[out_axis]:  # canonical index 0 is the stored axis's last voxel
            o = o + (int(shape_kji[2 - c]) - 1) * float(spacing_ijk[c]) * d[:, c]
        dirs.append(tuple(round(float(v), 6) for v in sign * d[:, c]))
    return WorldGrid(tuple(float(v) for v in o), *dirs)  # type: ignore[arg-type]


def plane_world_frame(
    axis: str,
    index: int,
    shape_zyx: tuple[int, int, int],
    spacing_zyx: tuple[float, float, float],
    world: WorldGrid,
    out_hw: tuple[int, int],
) -> tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float], tuple[float, float]]:
    """(origin, row_dir, col_dir, spacing_rc) of a displayed plane resized to `out_hw`.

    origin is the LPS position (mm) of displayed pixel (0, 0)'s centre; pixel (r, c) lies at
    origin + r * row_dir * spacing_rc[0] + c * col_dir * spacing_rc[1]. Resizing is pixel-centre
    aligned, as `resize_pixels` / `resize_labels` do. Coronal and sagittal planes are shown
    superior-up, so their rows run along -z.
    """
    z_n, y_n, x_n = shape_zyx
    sz, sy, sx = spacing_zyx
    o, uz, uy, ux = (np.asarray(v, dtype=float) for v in (world.origin, world.z_dir, world.y_dir, world.x_dir))
    in_rows, in_cols, rows_sp, cols_sp = {
        "axial": (y_n, x_n, sy, sx),
        "coronal": (z_n, x_n, sz, sx),
        "sagittal": (z_n, y_n, sz, sy),
    }[axis]
    scale_r, scale_c = in_rows / out_hw[0], in_cols / out_hw[1]
    # input-grid coordinate of displayed pixel 0's centre along rows / columns
    r0, c0 = 0.5 * scale_r - 0.5, 0.5 * scale_c - 0.5
    start, row_dir, col_dir = {
        "axial": (o + index * sz * uz + r0 * sy * uy + c0 * sx * ux, uy, ux),
        "coronal": (o + index * sy * uy + (z_n - 1 - r0) * sz * uz + c0 * sx * ux, -uz, ux),
        "sagittal": (o + index * sx * ux + (z_n - 1 - r0) * sz * uz + c0 * sy * uy, -uz, uy),
    }[axis]
    origin = tuple(round(float(v), 4) for v in start)
    spacing = (round(float(rows_sp * scale_r), 6), round(float(cols_sp * scale_c), 6))
    rows = tuple(round(float(v), 6) + 0.0 for v in row_dir)
    cols = tuple(round(float(v), 6) + 0.0 for v in col_dir)
    return origin, rows, cols, spacing  # type: ignore[return-value]
