"""Draw ROIs onto a copy of an image (contours, boxes, or translucent fill + contour).

The clean image is never modified: overlays are separate artefacts, unlike the MedTrinity-25M
paper which burned a green box into the training image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medtrinity_assets.records import ROI, RejectError

#: RGB colour of ROI i is ROI_COLOURS[i % len(ROI_COLOURS)].
ROI_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 255, 0),
    (255, 64, 64),
    (64, 160, 255),
    (255, 220, 0),
    (255, 0, 255),
    (0, 255, 255),
    (255, 140, 0),
    (160, 100, 255),
)

STYLES = ("contour", "box", "fill")


def roi_colour(index: int) -> tuple[int, int, int]:
    """Colour used for the index-th ROI."""
    return ROI_COLOURS[index % len(ROI_COLOURS)]


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """A new uint8 (H, W, 3) array from uint8 grey (H, W) or RGB (H, W, 3) pixels."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise RejectError("bad_pixels", f"overlay needs uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr.copy()
    raise RejectError("bad_pixels", f"overlay needs (H, W) or (H, W, 3) pixels, got {arr.shape}")


def default_thickness(height: int, width: int) -> int:
    """Line thickness in pixels: 1 up to 383 px, +1 per 256 px of the shorter side."""
    return max(1, round(min(height, width) / 256))


def contour_mask(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Inner boundary band of `mask`, `thickness` pixels wide (pixels at the image edge count)."""
    inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=thickness, border_value=0)
    return mask & ~inner


def box_outline(box: tuple[int, int, int, int], shape: tuple[int, int], thickness: int = 1) -> np.ndarray:
    """Bool mask of a rectangle outline along the inside of an inclusive box."""
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=bool)
    t = max(int(thickness), 1)
    out[y0 : y1 + 1, x0 : min(x0 + t, x1 + 1)] = True
    out[y0 : y1 + 1, max(x1 - t + 1, x0) : x1 + 1] = True
    out[y0 : min(y0 + t, y1 + 1), x0 : x1 + 1] = True
    out[max(y1 - t + 1, y0) : y1 + 1, x0 : x1 + 1] = True
    return out


def render_overlay(
    pixels: np.ndarray,
    rois: list[ROI],
    style: str = "contour",
    thickness: int | None = None,
    fill_alpha: float = 0.35,
) -> np.ndarray:
    """uint8 RGB copy of `pixels` with each ROI drawn in its colour (`roi_colour(i)`).

    style: ``contour`` (mask boundary), ``box`` (bbox outline) or ``fill`` (translucent mask
    blended at `fill_alpha`, plus contour).
    """
    if style not in STYLES:
        raise RejectError("bad_style", f"overlay style {style!r} not in {STYLES}")
    canvas = to_rgb(pixels)
    height, width = canvas.shape[:2]
    t = thickness or default_thickness(height, width)
    for index, roi in enumerate(rois):
        if roi.mask.shape != (height, width):
            raise RejectError("shape_mismatch", f"ROI {roi.label!r} mask {roi.mask.shape} vs {height}x{width}")
        colour = np.array(roi_colour(index), dtype=np.float32)
        if style == "fill":
            blended = canvas[roi.mask].astype(np.float32) * (1 - fill_alpha) + colour * fill_alpha
            canvas[roi.mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        if style == "box":
            lines = box_outline(roi.bbox, (height, width), t)
            canvas[lines] = colour.astype(np.uint8)
            continue
        x0, y0, x1, y1 = roi.bbox  # erode only around the ROI (the mask is empty elsewhere)
        ys, xs = slice(max(y0 - 1, 0), y1 + 2), slice(max(x0 - 1, 0), x1 + 2)
        canvas[ys, xs][contour_mask(roi.mask[ys, xs], t)] = colour.astype(np.uint8)
    return canvas
