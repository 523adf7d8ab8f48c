"""Intensity policy: source values (HU, MR signal, 16-bit counts...) -> 8-bit display values.

One `IntensityPlan` is computed per item (over the whole volume / frame stack, so all slices of
an item share one mapping) and applied per plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtrinity_assets.ingest.policy import CT_WINDOWS, IntensityPolicy

# organ/body-region keywords -> CT window (first organ of the item that matches wins)
_WINDOW_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lung", ("lung", "pulmonary", "airway", "bronch", "trachea", "chest", "thorax", "thoracic", "pleura")),
    ("brain", ("brain", "head", "cerebr", "intracranial", "neuro", "cranial")),
    (
        "bone",
        (
            "bone",
            "skelet",
            "spine",
            "spinal column",
            "vertebra",
            "rib",
            "femur",
            "tibia",
            "pelvis",
            "hip",
            "skull",
            "fracture",
            "osseous",
            "humerus",
            "sacrum",
        ),
    ),
    ("mediastinum", ("mediastin", "heart", "cardiac", "aorta", "coronary")),
    (
        "abdomen",
        (
            "abdom",
            "liver",
            "hepat",
            "spleen",
            "kidney",
            "renal",
            "pancrea",
            "stomach",
            "bowel",
            "colon",
            "gallbladder",
            "adrenal",
            "bladder",
            "duoden",
        ),
    ),
)

_SAMPLE_TARGET = 1 << 20  # voxels used to estimate percentiles


def ct_window_for_organs(organs: tuple[str, ...] | list[str]) -> str:
    """CT window name for an item's organs (first organ with a known keyword), default soft_tissue."""
    for organ in organs:
        low = organ.lower()
        for name, keywords in _WINDOW_KEYWORDS:
            if any(k in low for k in keywords):
                return name
    return "soft_tissue"


def sample_for_statistics(data: np.ndarray, target: int = _SAMPLE_TARGET) -> np.ndarray:
    """A strided sub-grid of about `target` values at most (deterministic), for percentile estimates."""
    n = data.size
    if n <= target:
        return data
    step = int(np.ceil((n / target) ** (1.0 / min(data.ndim, 3))))
    index = tuple(slice(None, None, step) if a < 3 else slice(None) for a in range(data.ndim))
    return data[index]


