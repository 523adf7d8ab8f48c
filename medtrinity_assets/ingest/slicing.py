"""Slicing policy: which planes of a volume / frame stack become 2D images."""

from __future__ import annotations

import numpy as np

from medtrinity_assets.ingest.intensity import sample_for_statistics
from medtrinity_assets.ingest.orientation import n_planes, plane_profile
from medtrinity_assets.ingest.policy import SlicingPolicy
from medtrinity_assets.ingest.stack import MaskVolume, Stack

HU_BODY_THRESHOLD = -500.0  # CT: voxels above this are tissue, below are air
FOREGROUND_RANGE_FRACTION = 0.05  # others: above 5% of the robust value range counts as foreground


def choose_axis(stack: Stack, policy: SlicingPolicy) -> str:
    """'frame' for frame stacks; for volumes the policy axis, or the native plane of a single-slice volume."""
    if stack.kind != "volume":
        return "frame"
    for axis in (stack.native_axis or "axial", "axial", "coronal", "sagittal"):
        if n_planes(stack.data.shape, axis) == 1:
            return axis
    return policy.axis


def count_planes(stack: Stack, axis: str) -> int:
    return int(stack.data.shape[0]) if axis == "frame" else n_planes(stack.data.shape, axis)


def _profile(volume: np.ndarray, axis: str, reduce) -> np.ndarray:
    if axis == "frame":
        return np.asarray(reduce(volume, tuple(range(1, volume.ndim))))
    return plane_profile(volume, axis, reduce)


def foreground_threshold(stack: Stack) -> float:
    """Value above which a pixel is foreground (not air / empty background)."""
    if stack.hu:
        return HU_BODY_THRESHOLD
    sample = sample_for_statistics(stack.data if not stack.rgb else stack.data.max(axis=-1), target=1 << 18)
    lo, hi = np.percentile(sample, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    return float(lo + FOREGROUND_RANGE_FRACTION * (hi - lo))


def foreground_fractions(stack: Stack, axis: str) -> np.ndarray:
    """Fraction of foreground pixels in every plane along `axis` (MONOCHROME1 handled: low = bright)."""
    grey = stack.data.max(axis=-1) if stack.rgb else stack.data
    threshold = foreground_threshold(stack)
    fg = grey < threshold if stack.monochrome1 else grey > threshold
    return _profile(fg, axis, np.mean).astype(float)


def mask_presence(masks: list[MaskVolume], axis: str, n: int) -> np.ndarray:
    """True for planes where any mask has foreground."""
    present = np.zeros(n, dtype=bool)
    for mv in masks:
        present |= _profile(mv.data != 0, axis, np.any).astype(bool)
    return present


def evenly_spaced(candidates: list[int], count: int) -> list[int]:
    """`count` candidates at the centres of equal bins (avoids the outermost planes)."""
    n = len(candidates)
    if n <= count:
        return list(candidates)
    return [candidates[int((k + 0.5) * n / count)] for k in range(count)]


def select_planes(
    n: int,
    policy: SlicingPolicy,
    has_masks: bool,
    mask_present: np.ndarray | None,
    fg_fraction: np.ndarray | None,
) -> tuple[list[int], str]:
    """Plane indices to output and a short description of the rule actually used."""
    ok = [i for i in range(n) if fg_fraction is None or fg_fraction[i] >= policy.min_foreground]
    if policy.select == "roi":
        if has_masks and mask_present is not None:
            roi = [i for i in ok if mask_present[i]]
            if roi:
                return evenly_spaced(roi, policy.count), "roi"
            return evenly_spaced(ok, policy.count), "even (no mask foreground)"
        return evenly_spaced(ok, policy.count), "even (item has no masks)"
    if policy.select == "even":
        return evenly_spaced(ok, policy.count), "even"
    if policy.select == "stride":
        allowed = set(ok)
        return [i for i in range(0, n, policy.stride) if i in allowed], "stride"
    return ok, "all"
