"""Checks of a written description against the structured record it was written from.

`check_caption(text, sections, facts, config)` extracts the claims a caption makes and verifies
each against the typed facts (`CaptionFacts`: modality, organs, ROI label, findings, grid
position and display frame, measurements, spacing). It returns problem codes (empty list =
passes); docs/record_schema.md documents every code. Word lists are in ``lexicon.yaml`` and
tolerance bands in ``thresholds.yaml`` next to this file (bands wider than the composer's own
wording thresholds, so a caption written from the facts never fails).

==========================  ===============================================================
``refusal``                 the writer declined ("I'm sorry", "I cannot view the image")
``ai_self_reference``       the writer talks about itself ("As a medical AI model, I would...")
``hedging``                 most sentences hedge or defer ("difficult to determine", "clinical
                            correlation is recommended") instead of describing
``forbidden_phrase``        the marking or the inputs (bounding box, mask, annotation, "delineated
                            in green", "inside the green square", "provided knowledge"...)
``repetition``              a sentence said twice or a looping word sequence
``truncated``               the description stops mid-sentence
``missing_modality``        the description never names the image's modality (or a synonym)
``wrong_modality``          another modality named as this image's anywhere (modality section,
                            first sentence, "On this T2-weighted MRI" later on), or a word only
                            another modality uses (hypoechoic on CT, Hounsfield on MRI)
``missing_organ``           names none of the facts' organs / structures
``wrong_organ``             an organ from a body region that cannot be on this image
``missing_roi_label``       does not name the ROI's structure / finding
``wrong_subject``           another structure named as the ROI ("the structure of interest is
                            the spleen" for a liver ROI)
``side_contradiction``      image or patient sides contradict the grid position / patient side
                            (any phrasing: "upper left part", "viewer's right", "left
                            hemiabdomen", "right-sided", "patient's left", quadrants)
``relation_contradiction``  the ROI put on the opposite side of a structure from its recorded
                            direction ("posterior to the aorta" for a ROI anterior to it)
``contact_contradiction``   the ROI said to touch / abut / lie within a structure it does not
                            touch (record `contacts`), or said not to touch one it does
``level_contradiction``     a vertebral level the image's labels do not hold ("at the level of
                            L3" on a slice through L2), or a slice level on a non-axial slice
``unsupported_size``        a physical size (mm, cm, cm²) when no pixel spacing is known
``size_contradiction``      a size, area or share of the image far from the measured one
``count_contradiction``     an invented second/other lesion, or a count far from the record
``negated_finding``         a recorded finding denied ("no evidence of X"), or a normal claim
``wrong_finding``           a diagnosis other than the recorded finding(s)
``unsupported_finding``     a diagnosis or imaging feature (wash-out, capsule, calcification,
                            lesion) that no recorded fact or retrieved passage supports
``appearance_contradiction`` darker/brighter, hypo/hyper-*, homogeneous/heterogeneous,
                            well/ill-defined or a mean in HU against the measurements; a
                            comparison with another measured structure ("hypodense relative to
                            the spleen") against both means (compare.py)
``shape_contradiction``     round/elongated/irregular/smooth against the shape measurements
``section_contradiction``   a section disagrees with the description (modality, side, share)
``missing_section:<key>``   a labelled section is empty (when sections are required)
(``judge_disagrees``        added by stages/triplets when the optional judge (``judge.py``) scores
                            a sampled caption below its minimum; not returned here)
``too_short`` / ``too_long`` description word count outside the configured bounds
==========================  ===============================================================
"""

from __future__ import annotations

from medtrinity_assets.records import CaptionFacts

from .appearance import appearance_problems
from .base import (
    CaptionCheckConfig,
    CaptionView,
    compile_patterns,
    find_any,
    load_lexicon,
    load_thresholds,
    sentences,
    word_count,
)
from .claims import (
    count_problems,
    foreign_modality,
    modality_claims,
    modality_problems,
    organ_problems,
    size_problems,
    wrong_subject,
)
from .compare import comparison_problems
from .hu import hu_problems
from .findings import FindingFacts, finding_problems
from .levels import level_problems
from .relations import contact_problems, relation_problems
from .sides import image_sides, patient_sides, side_contradiction, strip_names
from .style import ai_self_reference, hedging, repetition, section_contradiction, truncated
from ..sections import SECTION_KEYS

