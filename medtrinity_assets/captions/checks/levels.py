"""Spinal levels a caption states, against the numbered vertebra labels of the image.

``level_contradiction``: a vertebral level named ("at the level of L3", "the T12 and L1
vertebrae", "the L2 vertebral level") that no structure label of the image holds (the record's
ROI, other ROIs and image labels, read by `labels.vertebral_levels`), or a slice level ("at the
level of L2", "passes through the L2 vertebra") stated for a slice whose recorded plane is not
axial: a coronal or sagittal slice shows a run of vertebrae, not one level. The patterns are the
lexicon's ``vertebral_level`` and ``slice_level``.
"""

from __future__ import annotations

import re

from ..labels import roi_label_of, vertebral_levels
from .base import CaptionView, alternation

_TOKEN = re.compile(r"\b([CTLS])\s?(\d{1,2})\b", re.I)


def stated_levels(text: str, pattern: str) -> list[set[str]]:
    """The sets of levels each vertebral-level phrase of `text` names (``{"T12", "L1"}``)."""
    rx = alternation((pattern,))
    return [{f"{a.upper()}{int(b)}" for a, b in _TOKEN.findall(m.group(0))} for m in rx.finditer(text)] if rx else []


def level_problems(view: CaptionView) -> list[str]:
    """``level_contradiction`` when a stated level is not on the image, or a slice level is given
    for a non-axial slice."""
    facts, lex = view.facts, view.lex
    labels = [x for x in (roi_label_of(facts), *facts.other_rois, *facts.image_labels) if x]
    present = set(vertebral_levels(labels))
    plane = facts.frame.plane if facts.frame else None
    for text in view.texts:
        if any(levels - present for levels in stated_levels(text, lex["vertebral_level"])):
            return ["level_contradiction"]
        if plane and plane != "axial" and stated_levels(text, lex["slice_level"]):
            return ["level_contradiction"]
    return []
