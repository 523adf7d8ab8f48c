"""PHI screening: burned-in text in pixels (OCR), DICOM header identities, and output text fields.

- `screen_item` (images stage): detect text regions, judge them by the source's `PhiPolicy`
  (``auto | mask | quarantine | allow``), mask them in place, and return the images columns
- `triplet_phi` (triplets stage): PHI columns per record and quarantine reasons
  (``phi_pixels:<kind>``, ``phi_text:<field>:<kind>``) — kinds and fields only, never values
- `scrub_text`: PHI patterns replaced by ``<kind>`` (reject details)
"""

from medtrinity_assets.phi.patterns import pixel_kinds, scrub_text, text_kinds
from medtrinity_assets.phi.pixels import KEPT, MASKED, NO_TEXT, QUARANTINED, PixelVerdict, TextRegion, judge, mask_regions, screen_pixels
from medtrinity_assets.phi.policy import PhiPolicy
from medtrinity_assets.phi.stage import TRIPLET_TEXT_FIELDS, phi_clear, phi_summary, screen_item, triplet_phi
from medtrinity_assets.phi.text_scan import field_reasons

__all__ = [
    "KEPT",
    "MASKED",
    "NO_TEXT",
    "QUARANTINED",
    "PhiPolicy",
    "PixelVerdict",
    "TRIPLET_TEXT_FIELDS",
    "TextRegion",
    "field_reasons",
    "judge",
    "mask_regions",
    "phi_summary",
    "phi_clear",
    "pixel_kinds",
    "scrub_text",
    "screen_item",
    "screen_pixels",
    "text_kinds",
    "triplet_phi",
]