#: every code `check_caption` can return (``missing_section:<key>`` once per section key)
PROBLEM_CODES: tuple[str, ...] = (
    "refusal",
    "ai_self_reference",
    "hedging",
    "forbidden_phrase",
    "repetition",
    "truncated",
    "missing_modality",
    "wrong_modality",
    "missing_organ",
    "wrong_organ",
    "missing_roi_label",
    "wrong_subject",
    "side_contradiction",
    "relation_contradiction",
    "contact_contradiction",
    "level_contradiction",
    "unsupported_size",
    "size_contradiction",
    "count_contradiction",
    "negated_finding",
    "wrong_finding",
    "unsupported_finding",
    "appearance_contradiction",
    "shape_contradiction",
    "section_contradiction",
    *[f"missing_section:{k}" for k in SECTION_KEYS],
    "too_short",
    "too_long",
)

DEFAULT_CONFIG = CaptionCheckConfig()
#: the default refusal / forbidden patterns (lexicon.yaml), for writers that avoid them up front
REFUSAL_PATTERNS: tuple[str, ...] = DEFAULT_CONFIG.refusal_patterns
FORBIDDEN_PATTERNS: tuple[str, ...] = DEFAULT_CONFIG.forbidden_patterns


def check_caption(
    text: str, sections: dict[str, str], facts: CaptionFacts, config: CaptionCheckConfig | None = None
) -> list[str]:
    """Problem codes for a description and its sections (see the module table); ``[]`` = passes."""
    config = config or DEFAULT_CONFIG
    sections = sections or {}
    view = CaptionView(text, sections, facts, config)
    texts = view.texts
    text_checks = (  # (code, found), in the order the codes are listed
        ("refusal", lambda: find_any(compile_patterns(config.refusal_patterns), texts)),
        ("ai_self_reference", lambda: ai_self_reference(view)),
        ("hedging", lambda: hedging(view)),
        ("forbidden_phrase", lambda: find_any(compile_patterns(config.forbidden_patterns), texts)),
        ("repetition", lambda: repetition(view)),
        ("truncated", lambda: truncated(view)),
    )
    problems = [code for code, found in text_checks if found()]
    problems += modality_problems(view.text, view.sections, facts)
    if "wrong_modality" not in problems and foreign_modality(view):
        problems.append("wrong_modality")
    problems += organ_problems(view)
    if wrong_subject(view):
        problems.append("wrong_subject")
    # each text on its own, and each sentence about the ROI alone (a text may name both sides)
    own = view.roi_clauses
    if view.roi and side_contradiction([view.sections.get("roi", ""), view.text], facts, view.structure_names, own):
        problems.append("side_contradiction")
    problems += relation_problems(view)
    problems += contact_problems(view)
    problems += level_problems(view)
    problems += size_problems(view)
    findings = FindingFacts(view)
    if count_problems(view, findings.recorded):
        problems.append("count_contradiction")
    problems += finding_problems(view)
    problems += appearance_problems(view)
    for numbers_and_neighbours in (hu_problems, comparison_problems):  # one appearance_contradiction is enough
        if "appearance_contradiction" not in problems:
            problems += numbers_and_neighbours(view)
    if section_contradiction(view):
        problems.append("section_contradiction")
    if config.require_sections:
        problems += [f"missing_section:{k}" for k in SECTION_KEYS if not (sections.get(k) or "").strip()]
    n = word_count(text)
    if n < (config.min_words if view.roi else min(config.min_words, config.min_words_whole_image)):
        problems.append("too_short")
    elif n > config.max_words:
        problems.append("too_long")
    return problems


__all__ = [
    "DEFAULT_CONFIG",
    "FORBIDDEN_PATTERNS",
    "REFUSAL_PATTERNS",
    "compile_patterns",
    "PROBLEM_CODES",
    "CaptionCheckConfig",
    "check_caption",
    "image_sides",
    "load_lexicon",
    "load_thresholds",
    "modality_claims",
    "modality_problems",
    "patient_sides",
    "sentences",
    "strip_names",
    "word_count",
]
