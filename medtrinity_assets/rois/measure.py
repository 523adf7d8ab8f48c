"""Pixel measurements of one ROI (`records.Measurements`), named after IBSI / pyradiomics features.

Values are measured on the slice as the scanner or camera recorded it, not on the windowed
display: Hounsfield units for CT (the rescaled values kept by ingestion), the stored values
scaled to 0..1 of the slice's 0.5-99.5 percentile range for other grey modalities ("relative"),
and luminance 0..1 plus HSV hue/saturation and the mean R, G, B colour of the ROI and of its ring
for colour photographs and stained slides ("rgb").

- ring: the surrounding tissue is the band of pixels within ``ring_width`` of the ROI
  (``clip(0.5 x equivalent radius, 3, 15)`` px), leaving out the image's background (dark
  padding or air connected to the image border) and other ROIs with the same label (a nucleus'
  ring is not its neighbours).
- first order (IBSI 3.4): mean, standard deviation; entropy (bits) of the ROI's displayed grey
  levels in 32 bins of width 8.
- GLCM (IBSI 3.6; skimage.feature.graycomatrix): displayed grey levels quantised to 32 levels,
  distance 1, four directions, symmetric, averaged: contrast and homogeneity (inverse difference
  moment, skimage's "homogeneity").
- contrast to the ring: (mean - ring mean) / pooled standard deviation (floored at one display
  grey level or 1 HU, capped at +-50).
- shape (skimage.measure.regionprops): area, perimeter, equivalent diameter, solidity, major and
  minor axis lengths; circularity = 4 pi area / perimeter^2 (capped at 1), elongation = minor /
  major axis (pyradiomics' Elongation).
- margin sharpness: mean gradient magnitude on the 2-px border band divided by the mean gradient
  magnitude inside the ROI and in the ring (> 1: the border is sharper than the texture around it).

A value that cannot be measured is None and `Measurements.unmeasured` says why; nothing here
raises for odd input (a 1-px ROI, an ROI covering the image, a constant image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.color import rgb2hsv
from skimage.feature import graycomatrix, graycoprops
from skimage.measure import regionprops

from medtrinity_assets.records import Measurements

from .geometry import EIGHT_CONNECTED, count_components

RING_MIN_PX, RING_MAX_PX = 3, 15
MIN_SHAPE_PX = 9  # shape features of fewer pixels are meaningless
MIN_TEXTURE_PX = 16  # texture / intensity statistics need a few pixels
MIN_RING_PX = 8
BACKGROUND_LEVEL = 4  # displayed grey <= this and connected to the border = padding / air
GLCM_LEVELS = 32
#: mean chroma (max - min of R, G, B on 0..1) below which a region has no colour to speak of: HSV
#: saturation alone is chroma / value, so the dark pixels of a grey image stored as RGB with a
#: faint tint (an ultrasound screen capture) give it large, meaningless saturations and hues
ACHROMATIC_CHROMA = 0.05
MAX_SHARPNESS = 20.0
MAX_CONTRAST = 50.0
#: smallest pooled standard deviation: one display grey level, or 1 HU
_STD_FLOOR = {"HU": 1.0, "relative": 1.0 / 255, "rgb": 1.0 / 255}
_ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)


@dataclass
class SliceValues:
    """One slice prepared for measuring: values in `unit`, displayed grey, background, colour."""

    values: np.ndarray  # float32 (H, W): HU, relative 0..1, or luminance 0..1
    unit: str  # HU | relative | rgb
    grey: np.ndarray  # uint8 (H, W) displayed grey (texture features)
    background: np.ndarray  # bool (H, W)
    rgb: np.ndarray | None = None  # uint8 (H, W, 3) for colour sources


def slice_values(pixels: np.ndarray, native: np.ndarray | None = None, native_unit: str | None = None) -> SliceValues:
    """Values to measure for a displayed slice (uint8 grey/RGB) and its native values, if kept."""
    if pixels.ndim == 3:
        rgb = np.ascontiguousarray(pixels[..., :3])
        lum = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)
        grey = np.clip(np.rint(lum), 0, 255).astype(np.uint8)
        return SliceValues(lum / 255.0, "rgb", grey, background_mask(grey), rgb)
    grey = np.asarray(pixels, dtype=np.uint8)
    if native is not None and native.shape == grey.shape and native_unit == "HU":
        return SliceValues(native.astype(np.float32), "HU", grey, background_mask(grey))
    if native is not None and native.shape == grey.shape:
        low, high = np.percentile(native, (0.5, 99.5))
        scale = float(high - low) if high > low else 1.0
        return SliceValues(((native - low) / scale).astype(np.float32), "relative", grey, background_mask(grey))
    return SliceValues(grey.astype(np.float32) / 255.0, "relative", grey, background_mask(grey))


def background_mask(grey: np.ndarray) -> np.ndarray:
    """Dark pixels (<= BACKGROUND_LEVEL) connected to the image border: padding, air outside the body."""
    dark = grey <= BACKGROUND_LEVEL
    if not dark.any():
        return dark
    labels, n = ndimage.label(dark, structure=EIGHT_CONNECTED)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(labels, edge) if edge.size else np.zeros_like(dark)


def _window(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, h)),
        slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, w)),
    )


def _r(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _entropy(grey: np.ndarray) -> float:
    counts = np.bincount((grey // 8).astype(np.int64), minlength=GLCM_LEVELS)
    p = counts[counts > 0] / counts.sum()
    return max(0.0, float(-(p * np.log2(p)).sum()))


def _glcm(grey: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    levels = (grey.astype(np.int64) * GLCM_LEVELS // 256 + 1) * inside  # 0 = outside the ROI
    m = graycomatrix(levels.astype(np.uint8), [1], list(_ANGLES), levels=GLCM_LEVELS + 1, symmetric=True)
    m = m[1:, 1:]  # pairs with an outside pixel do not count
    if m.sum() == 0:
        return math.nan, math.nan
    return float(graycoprops(m, "contrast").mean()), float(graycoprops(m, "homogeneity").mean())


def _circular_mean_deg(hue: np.ndarray) -> float:
    angles = hue * 2 * math.pi
    return math.degrees(math.atan2(float(np.sin(angles).mean()), float(np.cos(angles).mean())))


def _colour(rgb: np.ndarray, inside: np.ndarray, ring: np.ndarray, why: dict[str, str]) -> tuple[float | None, float | None]:
    """Hue (degrees) and saturation differences, ROI minus ring. Saturation needs colour on at least
    one side, hue on both: the hue of a grey region is undefined."""
    chroma = np.ptp(rgb[..., :3].astype(np.float64), axis=-1) / 255.0
    chroma_in, chroma_ring = float(chroma[inside].mean()), float(chroma[ring].mean())
    if max(chroma_in, chroma_ring) < ACHROMATIC_CHROMA:
        why["hue_delta"] = why["saturation_delta"] = "achromatic"
        return None, None
    hsv = rgb2hsv(rgb)
    saturation_delta = float(hsv[..., 1][inside].mean()) - float(hsv[..., 1][ring].mean())
    if min(chroma_in, chroma_ring) < ACHROMATIC_CHROMA:
        why["hue_delta"] = "achromatic"
        return None, saturation_delta
    d = _circular_mean_deg(hsv[..., 0][inside]) - _circular_mean_deg(hsv[..., 0][ring])
    return (d + 180.0) % 360.0 - 180.0, saturation_delta


def _mean_rgb(rgb: np.ndarray, where: np.ndarray) -> tuple[float, float, float]:
    """Mean R, G, B on 0..1 over `where` (3 decimals): the region's average colour."""
    mean = rgb[..., :3][where].astype(np.float64).mean(axis=0) / 255.0
    return tuple(round(float(v), 3) for v in mean)  # type: ignore[return-value]