def linear_to_uint8(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly to [0, 255] (clipped, rounded)."""
    if high <= low:
        return np.zeros(plane.shape, dtype=np.uint8)
    scale = np.float32(255.0 / (high - low))
    out = (plane.astype(np.float32, copy=False) - np.float32(low)) * scale
    np.clip(out, 0.0, 255.0, out=out)
    out += 0.5
    return out.astype(np.uint8)


def window_to_uint8(plane: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window: center - width/2 -> 0, center + width/2 -> 255."""
    return linear_to_uint8(plane, center - width / 2.0, center + width / 2.0)


def sigmoid_window_to_uint8(plane: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM VOI LUT Function SIGMOID."""
    x = plane.astype(np.float32, copy=False)
    out = 255.0 / (1.0 + np.exp(-4.0 * (x - center) / max(width, 1e-6)))
    return (out + 0.5).astype(np.uint8)


def lut_to_uint8(plane: np.ndarray, lut: np.ndarray, first_mapped: int, bits: int) -> np.ndarray:
    """DICOM VOI LUT table lookup, output rescaled from `bits` to 8 bits."""
    idx = np.clip(plane.astype(np.int64) - int(first_mapped), 0, len(lut) - 1)
    values = lut[idx].astype(np.float32)
    top = float((1 << bits) - 1) if bits > 0 else float(max(lut.max(), 1))
    return np.clip(values * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)


def clip_to_uint8(plane: np.ndarray) -> np.ndarray:
    """Values taken as already display-ready (uint8 passes through; others clipped to 0..255)."""
    if plane.dtype == np.uint8:
        return plane
    return np.clip(np.rint(plane.astype(np.float32)), 0, 255).astype(np.uint8)


@dataclass
class IntensityPlan:
    """The resolved mapping for one item; `describe()` is what lands in Slice2D.meta['intensity']."""

    mode: str  # ct_window | header_window | voi_lut | mr_percentile | minmax | none
    low: float = 0.0
    high: float = 255.0
    window: tuple[float, float] | None = None  # (center, width)
    window_name: str | None = None
    voi_function: str = "LINEAR"
    lut: np.ndarray | None = None
    lut_first: int = 0
    lut_bits: int = 8
    percentiles: tuple[float, float] | None = None
    invert: bool = False
    notes: list[str] = field(default_factory=list)

    def apply(self, plane: np.ndarray) -> np.ndarray:
        """uint8 display values for one plane (grey or RGB)."""
        if self.mode == "none":
            out = clip_to_uint8(plane)
        elif self.mode == "voi_lut" and self.lut is not None:
            out = lut_to_uint8(plane, self.lut, self.lut_first, self.lut_bits)
        elif self.window is not None and self.voi_function == "SIGMOID":
            out = sigmoid_window_to_uint8(plane, *self.window)
        else:
            out = linear_to_uint8(plane, self.low, self.high)
        return (255 - out) if self.invert else out

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": self.mode}
        if self.window is not None:
            d["window"] = {"center": float(self.window[0]), "width": float(self.window[1])}
            if self.window_name:
                d["window"]["name"] = self.window_name
            if self.voi_function != "LINEAR":
                d["window"]["function"] = self.voi_function
        if self.percentiles is not None:
            d["percentiles"] = [float(self.percentiles[0]), float(self.percentiles[1])]
        if self.mode in ("mr_percentile", "minmax"):
            d["range"] = [float(self.low), float(self.high)]
        if self.mode == "voi_lut":
            d["lut_entries"] = int(len(self.lut)) if self.lut is not None else 0
        if self.invert:
            d["inverted"] = "MONOCHROME1"
        if self.notes:
            d["notes"] = list(self.notes)
        return d


@dataclass
class IntensitySource:
    """What the planner needs to know about the decoded pixels."""

    data: np.ndarray
    rgb: bool = False
    hu: bool = False
    header_window: tuple[float, float, str] | None = None  # center, width, VOI LUT function
    voi_lut: tuple[np.ndarray, int, int] | None = None  # table, first mapped value, bits
    monochrome1: bool = False
    bits_stored: int | None = None
    eight_bit_display: bool = True  # 8-bit values are already display values (rasters, DICOM); not volumes


def _percentile_plan(src: IntensitySource, pct: tuple[float, float]) -> IntensityPlan:
    sample = sample_for_statistics(src.data)
    lo, hi = np.percentile(sample, pct)
    plan = IntensityPlan("mr_percentile", float(lo), float(hi), percentiles=pct)
    if hi <= lo:  # flat after clipping (e.g. mostly-constant image): fall back to the full range
        plan.low, plan.high = float(sample.min()), float(sample.max())
        plan.notes.append("percentile range empty; full range used")
    return plan


def _minmax_plan(src: IntensitySource) -> IntensityPlan:
    return IntensityPlan("minmax", float(np.min(src.data)), float(np.max(src.data)))


def _ct_plan(policy: IntensityPolicy, organs: tuple[str, ...]) -> IntensityPlan:
    name = policy.ct_window or ct_window_for_organs(organs)
    center, width = CT_WINDOWS[name]
    return IntensityPlan("ct_window", center - width / 2, center + width / 2, window=(center, width), window_name=name)


def _header_plan(src: IntensitySource) -> IntensityPlan | None:
    if src.voi_lut is not None:
        table, first, bits = src.voi_lut
        return IntensityPlan("voi_lut", lut=table, lut_first=first, lut_bits=bits)
    if src.header_window is not None:
        center, width, function = src.header_window
        if width > 0:
            return IntensityPlan(
                "header_window", center - width / 2, center + width / 2, window=(center, width), voi_function=function
            )
    return None


def plan_intensity(src: IntensitySource, policy: IntensityPolicy, organs: tuple[str, ...] = ()) -> IntensityPlan:
    """Resolve the policy's mode for this item's pixels (see IntensityPolicy)."""
    mode = policy.mode
    if mode == "auto":
        if src.rgb:
            if src.data.dtype == np.uint8:
                plan = IntensityPlan("none")
            elif src.bits_stored:
                plan = IntensityPlan("minmax", 0.0, float((1 << src.bits_stored) - 1))
                plan.notes.append("colour scaled from its bit depth")
            else:
                plan = _minmax_plan(src)
        elif src.hu:
            plan = _ct_plan(policy, organs)
        else:
            plan = _header_plan(src) or (
                IntensityPlan("none")
                if src.data.dtype == np.uint8 and src.eight_bit_display
                else _percentile_plan(src, policy.percentiles)
            )
    elif mode == "ct_window":
        plan = _ct_plan(policy, organs)
        if not src.hu:
            plan.notes.append("values are not known to be Hounsfield units")
    elif mode == "mr_percentile":
        plan = _percentile_plan(src, policy.percentiles)
    elif mode == "minmax":
        plan = _minmax_plan(src)
    else:
        plan = IntensityPlan("none")
    plan.invert = src.monochrome1 and not src.rgb
    return plan
