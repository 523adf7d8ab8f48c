"""The optional judge: a second model scores a sample of captions for faithfulness to the facts.

- `judged(record_id, percent)`: whether a record is in the sample (stable: a hash of its id);
- `judge_prompt(facts, caption)`: the typed facts as a list, the caption, and the answer format
  (one JSON object ``{"score": 0..1, "reason": "..."}``);
- `parse_judgement(text)`: the score and the reason from the judge's answer (None when it gave none).

A score below the configured minimum is a disagreement: the record is quarantined with the code
``judge_disagrees`` and the judge's reason is kept in the ``judge_reason`` column.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from medtrinity_assets.grid import position_grid
from medtrinity_assets.records import CaptionFacts

from ..facts_text import comparison_lines
from ..labels import is_parts, slice_levels
from ..vocab import label_text
from .sides import image_side_facts, patient_side_fact

JUDGE_PROMPT_VERSION = "judge-1"
DISAGREES = "judge_disagrees"


@dataclass(frozen=True)
class Judgement:
    score: float | None  # 0..1; None: the judge gave no usable score
    reason: str
    model: str = ""


def judged(record_id: str, percent: int) -> bool:
    """Whether the record is in a `percent` % sample (the same records for the same ids)."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{JUDGE_PROMPT_VERSION}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def _fmt(value: float | None, unit: str = "") -> str:
    return "unknown" if value is None else f"{value:.3g}{unit}"


def grid_cell_text(row: int, col: int) -> str:
    """``grid row 1, column 3 of 5 (0 = top / left)`` (rows and columns counted apart when they differ)."""
    g = position_grid()
    size = f"row {row}, column {col} of {g.n_rows}" if g.n_rows == g.n_cols else f"row {row} of {g.n_rows}, column {col} of {g.n_cols}"
    return f"grid {size} (0 = top / left)"


def fact_lines(facts: CaptionFacts) -> list[str]:
    """The facts a faithful caption may state, one per line."""
    lines = [f"modality: {facts.modality}", f"organs / body region: {', '.join(label_text(o) for o in facts.organs) or 'not recorded'}"]
    if facts.roi_label:
        lines.append(f"region of interest (the subject): {label_text(facts.roi_label)}")
        vertical, horizontal = image_side_facts(facts)
        grid = f"{grid_cell_text(facts.position.row, facts.position.col)}; " if facts.position else ""
        lines.append(f"position in the image: {grid}vertical {vertical}, horizontal {horizontal}")
        side = patient_side_fact(facts)
        lines.append(f"patient side: {side or 'no side may be claimed'}")
        if facts.roi_area_frac is not None:
            lines.append(f"share of the image: {100 * facts.roi_area_frac:.2g}%")
    else:
        lines.append("region of interest: none (the whole image is described)")
    findings = [label_text(x) for x in facts.image_labels if x]
    lines.append(f"recorded findings: {', '.join(findings) if findings else 'none recorded (no diagnosis may be stated)'}")
    others = [label_text(x) for x in facts.other_rois if x]
    if others:
        lines.append(f"other structures on the image: {', '.join(dict.fromkeys(others))}")
    if facts.roi_label and facts.contacts is not None:  # complete: no other contact may be claimed
        touching = [("another " if x == facts.roi_label else "") + label_text(x) for x in facts.contacts]
        lines.append(f"structures it touches: {', '.join(touching) if touching else 'none (no contact may be claimed)'}")
    levels = slice_levels(facts)
    if levels:
        lines.append(f"spinal level of this axial slice: {', '.join(levels)} (from the vertebra labels on it)")
    lines += [f"compared with a neighbouring structure: {line.removeprefix('- vs ')}" for line in comparison_lines(facts)]
    m = facts.measurements
    spacing = facts.spacing_mm or (facts.frame.spacing_rc if facts.frame else None)
    if not spacing:
        lines.append("pixel spacing: unknown (no size in mm or cm can be known)")
    if m is not None:
        count = f"separate parts of this one structure on the image {m.label_count}" if is_parts(m, facts.roi_label or "") else f"instances of this label on the image {m.label_count or 1}"
        lines.append(
            f"measured: contrast vs surrounding ring {_fmt(m.contrast)} (negative = darker), mean {_fmt(m.mean)} {m.intensity_unit or ''}, "
            f"std {_fmt(m.std)}, margin sharpness {_fmt(m.margin_sharpness)}, circularity {_fmt(m.circularity)}, "
            f"elongation {_fmt(m.elongation)} (1 = round), solidity {_fmt(m.solidity)}, equivalent diameter "
            f"{_fmt(m.equivalent_diameter_mm, ' mm')}, {count}"
        )
    return lines


def judge_prompt(facts: CaptionFacts, caption: str) -> str:
    facts_text = "\n".join(f"- {line}" for line in fact_lines(facts))
    return (
        "You check a medical image description against the facts recorded for the image. Judge only "
        "faithfulness: does every statement about this image agree with the facts (modality, subject, "
        "sides, size, findings, appearance)? General medical background is allowed.\n\n"
        f"Facts:\n{facts_text}\n\nDescription:\n<<<\n{caption.strip()}\n>>>\n\n"
        'Answer with one line of JSON only: {"score": <number from 0 to 1, 1 = fully faithful>, '
        '"reason": "<the first statement that disagrees with the facts, or \\"consistent\\">"}'
    )


_JSON = re.compile(r"\{[^{}]*\}", re.S)
_SCORE = re.compile(r"score\W{0,5}(?P<n>[01](?:\.\d+)?)", re.I)


def parse_judgement(text: str, model: str = "") -> Judgement:
    """The judge's score (clamped to 0..1) and reason; score None when the answer has none."""
    for block in _JSON.findall(text or ""):
        try:
            data = json.loads(block)
        except ValueError:
            continue
        if isinstance(data, dict) and "score" in data:
            try:
                score = min(max(float(data["score"]), 0.0), 1.0)
            except (TypeError, ValueError):
                continue
            return Judgement(score, str(data.get("reason") or "")[:500], model)
    m = _SCORE.search(text or "")
    if m:
        return Judgement(float(m.group("n")), (text or "").strip()[:500], model)
    return Judgement(None, "judge_unparseable: " + (text or "").strip()[:200], model)
