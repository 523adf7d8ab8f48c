"""The model path of the VQA step: a multimodal LLM writes question–answer pairs as JSON from a
record's verified caption and facts (`MLLMResource.describe_text`); each pair is parsed and checked
against the record (`validate_pair`), and a record left with no valid pair gets the rule pairs
(vqa.py). `derive_vqa` chooses the path from the caption backend.
"""

from __future__ import annotations

import json
import re

import polars as pl

from medtrinity_assets.captions.vocab import modality_families, modality_mentions, parse_position_words
from medtrinity_assets.grid import position_grid

from .config import VqaSettings
from .schema import VQA_SCHEMA
from .vqa import (
    ANSWER_TYPES,
    CATEGORIES,
    MAX_OPEN_ANSWER_WORDS,
    QA,
    VQA_RULES_VERSION,
    VqaTarget,
    allowed_families,
    grid_cell_of,
    labels_by_dataset,
    pair_rows,
    rule_based_pairs,
    rule_pairs_for,
    vqa_targets,
)
from .vqa_looks import image_contexts, outlined_name


def vqa_prompt(target: VqaTarget) -> str:
    """Text prompt asking a model for question–answer pairs about one record, as a JSON array."""
    r = target.record
    scope = []
    if target.image_level:
        scope.append("the image's modality, the organs shown and any reported finding")
    if target.roi_level:
        scope.append(f"the outlined region ({outlined_name(r).text}): what it is, where it lies and how large it is")
    facts = {
        "modality": r.get("modality"),
        "organs": list(r.get("organs") or []),
        "image_labels": list(r.get("labels") or []),
        "roi_label": r.get("roi_label") if target.roi_level else None,
        "roi_position_in_image": r.get("position") if target.roi_level else None,
        "roi_area_fraction": r.get("area_frac") if target.roi_level else None,
    }
    return (
        "You write visual question answering pairs for a medical image from its verified description.\n"
        f"Facts (JSON): {json.dumps(facts, ensure_ascii=False)}\n"
        f"Description: {r.get('caption') or ''}\n\n"
        f"Write 3 to 6 questions about {' and '.join(scope)}. Use only the facts and the description; left/right mean image "
        "sides. Mix closed questions (answer exactly 'Yes' or 'No') and open questions (short answers).\n"
        'Answer with a JSON array only, each item {"question": "...", "answer": "...", "answer_type": "closed" | "open", '
        '"category": "modality" | "organ" | "location" | "finding" | "size"}.'
    )


def parse_vqa_answer(text: str) -> list[dict]:
    """The JSON array in a model answer (code fences and text around it tolerated); [] when none."""
    m = re.search(r"\[.*\]", text or "", re.S)
    if not m:
        return []
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _contradicts_modality(text: str, modality: str) -> bool:
    named = modality_mentions(text)
    return bool(modality_families(modality)) and bool(named - allowed_families(modality))


def validate_pair(item: dict, r: dict, roi_level: bool) -> QA | None:
    """A well-formed pair consistent with the record, or None."""
    q = str(item.get("question") or "").strip()
    a = str(item.get("answer") or "").strip()
    kind = str(item.get("answer_type") or "").strip().lower()
    cat = str(item.get("category") or "").strip().lower()
    if not q.endswith("?") or not a or kind not in ANSWER_TYPES or cat not in CATEGORIES:
        return None
    if kind == "closed":
        if a.lower().rstrip(".") not in ("yes", "no"):
            return None
        a = a.lower().rstrip(".").capitalize()
    elif len(a.split()) > MAX_OPEN_ANSWER_WORDS:
        return None
    if cat in ("location", "size") and not roi_level:
        return None
    modality = r.get("modality") or ""
    if cat == "modality":
        if kind == "open" and _contradicts_modality(a, modality):
            return None
        if kind == "closed":
            asked = modality_mentions(q)
            own = modality_families(modality)
            if own and asked:
                fits = bool(asked & allowed_families(modality))
                if (a == "Yes") != fits:
                    return None
    if cat == "location" and kind == "open" and roi_level:
        said, cell = parse_position_words(a), grid_cell_of(r)
        if cell is not None:
            truth = position_grid().named_sides(*cell)
            for got, want in ((said.vertical, truth[0]), (said.horizontal, truth[1])):
                if got in ("left", "right", "upper", "lower") and want is not None and got != want:
                    return None
    return QA(q, a, kind, cat, on_overlay=roi_level and cat in ("location", "finding", "size"))


def mllm_pairs(records: pl.DataFrame, mllm, settings: VqaSettings) -> tuple[pl.DataFrame, dict]:
    """Pairs written by a model through `mllm.describe_text`; rule pairs where a record got none."""
    targets = vqa_targets(records, settings)
    others, contexts = labels_by_dataset(records), image_contexts(records)
    answers = mllm.describe_text([vqa_prompt(t) for t in targets]) if targets else []
    generator = f"mllm:{mllm.backend}:{mllm.model_name or mllm.model_path or 'default'}"
    rows: list[dict] = []
    stats = {"targets": len(targets), "model_pairs": 0, "invalid_pairs": 0, "fallback_targets": 0}
    for t, text in zip(targets, answers, strict=True):
        items = parse_vqa_answer(text)
        valid = [qa for qa in (validate_pair(i, t.record, t.roi_level) for i in items) if qa is not None]
        stats["invalid_pairs"] += len(items) - len(valid)
        if valid:
            stats["model_pairs"] += len(valid)
            rows += pair_rows(t, valid, generator)
        else:
            stats["fallback_targets"] += 1
            pairs = rule_pairs_for(t, others.get(t.record["dataset"], []), settings, contexts.get(t.record["image_id"]))
            rows += pair_rows(t, pairs, f"rules:{VQA_RULES_VERSION}")
    df = pl.DataFrame(rows, schema=VQA_SCHEMA) if rows else pl.DataFrame(schema=VQA_SCHEMA)
    return df, stats


def derive_vqa(records: pl.DataFrame, mllm, settings: VqaSettings) -> tuple[pl.DataFrame, dict]:
    """Rule pairs for the grounded composer (or no resource), model pairs for model backends."""
    if mllm is None or getattr(mllm, "backend", "grounded_composer") == "grounded_composer":
        df = rule_based_pairs(records, settings)
        return df, {"generator": f"rules:{VQA_RULES_VERSION}", "targets": len(vqa_targets(records, settings))}
    df, stats = mllm_pairs(records, mllm, settings)
    return df, {"generator": f"mllm:{mllm.backend}", **stats}
