"""LLaVA-style conversation JSON: image + instruction/response turns, paths relative to the release.

Caption records: the image is the ROI overlay (the region's contour is the visual prompt) and the
instruction asks for a description of the outlined region; whole-image records use the clean image
and ask for the image. The response is the multigranular caption. VQA pairs become one
single-turn conversation each.
"""

from __future__ import annotations

import hashlib

import polars as pl

ROI_INSTRUCTIONS: tuple[str, ...] = (
    "Describe the region outlined in this image: the imaging modality, the organs shown, where the region lies and how it looks, its texture, and how it relates to the surrounding structures.",
    "The outlined region is the region of interest. Write a detailed description of this medical image, covering modality, anatomy, the region's location and appearance, and its relation to nearby structures.",
    "Give a multigranular description of this image, focusing on the structure marked by the contour.",
    "What does this image show? Describe the modality, the organs and the outlined region in detail.",
)

WHOLE_IMAGE_INSTRUCTIONS: tuple[str, ...] = (
    "Describe this medical image in detail: the imaging modality, the organs or tissue shown, and what can be seen.",
    "Write a detailed description of this image, covering the modality, the anatomy and its appearance.",
    "What does this medical image show? Describe it in detail.",
)


def pick(options: tuple[str, ...], key: str) -> str:
    """A template chosen by a stable hash of `key` (same record, same instruction)."""
    return options[int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % len(options)]


def conversation(entry_id: str, image: str, instruction: str, response: str, **extra) -> dict:
    return {
        "id": entry_id,
        "image": image,
        "conversations": [
            {"from": "human", "value": f"<image>\n{instruction}"},
            {"from": "gpt", "value": response},
        ],
        **extra,
    }


def caption_conversations(records: pl.DataFrame) -> list[dict]:
    """One conversation per release record."""
    out = []
    for r in records.iter_rows(named=True):
        whole = r["roi_origin"] == "none"
        instruction = pick(WHOLE_IMAGE_INSTRUCTIONS if whole else ROI_INSTRUCTIONS, r["sample_id"])
        out.append(conversation(r["sample_id"], r["image"] if whole else r["overlay"], instruction, r["caption"]))
    return out


def vqa_conversations(pairs: pl.DataFrame) -> list[dict]:
    """One conversation per question–answer pair (answer type and category kept as extra keys)."""
    return [
        conversation(p["qa_id"], p["image"], p["question"], p["answer"], answer_type=p["answer_type"], category=p["category"])
        for p in pairs.iter_rows(named=True)
    ]
