"""Appearance and shape words about the ROI, compared with its measurements (issue 11).

A claim counts when a sentence about this image speaks about the ROI (names it, or starts with
"It"/"The region"...), and compares it with its surroundings rather than with another named
structure (naming another structure is fine with "surrounding"/"neighbouring"/"adjacent").
Negated words ("not darker") and generic sentences say nothing. A word fails only when the
measurement is present and lies outside the word's tolerance band (thresholds.yaml):

- ``appearance_contradiction``: darker/hypo-* vs contrast, brighter/hyper-* vs contrast, iso-*,
  a degree before them ("slightly", "markedly") vs the contrast and the Michelson contrast of the means,
  homogeneous/heterogeneous vs the std ratio and GLCM homogeneity, well/ill defined vs margin
  sharpness (a stated mean in HU: checks/hu.py);
  more deeply coloured / paler vs the saturation difference, "differs in hue" vs the hue difference,
  any of them for a region recorded as achromatic (a grey image stored as RGB has no colour); a
  colour name (red, pink, brown...) that does not fit the ROI's mean colour, or in a clause about
  the surroundings neither the ROI's nor the ring's; a compound ("reddish-brown", "pink to brown")
  fails only when none of its names fits (captions/colour_names.py, tolerances in thresholds.yaml);
- ``shape_contradiction``: round vs elongation/circularity, elongated vs elongation,
  irregular/lobulated vs solidity and circularity, smooth outline vs solidity.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..appearance import michelson
from ..colour_names import fits, stated_colour_groups
from .base import CLAIM_CLAUSE, CaptionView
from .compare import comparison_leads

@lru_cache(maxsize=64)
def _word_scanner(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in patterns) + r")(?![\w-])", re.I)


def _said(view: CaptionView, key: str, sentence: str, negator: re.Pattern[str]) -> bool:
    for m in _word_scanner(tuple(view.lex["appearance"][key])).finditer(sentence):
        if not negator.search(sentence[max(0, m.start() - 25) : m.start()]):
            return True
    return False


def _claim_clauses(view: CaptionView) -> list[str]:
    """Clauses that describe the ROI: in a sentence about it, a clause naming no other structure
    (or naming one only as the surroundings), or a clause naming the ROI itself."""
    surrounding = re.compile(view.lex["surrounding_cues"], re.I)
    out = []
    for s in view.image_sentences:
        if comparison_leads(view, s):
            continue  # "Compared with the spleen, it is hypodense": checks/compare.py reads it
        about = view.about_roi(s)
        for clause in CLAIM_CLAUSE.split(s):
            if not clause.strip():
                continue
            if view.names_other(clause) and not surrounding.search(clause):
                continue
            if about or view.names_roi(clause):
                out.append(clause)
    return out


def appearance_problems(view: CaptionView) -> list[str]:
    m = view.measurements
    if m is None or not view.roi:
        return []
    th, sh = view.th["appearance"], view.th["shape"]
    negator = re.compile(view.lex["appearance_negators"], re.I)
    surrounding = re.compile(view.lex["surrounding_cues"], re.I)
    problems: set[str] = set()
    for s in _claim_clauses(view):
        said = {k for k in view.lex["appearance"] if _said(view, k, s, negator)}
        c = m.contrast
        if c is not None:
            if "darker" in said and "brighter" not in said and c >= th["darker_max"]:
                problems.add("appearance_contradiction")
            if "brighter" in said and "darker" not in said and c <= th["brighter_min"]:
                problems.add("appearance_contradiction")
            if "similar" in said and abs(c) >= th["similar_max"]:
                problems.add("appearance_contradiction")
            if any(_degree_wrong(d, c, michelson(m), th) for d in _degrees_said(view, s, negator)):
                problems.add("appearance_contradiction")
        unit = m.intensity_unit or ""
        if m.std is not None and unit in th["homogeneous_std_max"]:
            if "homogeneous" in said and "heterogeneous" not in said and m.std > th["homogeneous_std_max"][unit]:
                problems.add("appearance_contradiction")
            if "heterogeneous" in said and "homogeneous" not in said and m.std < th["heterogeneous_std_min"][unit]:
                problems.add("appearance_contradiction")
        if m.margin_sharpness is not None:
            if "well_defined" in said and "ill_defined" not in said and m.margin_sharpness < th["well_defined_min"]:
                problems.add("appearance_contradiction")
            if "ill_defined" in said and "well_defined" not in said and m.margin_sharpness > th["ill_defined_max"]:
                problems.add("appearance_contradiction")
        if not re.search(view.lex["part_qualifiers"], s, re.I):
            problems |= _colour_problems(said, m, th)
            if _colour_name_wrong(s, m, th, surrounding.search(s) is not None):
                problems.add("appearance_contradiction")
        if "round" in said and "elongated" not in said and "irregular" not in said:
            if (m.elongation is not None and m.elongation < sh["round_elongation_min"]) or (
                m.circularity is not None and m.circularity < sh["round_circularity_min"]
            ):
                problems.add("shape_contradiction")
        if "elongated" in said and "round" not in said and m.elongation is not None and m.elongation > sh["elongated_elongation_max"]:
            problems.add("shape_contradiction")
        if "irregular" in said and "smooth" not in said and m.solidity is not None and m.circularity is not None:
            if m.solidity > sh["irregular_solidity_min"] and m.circularity > sh["irregular_circularity_min"]:
                problems.add("shape_contradiction")
        if "smooth" in said and "irregular" not in said and m.solidity is not None and m.solidity < sh["smooth_solidity_max"]:
            problems.add("shape_contradiction")
    return sorted(problems)


@lru_cache(maxsize=16)
def _degree_scanner(degree_words: tuple[str, ...], contrast_patterns: tuple[str, ...]) -> re.Pattern[str]:
    words = "|".join(re.escape(w) for w in degree_words)
    return re.compile(r"\b(?:" + words + r")\s+(?:" + "|".join(f"(?:{p})" for p in contrast_patterns) + r")", re.I)


def _degrees_said(view: CaptionView, sentence: str, negator: re.Pattern[str]) -> set[str]:
    """Degrees ("slight" | "marked") stated directly before a darker/brighter word of the sentence."""
    contrast = tuple(p for key in ("darker", "brighter") for p in view.lex["appearance"][key])
    out = set()
    for degree, words in view.lex["contrast_degrees"].items():
        for x in _degree_scanner(tuple(words), contrast).finditer(sentence):
            if not negator.search(sentence[max(0, x.start() - 25) : x.start()]):
                out.add(degree)
    return out


def _degree_wrong(degree: str, contrast: float, visible: float | None, th: dict) -> bool:
    if degree == "slight":
        return abs(contrast) >= th["slight_contrast_max"] or (visible is not None and visible >= th["slight_michelson_max"])
    return abs(contrast) < th["marked_contrast_min"] and (visible is None or visible < th["marked_michelson_min"])


def _colour_problems(said: set[str], m, th: dict) -> set[str]:
    """Colour words (colour sources) against the saturation and hue differences to the ring."""
    out: set[str] = set()
    deeper, paler = "deeper_colour" in said, "paler_colour" in said
    achromatic = m.unmeasured.get("saturation_delta") == "achromatic"
    if (deeper or paler) and achromatic:
        out.add("appearance_contradiction")
    if m.saturation_delta is not None and deeper != paler:
        if (deeper and m.saturation_delta < -th["colour_saturation_abs"]) or (paler and m.saturation_delta > th["colour_saturation_abs"]):
            out.add("appearance_contradiction")
    if "hue_differs" in said:
        if m.unmeasured.get("hue_delta") == "achromatic" or (m.hue_delta is not None and abs(m.hue_delta) < th["hue_differs_min"]):
            out.add("appearance_contradiction")
    return out


def _colour_name_wrong(clause: str, m, th: dict, about_surroundings: bool) -> bool:
    """A stated colour name that fits neither the ROI's mean colour nor, in a clause about the
    surroundings, the ring's."""
    stated = stated_colour_groups(clause)
    colours = [c for c in (m.rgb_mean, m.ring_rgb_mean if about_surroundings else None) if c is not None]
    if not stated or not colours:
        return False
    tol = (th["colour_name_hue_tol"], th["colour_name_level_tol"])
    fitting: dict[int, bool] = {}
    for entry, group in stated:  # a compound ("reddish-brown") fits when any of its names does
        fitting[group] = fitting.get(group, False) or any(fits(entry, c, *tol) for c in colours)
    return not all(fitting.values())