def _shape(inside: np.ndarray, spacing_rc: tuple[float, float] | None, why: dict[str, str]) -> dict:
    area = int(inside.sum())
    out: dict = {"area_px": area}
    if spacing_rc:
        out["area_mm2"] = area * spacing_rc[0] * spacing_rc[1]
    if area < MIN_SHAPE_PX:
        for k in ("equivalent_diameter_px", "circularity", "elongation", "solidity"):
            why[k] = "roi_too_small"
        return out
    props = regionprops(inside.astype(np.uint8))[0]
    out["equivalent_diameter_px"] = float(props.equivalent_diameter_area)
    if spacing_rc:
        out["equivalent_diameter_mm"] = out["equivalent_diameter_px"] * math.sqrt(spacing_rc[0] * spacing_rc[1])
    perimeter = float(props.perimeter)
    out["circularity"] = min(1.0, 4 * math.pi * area / perimeter**2) if perimeter > 0 else None
    major, minor = float(props.axis_major_length), float(props.axis_minor_length)
    out["elongation"] = minor / major if major > 0 else None
    out["solidity"] = float(props.solidity)
    return out


def _sharpness(values: np.ndarray, inside: np.ndarray, ring: np.ndarray, usable: np.ndarray) -> float | None:
    grad = np.hypot(ndimage.sobel(values, axis=0), ndimage.sobel(values, axis=1))
    band = ndimage.binary_dilation(inside, EIGHT_CONNECTED) & ~ndimage.binary_erosion(inside, EIGHT_CONNECTED) & usable
    core = ndimage.binary_erosion(inside, EIGHT_CONNECTED, iterations=2)
    texture = (core | ring) & ~band
    if band.sum() < MIN_RING_PX or texture.sum() < MIN_RING_PX:
        return None
    border, inner = float(grad[band].mean()), float(grad[texture].mean())
    if border <= 1e-9 and inner <= 1e-9:
        return None
    return min(border / max(inner, 1e-9), MAX_SHARPNESS)


