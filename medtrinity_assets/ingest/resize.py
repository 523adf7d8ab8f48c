"""Output geometry: square pixels (isotropic in-plane resampling) and a bounded longest side."""

from __future__ import annotations

import numpy as np
from PIL import Image

from medtrinity_assets.records import RejectError

ANISOTROPY_TOL = 0.01  # relative difference of row/column spacing treated as square


def target_size(
    height: int,
    width: int,
    spacing_rc: tuple[float | None, float | None] | None,
    max_side: int,
    isotropic: bool,
) -> tuple[int, int]:
    """Output (height, width): square pixels (finest spacing kept) when `isotropic`, then the
    longest side reduced to `max_side` keeping the aspect; never enlarged beyond the square-pixel size."""
    h, w = float(height), float(width)
    if isotropic and spacing_rc and spacing_rc[0] and spacing_rc[1]:
        row, col = float(spacing_rc[0]), float(spacing_rc[1])
        if abs(row - col) > ANISOTROPY_TOL * min(row, col):
            finest = min(row, col)
            h, w = h * row / finest, w * col / finest
    scale = min(1.0, max_side / max(h, w))
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def check_min_side(height: int, width: int, min_side: int) -> None:
    """RejectError('image_too_small') when a side is below `min_side`."""
    if min(height, width) < min_side:
        raise RejectError("image_too_small", f"{height}x{width} is below the minimum side of {min_side}")


def resize_pixels(pixels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a uint8 grey/RGB image (returns the input when the size matches)."""
    if pixels.shape[:2] == size_hw:
        return pixels
    img = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(img.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR))


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel centre (pixel-centre aligned, like PIL's resampling)."""
    return np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)


def resize_labels(labels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer/boolean map (labels are never blended)."""
    if labels.shape[:2] == size_hw:
        return labels
    rows = nearest_indices(labels.shape[0], size_hw[0])
    cols = nearest_indices(labels.shape[1], size_hw[1])
    return labels[rows[:, None], cols[None, :]]
