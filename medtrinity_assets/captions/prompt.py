"""The versioned caption prompt (MedTrinity-25M structure) and its hash.

The prompt has the paper's parts, in order: header fields (coarse caption, specific position,
medical annotation, measured appearance of the region of interest, medical knowledge: the retrieved
passages less the definitions judged wrong, `background.usable_passages`), three
questions (whole image; ROI location and
abnormal appearance; ROI-region relationship), the instruction to integrate the answers into
one description that never mentions the marking, captions or annotations, and an output
format with five labelled sections followed by the description (read back by
`sections.parse_output`). Any change to the text below must bump `PROMPT_VERSION`.
"""

from __future__ import annotations

import hashlib
import re

from medtrinity_assets.records import CaptionFacts, Passage

from .background import usable_passages
from .sections import DESCRIPTION_KEY, SECTION_KEYS, SECTION_TITLES
from .facts_text import comparison_lines, measurement_lines, position_text
from .labels import roi_label_of, roi_name, structure_name
from .vocab import unique

PROMPT_VERSION = "mt-prompt-v9"  # v9: the pieces of a label naming several structures are its members ("one of two costal cartilages"), not parts of one; v8: comparisons only with alike structures (appearance.yaml compare_classes), including unrelated ones of the ROI's class; v7: the spinal level of an axial slice, comparisons with neighbouring structures; v6: definitions judged wrong (wording.yaml definition_skip) are not given

MAX_PASSAGES = 5
PASSAGE_CHARS = 500

_SECTION_HINTS = {
    "modality": "the imaging modality",
    "organs": "the organs and tissues visible",
    "roi": "where the region of interest lies (image position, relative position) and its appearance",
    "texture": "disease-related colour, intensity and texture",
    "relations": "how the region of interest relates to the surrounding organs and regions",
}

_RETRY_REASONS = {
    "refusal": "it declined to describe the image; describe what is visible",
    "forbidden_phrase": (
        "it mentioned the marking, a box, a mask, a caption or the annotation; describe the anatomy directly"
    ),
    "missing_section": "it did not give every labelled section",
    "too_short": "it was too short or empty",
    "ai_self_reference": "it talked about yourself instead of the image; describe only what the image shows",
    "hedging": "it hedged or deferred instead of describing; state what is visible and recorded",
    "repetition": "it repeated itself; say each thing once",
}


def truncate(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (``...`` marks a cut)."""
    flat = re.sub(r"\s+", " ", text or "").strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "..."


def _annotation_line(facts: CaptionFacts) -> str:
    roi = roi_label_of(facts)
    parts = [f"region of interest: {roi_name(roi, facts.measurements).text}" if roi else "region of interest: none"]
    if facts.image_labels:
        parts.append("image-level findings: " + ", ".join(structure_name(x).text for x in unique(facts.image_labels)))
    others = [structure_name(x).text for x in unique(facts.other_rois) if x != roi]
    if others:
        parts.append("other structures marked in the source: " + ", ".join(others))
    return "; ".join(parts)


def _knowledge_lines(passages: list[Passage], max_passages: int, passage_chars: int) -> list[str]:
    if not passages:
        return ["- none retrieved"]
    lines = []
    for p in passages[:max_passages]:
        title = f" {truncate(p.title, 80)}:" if p.title else ""
        lines.append(f"- [{p.chunk_id}]{title} {truncate(p.text, passage_chars)}")
    return lines


def build_prompt(facts: CaptionFacts, *, max_passages: int = MAX_PASSAGES, passage_chars: int = PASSAGE_CHARS) -> str:
    """The caption prompt for one image/ROI (deterministic for given facts)."""
    has_roi = roi_label_of(facts) is not None
    lines = [
        "You are an expert in medical imaging. You are given a medical image"
        + (" in which one region of interest is outlined," if has_roi else ",")
        + " together with information about it.",
        "",
        f"Coarse caption: {facts.coarse_caption.strip() or 'not available'}",
        f"Specific position: {position_text(facts)}",
        f"Medical annotation: {_annotation_line(facts)}",
    ]
    if has_roi:
        lines += [
            "Measured appearance of the region of interest (relative to a ring of surrounding tissue):",
            *measurement_lines(facts.measurements),
        ]
        compared = comparison_lines(facts)
        if compared:
            lines += ["Compared with neighbouring structures (mean against mean):", *compared]
    if facts.orientation:
        lines.append(
            f"Image orientation: {facts.orientation}. Directions such as upper-left refer to the image as displayed."
        )
    lines += ["Medical knowledge:", *_knowledge_lines(usable_passages(facts.knowledge), max_passages, passage_chars), ""]
    lines.append("Answer these questions:")
    if has_roi:
        lines += [
            "1. Describe the whole image in detail: the imaging modality and the organs and tissues it shows.",
            "2. Describe the region of interest: where it is located in the image, its position relative to "
            "nearby structures, and its appearance (shape, size, colour, intensity, texture) as measured above, "
            "relative to the surrounding tissue; make no appearance claim the measurements do not support.",
            "3. Describe the relationship between the region of interest and the surrounding organs and regions.",
        ]
    else:
        lines += [
            "1. Describe the whole image in detail: the imaging modality and the organs and tissues it shows.",
            "2. Describe the most salient structures and where they are located in the image, and any abnormal "
            "appearance (shape, size, colour, intensity, texture).",
            "3. Describe how the visible organs and regions relate to one another.",
        ]
    lines += [
        "",
        "Then integrate the answers into one coherent description of the image. Write as if you observed the "
        "image directly: do not mention the outline, any box or mask, the coarse caption, the annotation or "
        "the provided knowledge, and state only what the image and the information above support. "
        "Use the medical knowledge only where it applies to this image.",
        "",
        "Answer in exactly this format:",
        *[f"{SECTION_TITLES[key]}: <{_SECTION_HINTS[key]}>" for key in SECTION_KEYS],
        f"{SECTION_TITLES[DESCRIPTION_KEY]}: <the integrated description, one paragraph>",
    ]
    return "\n".join(lines)


def retry_prompt(prompt: str, problems: list[str]) -> str:
    """`prompt` plus a deterministic note on why the previous answer was rejected."""
    reasons = unique(_RETRY_REASONS[p.split(":")[0]] for p in problems if p.split(":")[0] in _RETRY_REASONS)
    if not reasons:
        return prompt
    return (
        prompt
        + "\n\nYour previous answer could not be used because "
        + "; ".join(reasons)
        + ". Answer again, following the format exactly."
    )


def prompt_hash(prompt: str) -> str:
    """Short sha256 hex (16 characters) of a prompt."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]