def measure_roi(
    mask: np.ndarray,
    sv: SliceValues,
    spacing_rc: tuple[float, float] | None = None,
    same_label: np.ndarray | None = None,
    label_count: int | None = None,
) -> Measurements:
    """Measurements of one ROI mask (bool, (H, W)) on a prepared slice; never raises for odd input.

    `same_label`: union of the masks of other ROIs with the same label (left out of the ring).
    """
    why: dict[str, str] = {}
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return Measurements(unmeasured={"all": "empty_mask"}, label_count=label_count)
    area = int(mask.sum())
    ring_px = int(np.clip(round(0.5 * math.sqrt(area / math.pi)), RING_MIN_PX, RING_MAX_PX))
    rows, cols = _window(mask, ring_px + 2)
    inside = mask[rows, cols]
    values, grey = sv.values[rows, cols], sv.grey[rows, cols]
    usable = ~sv.background[rows, cols]
    if same_label is not None:
        usable &= ~same_label[rows, cols]
    near = ndimage.distance_transform_edt(~inside) <= ring_px
    ring_all = near & ~inside
    ring = ring_all & usable
    shape = _shape(inside, spacing_rc, why)
    stats: dict = {"n_components": count_components(mask), "label_count": label_count}
    if area >= MIN_TEXTURE_PX:
        roi_vals = values[inside]
        stats["mean"], stats["std"] = float(roi_vals.mean()), float(roi_vals.std())
        stats["entropy"] = _entropy(grey[inside])
        stats["glcm_contrast"], stats["glcm_homogeneity"] = _glcm(grey, inside)
        if sv.rgb is not None:
            stats["rgb_mean"] = _mean_rgb(sv.rgb[rows, cols], inside)
    else:
        for k in ("mean", "std", "entropy", "glcm_contrast", "glcm_homogeneity") + (("rgb_mean",) if sv.rgb is not None else ()):
            why[k] = "roi_too_small"
    ring_reason = _ring_problem(sv, ring, ring_all, area)
    if ring_reason is None and "mean" in stats:
        ring_vals = values[ring]
        stats["ring_mean"], stats["ring_std"] = float(ring_vals.mean()), float(ring_vals.std())
        pooled = max(math.sqrt((stats["std"] ** 2 + stats["ring_std"] ** 2) / 2), _STD_FLOOR[sv.unit])
        stats["contrast"] = float(np.clip((stats["mean"] - stats["ring_mean"]) / pooled, -MAX_CONTRAST, MAX_CONTRAST))
        if sv.rgb is not None:
            crop = sv.rgb[rows, cols]
            stats["hue_delta"], stats["saturation_delta"] = _colour(crop, inside, ring, why)
            stats["ring_rgb_mean"] = _mean_rgb(crop, ring)
        stats["margin_sharpness"] = _sharpness(values, inside, ring, usable)
        if stats["margin_sharpness"] is None:
            why["margin_sharpness"] = "border_too_short"
    elif ring_reason is not None:
        for k in ("ring_mean", "ring_std", "contrast", "margin_sharpness") + (("hue_delta", "saturation_delta", "ring_rgb_mean") if sv.rgb is not None else ()):
            why[k] = ring_reason
    if sv.rgb is None:
        why.pop("hue_delta", None)
    if not spacing_rc:
        why["area_mm2"] = why["equivalent_diameter_mm"] = "no_pixel_spacing"
    return _rounded({**shape, **stats}, sv.unit, label_count, why)


def _ring_problem(sv: SliceValues, ring: np.ndarray, ring_all: np.ndarray, area: int) -> str | None:
    """Why the ROI has no usable ring of surroundings to compare with (None: it has one)."""
    if float(sv.values.max()) == float(sv.values.min()):
        return "constant_intensity"
    if not ring_all.any() or area >= 0.9 * max(int((~sv.background).sum()), 1):
        return "roi_covers_image"
    if int(ring.sum()) < max(MIN_RING_PX, 0.25 * int(ring_all.sum())):
        return "ring_mostly_background"
    return None


INTENSITY_FIELDS = ("mean", "ring_mean", "std", "ring_std")  # stored to 1 decimal in HU, 4 on relative scales
DECIMALS = {
    "contrast": 3, "hue_delta": 1, "saturation_delta": 3, "entropy": 3, "glcm_contrast": 3, "glcm_homogeneity": 3,
    "area_mm2": 2, "equivalent_diameter_px": 2, "equivalent_diameter_mm": 2,
    "circularity": 3, "elongation": 3, "solidity": 3, "margin_sharpness": 3,
}


def _rounded(fields: dict, unit: str, label_count: int | None, why: dict[str, str]) -> Measurements:
    """The stored record: values rounded to what they can support, reasons for what is missing."""
    decimals = {name: 1 if unit == "HU" else 4 for name in INTENSITY_FIELDS} | DECIMALS
    return Measurements(
        intensity_unit=unit,
        area_px=fields["area_px"],
        n_components=fields.get("n_components"),
        label_count=label_count,
        unmeasured=dict(sorted(why.items())),
        rgb_mean=fields.get("rgb_mean"),
        ring_rgb_mean=fields.get("ring_rgb_mean"),
        **{name: _r(fields.get(name), d) for name, d in decimals.items()},
    )
