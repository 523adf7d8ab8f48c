"""Burned-in text: find it, judge it, and mask or quarantine it as the source's policy says."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medtrinity_assets.phi.config import OcrSettings, load_settings
from medtrinity_assets.phi.headers import Identities
from medtrinity_assets.phi.ocr import OcrEngine
from medtrinity_assets.phi.patterns import pixel_kinds
from medtrinity_assets.phi.policy import PhiPolicy

Box = tuple[int, int, int, int]

# what happened to an image's pixels
NO_TEXT, KEPT, MASKED, QUARANTINED = "no_text", "kept", "masked", "quarantined"


@dataclass(frozen=True)
class TextRegion:
    """A text region as persisted: its box and the PHI kinds its text matched (never the text)."""

    box: Box
    kinds: tuple[str, ...]


@dataclass
class PixelVerdict:
    action: str
    regions: list[TextRegion] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # quarantine reasons (empty unless quarantined)

    @property
    def kinds(self) -> list[str]:
        return sorted({k for r in self.regions for k in r.kinds})


def find_text(pixels: np.ndarray, engine: OcrEngine, identities: Identities = Identities()) -> list[TextRegion]:
    """Text regions of an image with the PHI kinds of what they read (the reading is dropped here)."""
    return [TextRegion(r.box, tuple(pixel_kinds(r.text, identities.phrases))) for r in engine.read(pixels)]


def padded(box: Box, width: int, height: int, s: OcrSettings) -> Box:
    pad = max(s.pad_px, int(round(s.pad_frac * (box[3] - box[1] + 1))))
    return (max(0, box[0] - pad), max(0, box[1] - pad), min(width - 1, box[2] + pad), min(height - 1, box[3] + pad))


def mask_regions(pixels: np.ndarray, boxes: list[Box], settings: OcrSettings | None = None) -> np.ndarray:
    """Fill each (padded) box with black, in place; returns the same array."""
    s = settings or load_settings().ocr
    height, width = pixels.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = padded(box, width, height, s)
        pixels[y0 : y1 + 1, x0 : x1 + 1] = 0
    return pixels


def mask_native(native: np.ndarray, boxes: list[Box], settings: OcrSettings | None = None) -> np.ndarray:
    """The same boxes filled with the array's minimum in the native values on the display grid
    (a copy; e.g. HU kept beside the display pixels), so that no stored array keeps the text."""
    out = np.array(native, copy=True)
    s = settings or load_settings().ocr
    height, width = out.shape[:2]
    floor = np.nanmin(out) if out.size else 0
    for box in boxes:
        x0, y0, x1, y1 = padded(box, width, height, s)
        out[y0 : y1 + 1, x0 : x1 + 1] = floor
    return out


def _reasons(kinds: list[str], burned_in: bool) -> list[str]:
    return sorted({f"phi_pixels:{k}" for k in kinds} | ({"phi_pixels:burned_in_annotation"} if burned_in else set()))


def judge(policy: PhiPolicy, regions: list[TextRegion], burned_in: bool) -> PixelVerdict:
    """The action for an image's text under the policy (masking itself is `screen_pixels`' job)."""
    kinds = sorted({k for r in regions for k in r.kinds})
    if policy.pixels == "allow":
        if "header_name" in kinds:  # its own patient's or institution's name: never allowed
            return PixelVerdict(QUARANTINED, regions, ["phi_pixels:header_name"])
        return PixelVerdict(KEPT if regions else NO_TEXT, regions)
    if policy.pixels == "mask":
        if regions:
            return PixelVerdict(MASKED, regions)
        if burned_in:
            return PixelVerdict(QUARANTINED, regions, ["phi_pixels:burned_in_unlocated"])
        return PixelVerdict(NO_TEXT, regions)
    if policy.pixels == "quarantine" and (regions or burned_in):
        return PixelVerdict(QUARANTINED, regions, _reasons(kinds, burned_in) if (kinds or burned_in) else ["phi_pixels:text"])
    if kinds or burned_in:  # auto
        return PixelVerdict(QUARANTINED, regions, _reasons(kinds, burned_in))
    return PixelVerdict(KEPT if regions else NO_TEXT, regions)


def screen_pixels(
    pixels: np.ndarray, policy: PhiPolicy, burned_in: bool, engine: OcrEngine | None, identities: Identities = Identities()
) -> PixelVerdict:
    """Detect, judge and (under `mask`) fill the text of one display-ready image in place.

    After masking the image is read again: text that still looks like PHI (a region the first pass
    cut short) quarantines the image (`phi_pixels:mask_incomplete`).
    """
    regions = find_text(pixels, engine, identities) if engine is not None else []
    verdict = judge(policy, regions, burned_in)
    if verdict.action == MASKED:
        mask_regions(pixels, [r.box for r in regions], engine.settings)
        left = [r for r in find_text(pixels, engine, identities) if r.kinds]
        if left:
            return PixelVerdict(QUARANTINED, regions + left, ["phi_pixels:mask_incomplete"])
    return verdict
