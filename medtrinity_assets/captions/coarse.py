"""Coarse caption: one deterministic sentence from metadata only."""

from __future__ import annotations

from .vocab import join_words, label_text, modality_names, unique


def coarse_caption(modality: str, organs: list[str], image_labels: list[str], roi_labels: list[str]) -> str:
    """``"CT image of the abdomen showing liver, spleen and aorta, with findings: cyst."``

    Modality codes are spelled out (``MR`` -> ``MRI``, ``DX`` -> ``X-ray``); labels are
    de-duplicated in order and made readable (``heart_atrium_left`` -> ``left heart atrium``).
    """
    short, _ = modality_names(modality)
    head = f"{short} image" if (modality or "").strip() else "Medical image"
    organ_words = [label_text(o) for o in unique(organs or [])]
    rois = [label_text(r) for r in unique(roi_labels or [])]
    findings = [label_text(x) for x in unique(image_labels or [])]
    text = head
    if organ_words:
        text += f" of the {join_words(organ_words)}"
    if rois:
        text += f" showing {join_words(rois)}"
    if findings:
        text += f", with findings: {join_words(findings)}"
    elif not rois:
        text += ", no findings or structures listed"
    return text[:1].upper() + text[1:] + "."
