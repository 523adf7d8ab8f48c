"""Brightness comparisons a caption states between the ROI and another structure of the image.

``appearance_contradiction``: "the left kidney is hypodense relative to the spleen" when the
record's means put the kidney above the spleen. The standardised difference of the ROI's mean
(`Measurements`) and the other structure's (`CaptionFacts.other_intensities`: the one ROI of its
label on the image, or the union of its parts), pooled as the ring contrast is, is held to the ring's bands in
thresholds.yaml (``darker_max``, ``brighter_min``, ``similar_max``). Two forms are read:

- words then structure: a lexicon ``appearance`` darker / brighter / similar word followed, with
  only a comparison link between (lexicon ``comparison_link``: "than", "relative to", "to",
  "compared with", "that of"), by a structure of the image, the sentence's subject being the ROI
  ("it is lower in attenuation than the spleen") or, read the other way round, that structure
  with the ROI after the words ("the spleen is brighter than the kidney");
- a lead naming the structure ("Compared with the spleen, the kidney is hypodense"; lexicon
  ``comparison_lead``) before the words.

Surroundings ("the surrounding liver") are the ring's business (checks/appearance.py), and a
structure with no recorded mean (separate instances of its label, or none) is not checked.
`comparison_leads` tells the ring checks which sentences compare with a named structure instead.
"""

from __future__ import annotations

import math
import re

from medtrinity_assets.records import Intensity, Measurements

from ..appearance import standardised_difference
from .base import CaptionView, alternation, compile_patterns
from .relations import find_names, name_table, subject_of


def _compiled(pattern: str) -> re.Pattern[str]:
    return alternation((pattern,))  # type: ignore[return-value]


def _readings(view: CaptionView) -> list[tuple[str, re.Pattern[str]]]:
    return [(k, compile_patterns(tuple(view.lex["appearance"][k]))[0]) for k in ("darker", "brighter", "similar")]


def _lead(view: CaptionView, low: str) -> re.Match[str] | None:
    """A comparison lead ("Compared with the spleen,") opening a lower-case sentence; None for none,
    or for a lead about the surroundings ("Compared with the surrounding liver, ...": the ring's)."""
    lead = _compiled(view.lex["comparison_lead"]).match(low)
    return None if lead and _compiled(view.lex["surrounding_cues"]).search(lead.group(0)) else lead


def stated_comparisons(sentence: str, view: CaptionView, names: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(subject, reading, object) triples a sentence states: ``("kidney_left", "darker", "spleen")``."""
    low = sentence.lower()
    link = _compiled(view.lex["comparison_link"])
    out = []
    lead = _lead(view, low)
    lead_named = find_names(low[: lead.end()], names) if lead else []
    body = low[lead.end() :] if lead else low
    subject = subject_of(body, view.roi, names)
    for reading, rx in _readings(view):
        for m in rx.finditer(body):
            after = [(s, label) for s, _, label in find_names(body[m.end() :], names)]
            if after and link.fullmatch(body[m.end() : m.end() + after[0][0]]):
                out.append((subject or "", reading, after[0][1]))
            elif lead_named:
                out.append((subject or "", reading, lead_named[-1][2]))
    return out


def comparison_leads(view: CaptionView, sentence: str) -> bool:
    """Whether a sentence opens by naming another structure to compare with ("Compared with the
    spleen, ..."): its darker/brighter words are about that structure, not the surroundings."""
    lead = _lead(view, sentence.lower())
    return bool(lead) and view.names_other(sentence[: lead.end()])


def _wrong(reading: str, c: float, th: dict) -> bool:
    if reading == "darker":
        return c >= th["darker_max"]
    if reading == "brighter":
        return c <= th["brighter_min"]
    return abs(c) >= th["similar_max"]


def comparison_problems(view: CaptionView) -> list[str]:
    """``appearance_contradiction`` when a stated comparison with a measured structure is wrong."""
    m: Measurements | None = view.measurements
    measured: dict[str, Intensity] = {i.label: i for i in view.facts.other_intensities}
    if m is None or not view.roi or not measured:
        return []
    names = name_table([view.roi, *view.facts.other_rois])
    th = view.th["appearance"]
    for sentence in view.image_sentences:
        for subject, reading, obj in stated_comparisons(sentence, view, names):
            if subject == view.roi and obj in measured:
                c = standardised_difference(m, measured[obj])
            elif obj == view.roi and subject in measured:
                c = standardised_difference(m, measured[subject])
                c = None if c is None else -c  # "the spleen is brighter than the kidney": the spleen's difference
            else:
                continue
            if c is not None and math.isfinite(c) and _wrong(reading, c, th):
                return ["appearance_contradiction"]
    return []
