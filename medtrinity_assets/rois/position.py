"""Position phrases on a 5 x 5 grid, in image terms, plus anatomical wording when allowed.

Vocabulary (exact; `parse_position` inverts it):

- vertical (image rows, top to bottom): ``upper``, ``upper-middle``, ``middle``,
  ``lower-middle``, ``lower``
- horizontal (image columns, left to right): ``left``, ``left-center``, ``center``,
  ``right-center``, ``right``
- a phrase is always ``"<vertical> <horizontal>"`` (one space, the terms themselves only use
  hyphens), e.g. ``"upper left-center"``, ``"middle center"``, ``"lower right"``.

The cell is the one holding the box centre: the image is cut into five equal bands each way
(``band = min(int(5 * centre_fraction), 4)``). Left/right are always IMAGE sides.

Anatomical wording needs the display convention recorded by ingestion (``Slice2D.meta
["orientation"]``, e.g. ``"radiological axial: patient left on image right, anterior up"``).
`display_convention` reads it case-insensitively:

- lateral: ``radiological`` or ``patient left on image right`` -> image left = patient right;
  ``neurological`` or ``patient left on image left`` -> image left = patient left; otherwise
  unknown: no side is claimed (2D photos, microscopy, ``"as acquired (2D source)"``).
- plane: ``axial``/``transverse``, ``coronal``, ``sagittal``, or a projection (``projection``,
  ``radiograph``, ``x-ray``, ``frontal``, ``pa``, ``ap``). Sagittal images have no left/right.
- image up: ``anterior up`` -> anterior; ``superior up``/``head up``/``feet down`` -> superior;
  otherwise from the plane (axial -> anterior; coronal, sagittal, projection -> superior).
- ``anterior on image left`` / ``... right`` (sagittal) gives the anterior side.

`anatomical_position` wording: ``"in the patient's right upper region"``, ``"in the patient's
left anterior region"`` (axial), ``"in the upper region near the midline"``, ``"in the upper
anterior region"`` (sagittal), ``"on the patient's right side"`` (lateral convention known,
image-up direction unknown); None when nothing anatomical can be said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import overload

from medtrinity_assets.records import RejectError

from .geometry import Box, box_centre

VERTICAL: tuple[str, ...] = ("upper", "upper-middle", "middle", "lower-middle", "lower")
HORIZONTAL: tuple[str, ...] = ("left", "left-center", "center", "right-center", "right")

#: The position vocabulary: the terms of each axis and every phrase position_phrase can return.
POSITION_VOCABULARY: dict[str, tuple[str, ...]] = {
    "vertical": VERTICAL,
    "horizontal": HORIZONTAL,
    "phrases": tuple(f"{v} {h}" for v in VERTICAL for h in HORIZONTAL),
}

GRID = 5


@dataclass(frozen=True)
class DisplayConvention:
    """What an orientation string tells about the display."""

    lateral: str | None  # "radiological" | "neurological" | None
    plane: str | None  # "axial" | "coronal" | "sagittal" | "projection" | None
    up: str | None = None  # what image-up points to: "anterior" | "superior" | None
    anterior_side: str | None = None  # image side facing anterior (sagittal): "left" | "right" | None

    @property
    def has_sides(self) -> bool:
        """Whether image left/right map to patient right/left."""
        return self.lateral is not None and self.plane != "sagittal"


_RADIOLOGICAL = re.compile(r"radiological|patient'?s? left (?:is )?on (?:the )?image(?:'s)? right")
_NEUROLOGICAL = re.compile(r"neurological|patient'?s? left (?:is )?on (?:the )?image(?:'s)? left")
_PLANES = (
    ("axial", re.compile(r"\b(axial|transverse)\b")),
    ("coronal", re.compile(r"\bcoronal\b")),
    ("sagittal", re.compile(r"\bsagittal\b")),
    ("projection", re.compile(r"\b(projection|radiograph\w*|x-?ray|frontal|pa|ap)\b")),
)
_ANTERIOR_UP = re.compile(r"anterior (?:is )?up|anterior (?:at|on) (?:the )?top")
_SUPERIOR_UP = re.compile(r"superior (?:is )?up|head (?:is )?up|feet (?:are )?down|superior (?:at|on) (?:the )?top")
_ANTERIOR_SIDE = re.compile(r"anterior (?:is )?on (?:the )?image(?:'s)? (left|right)")
_PLANE_UP = {"axial": "anterior", "coronal": "superior", "sagittal": "superior", "projection": "superior"}


def display_convention(orientation: str | None) -> DisplayConvention:
    """Parse an orientation string into lateral convention, plane, image-up and anterior side."""
    text = (orientation or "").lower()
    lateral = (
        "radiological"
        if _RADIOLOGICAL.search(text)
        else "neurological"
        if _NEUROLOGICAL.search(text)
        else None
    )
    plane = next((name for name, pattern in _PLANES if pattern.search(text)), None)
    up = (
        "anterior"
        if _ANTERIOR_UP.search(text)
        else "superior"
        if _SUPERIOR_UP.search(text)
        else _PLANE_UP.get(plane or "")
    )
    side = _ANTERIOR_SIDE.search(text)
    return DisplayConvention(lateral, plane, up, side.group(1) if side else None)


def grid_band(fraction: float, n: int = GRID) -> int:
    """Index 0..n-1 of the equal band holding `fraction` (0..1)."""
    return min(max(int(fraction * n), 0), n - 1)


def position_phrase(bbox: Box, width: int, height: int, orientation: str = "") -> str:
    """``"<vertical> <horizontal>"`` cell of the box centre on a 5 x 5 grid, in IMAGE terms.

    `orientation` does not change the phrase (left/right stay image sides); pass it to
    `anatomical_position` for patient-side wording.
    """
    if width <= 0 or height <= 0:
        raise RejectError("bad_size", f"image size must be positive, got {width}x{height}")
    x0, y0, x1, y1 = bbox
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        raise RejectError("bad_box", f"box {tuple(bbox)} outside a {width}x{height} image")
    cx, cy = box_centre(bbox, width, height)
    return f"{VERTICAL[grid_band(cy)]} {HORIZONTAL[grid_band(cx)]}"


def parse_position(phrase: str) -> tuple[str, str]:
    """Split a position phrase into ``(vertical, horizontal)``; RejectError if not in vocabulary."""
    parts = (phrase or "").strip().split(" ")
    if len(parts) != 2 or parts[0] not in VERTICAL or parts[1] not in HORIZONTAL:
        raise RejectError("bad_position", f"not a position phrase: {phrase!r}")
    return parts[0], parts[1]


def image_side(horizontal: str) -> str:
    """``left``, ``right`` or ``center`` for a horizontal term (image sides)."""
    if horizontal not in HORIZONTAL:
        raise RejectError("bad_position", f"not a horizontal term: {horizontal!r}")
    return horizontal.split("-")[0]


def anatomical_side(horizontal: str, orientation: str | None) -> str | None:
    """Patient side (``left``/``right``/``midline``) of an image-horizontal term, or None.

    None when the orientation does not state a lateral convention, or for sagittal planes.
    Under the radiological convention image left = patient right.
    """
    side = image_side(horizontal)
    convention = display_convention(orientation)
    if not convention.has_sides:
        return None
    if side == "center":
        return "midline"
    if convention.lateral == "radiological":
        return "right" if side == "left" else "left"
    return side


def anatomical_vertical(vertical: str, up: str | None) -> str | None:
    """Anatomical word for an image-vertical term when image-up is `up` (anterior/superior)."""
    if vertical not in VERTICAL:
        raise RejectError("bad_position", f"not a vertical term: {vertical!r}")
    if up is None:
        return None
    band = VERTICAL.index(vertical)
    words = ("anterior", "central", "posterior") if up == "anterior" else ("upper", "central", "lower")
    return words[0] if band < 2 else words[1] if band == 2 else words[2]


def _sagittal_phrase(vertical: str, horizontal: str, convention: DisplayConvention) -> str | None:
    side = image_side(horizontal)
    vertical_word = anatomical_vertical(vertical, convention.up) or "central"
    if convention.anterior_side is None:
        return None if convention.up is None else f"in the {vertical_word} region"
    if side == "center":
        return f"in the {vertical_word} region"
    depth = "anterior" if side == convention.anterior_side else "posterior"
    return f"in the {vertical_word} {depth} region" if vertical_word != "central" else f"in the {depth} region"


def anatomical_phrase(phrase: str, orientation: str | None) -> str | None:
    """Patient-frame wording of an image position phrase, or None when nothing can be claimed."""
    vertical, horizontal = parse_position(phrase)
    convention = display_convention(orientation)
    if convention.plane == "sagittal":
        return _sagittal_phrase(vertical, horizontal, convention)
    side = anatomical_side(horizontal, orientation)
    if side is None:
        return None
    vertical_word = anatomical_vertical(vertical, convention.up)
    if vertical_word is None:
        return "near the midline" if side == "midline" else f"on the patient's {side} side"
    if side == "midline":
        return f"in the {vertical_word} region near the midline"
    return f"in the patient's {side} {vertical_word} region"


@overload
def anatomical_position(where: str, orientation: str | None, /) -> str | None: ...
@overload
def anatomical_position(where: Box, width: int, height: int, orientation: str | None, /) -> str | None: ...
def anatomical_position(where, *args):
    """Anatomical wording of a position, or None when the orientation allows no side claim.

    Call as ``anatomical_position(phrase, orientation)`` with a `position_phrase` result, or
    ``anatomical_position(bbox, width, height, orientation)``.
    """
    if isinstance(where, str):
        if len(args) != 1:
            raise TypeError("anatomical_position(phrase, orientation)")
        return anatomical_phrase(where, args[0])
    if len(args) != 3:
        raise TypeError("anatomical_position(bbox, width, height, orientation)")
    width, height, orientation = args
    return anatomical_phrase(position_phrase(tuple(where), width, height, orientation), orientation)
