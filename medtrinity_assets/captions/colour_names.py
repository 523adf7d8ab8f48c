"""Colour names of a region's mean colour (`Measurements.rgb_mean` / `ring_rgb_mean`).

The mean R, G, B is read in HSV (hue in degrees, saturation and value 0..1) and named by the first
entry of ``appearance.yaml`` `colour_names` whose bands hold it. The caption checks accept a
stated name when the colour lies in that name's bands widened by a tolerance
(``checks/thresholds.yaml`` `appearance.colour_name_*`), so wording and checking read one table.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Sequence
from functools import lru_cache

from .data_files import ColourName, appearance


def hsv(rgb: Sequence[float]) -> tuple[float, float, float]:
    """(hue degrees, saturation, value) of an R, G, B colour on 0..1."""
    h, s, v = colorsys.rgb_to_hsv(*(min(max(float(c), 0.0), 1.0) for c in rgb[:3]))
    return h * 360.0, s, v


def _in_hue(h: float, band: tuple[float, float] | None, tol: float) -> bool:
    if band is None:
        return True
    lo, hi = band[0] - tol, band[1] + tol
    if lo <= hi:  # an ordinary band, widened; wrap round 0/360
        return lo <= h <= hi or lo <= h - 360 <= hi or lo <= h + 360 <= hi
    return h >= lo % 360 or h <= hi % 360  # a band across 0 (red: 340..15)


def _in(x: float, band: tuple[float, float] | None, tol: float) -> bool:
    return band is None or band[0] - tol <= x <= band[1] + tol


def fits(entry: ColourName, rgb: Sequence[float], hue_tol: float = 0.0, level_tol: float = 0.0) -> bool:
    """Whether the colour lies in the entry's bands (widened by the tolerances)."""
    h, s, v = hsv(rgb)
    return _in_hue(h, entry.hue, hue_tol) and _in(s, entry.saturation, level_tol) and _in(v, entry.value, level_tol)


def colour_name(rgb: Sequence[float] | None) -> str | None:
    """The table name of a mean colour (``red``, ``pink``, ``dark red``), or None."""
    if rgb is None:
        return None
    return next((e.name for e in appearance().colour_names if fits(e, rgb)), None)


@lru_cache(maxsize=1)
def name_readers() -> tuple[tuple[ColourName, re.Pattern[str]], ...]:
    """(entry, pattern of its words) for every colour name, longest words first ("dark red"
    before "red"), for reading stated colours back out of a text."""
    entries = sorted(appearance().colour_names, key=lambda e: -max(len(w) for w in e.words))
    return tuple((e, re.compile(r"\b(?:" + "|".join(re.escape(w) for w in e.words) + r")\b", re.I)) for e in entries)


def stated_colours(text: str) -> list[ColourName]:
    """Colour-name entries a text states, in text order (each span read once, longest name first)."""
    return [entry for entry, _ in stated_colour_groups(text)]


_JOIN = re.compile(r"^(?:-|\s*/\s*|\s+(?:to|or)\s+)$", re.I)


def stated_colour_groups(text: str) -> list[tuple[ColourName, int]]:
    """(entry, group) per stated colour name, in text order; names joined into one compound colour
    ("reddish-brown", "pink to brown", "pink or red") share a group: together they state one
    colour, which any of them may fit."""
    spans: list[tuple[int, int, ColourName]] = []
    rest = text or ""
    for entry, rx in name_readers():
        for m in rx.finditer(rest):
            spans.append((m.start(), m.end(), entry))
        rest = rx.sub(lambda m: " " * len(m.group(0)), rest)
    spans.sort(key=lambda s: s[0])
    out: list[tuple[ColourName, int]] = []
    group = -1
    for k, (start, _end, entry) in enumerate(spans):
        if k == 0 or not _JOIN.match(text[spans[k - 1][1] : start]):
            group += 1
        out.append((entry, group))
    return out


def words_of(name: str | None) -> tuple[str, ...]:
    """The equivalent words of a colour name (the reference form first); () for None."""
    return next((e.words for e in appearance().colour_names if e.name == name), ()) if name else ()
