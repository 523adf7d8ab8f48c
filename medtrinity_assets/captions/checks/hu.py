"""Hounsfield units a caption states, each held to the mean of the structure it belongs to.

``appearance_contradiction`` when a number of HU is further from its structure's measured mean
than ``hu_abs`` / ``hu_rel`` (thresholds.yaml) allow. A number belongs to:

- the structure named just before it when only a bridge lies between (lexicon ``hu_bridge``: "the
  spleen, which measures about 30 HU", "the spleen at about 30 HU", "the kidney, whose mean is 13
  HU"): the ROI's mean (`Measurements.mean`) for the ROI, the other structure's
  (`CaptionFacts.other_intensities`, HU only) for another; a structure with no recorded mean is not
  checked;
- otherwise the ROI, when the clause holding it is about the ROI (a sentence about the ROI, or a
  clause naming it) and names no other structure except as the surroundings; sentences opening
  with a comparison lead ("Compared with the spleen, ...") are left to checks/compare.py.
"""

from __future__ import annotations

import re

from .base import CLAIM_CLAUSE, CaptionView, alternation
from .compare import comparison_leads
from .relations import find_names, name_table

HU_NUMBER = re.compile(r"(?P<n>-?\d+(?:\.\d+)?)\s*(?:HU|Hounsfield units?)\b", re.I)


def _clause_at(sentence: str, pos: int) -> str:
    """The clause of `sentence` (`CLAIM_CLAUSE`, as the appearance checks split it) holding `pos`."""
    start = max((m.end() for m in CLAIM_CLAUSE.finditer(sentence, 0, pos)), default=0)
    end = next((m.start() for m in CLAIM_CLAUSE.finditer(sentence, pos)), len(sentence))
    return sentence[start:end]


def stated_hu(view: CaptionView, sentence: str) -> list[tuple[str | None, float]]:
    """(owner label or None, value) for each number of HU in a sentence (see the module docstring)."""
    names = name_table([view.roi, *view.facts.other_rois]) if view.roi else []
    bridge = alternation((view.lex["hu_bridge"],))
    surrounding = re.compile(view.lex["surrounding_cues"], re.I)
    low, out = sentence.lower(), []
    for x in HU_NUMBER.finditer(sentence):
        named = find_names(low[: x.start()], names)
        owner = None
        if named and bridge is not None and bridge.fullmatch(low[named[-1][1] : x.start()]):
            owner = named[-1][2]
        elif not comparison_leads(view, sentence):
            clause = _clause_at(sentence, x.start())
            other = view.names_other(clause) and not surrounding.search(clause)
            if not other and (view.about_roi(sentence) or view.names_roi(clause)):
                owner = view.roi
        out.append((owner, float(x.group("n"))))
    return out


def hu_problems(view: CaptionView) -> list[str]:
    m = view.measurements
    if m is None or not view.roi or m.intensity_unit != "HU":
        return []
    means = {i.label: i.mean for i in view.facts.other_intensities if i.unit == "HU"}
    if m.mean is not None:
        means[view.roi] = float(m.mean)
    th = view.th["appearance"]
    for sentence in view.image_sentences:
        for owner, stated in stated_hu(view, sentence):
            mean = means.get(owner or "")
            if mean is not None and abs(stated - mean) > max(th["hu_abs"], th["hu_rel"] * abs(mean)):
                return ["appearance_contradiction"]
    return []
