"""seed_captions: the seed subset described by the strong (seed) model, through the same caption
path as caption_batches (`caption_shard`: prompt, content-addressed call cache, checks, retries).

Each seed record is described with the prompt caption_batches would build for it: the record's
own partition manifests (images, roi_masks, coarse_captions, retrieved_knowledge) are read, kept
to the images that hold a seed record (the other ROIs of an image shape its prompt), and all seed
records go to the model in one `caption_shard` call (one concurrency wave spans partitions).
The exact prompt text is kept with each record (its hash must equal the recorded prompt_hash) for
the fine-tuning export. A record with any problem, an empty caption or a prompt that does not match
is quarantined with its reasons, never dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.captions import build_prompt, prompt_hash
from medtrinity_assets.generation import GenerationSettings
from medtrinity_assets.schema import SEED_CAPTIONS_SCHEMA, conform
from medtrinity_assets.stages.captions import ShardFacts, caption_shard
from medtrinity_assets.stages.seed import read_manifest


class SeedModelError(ValueError):
    """The seed model is not configured well enough to call."""


@dataclass
class SeedCaptionsResult:
    captions: pl.DataFrame  # SEED_CAPTIONS_SCHEMA
    seconds: float

    @property
    def n_quarantined(self) -> int:
        return int(self.captions["quarantined"].sum()) if self.captions.height else 0


def require_seed_model(mllm) -> None:
    """A clear error when the seed model cannot be called (no model, no endpoint or no model name)."""
    if not mllm.calls_model:
        raise SeedModelError(
            "seed_captions needs a model: set MEDTRINITY_SEED_MLLM_BACKEND to 'openai' (default) or 'transformers', "
            "not the grounded composer (its captions are what the default captioner already writes)"
        )
    if mllm.backend == "openai" and not (mllm.endpoint_url and mllm.model_name):
        raise SeedModelError(
            "seed_captions calls a served model: set MEDTRINITY_SEED_MLLM_ENDPOINT (OpenAI-compatible base URL, "
            "e.g. http://vllm:8000/v1) and MEDTRINITY_SEED_MLLM_MODEL (the served model id)"
        )
    if mllm.backend == "transformers" and not mllm.model_path:
        raise SeedModelError("seed_captions with the transformers backend needs MEDTRINITY_SEED_MLLM_MODEL (a local model directory)")


def seed_inputs(seed: pl.DataFrame, storage) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(images, rois, coarse, retrieved)`` of the seed records' partitions, kept to the seed
    records' images (rois) and to the seed records themselves (coarse, retrieved)."""
    parts: dict[str, list[pl.DataFrame]] = {"images": [], "roi_masks": [], "coarse_captions": [], "retrieved_knowledge": []}
    for (dataset, shard), part in seed.group_by(["dataset", "shard"], maintain_order=True):
        ids, image_ids = part["roi_id"], part["image_id"]
        images = read_manifest(storage, "images", dataset, shard)
        parts["images"].append(images.filter(pl.col("image_id").is_in(image_ids.implode())))
        rois = read_manifest(storage, "roi_masks", dataset, shard)
        parts["roi_masks"].append(rois.filter(pl.col("image_id").is_in(image_ids.implode())))
        for asset in ("coarse_captions", "retrieved_knowledge"):
            parts[asset].append(read_manifest(storage, asset, dataset, shard).filter(pl.col("roi_id").is_in(ids.implode())))
    frames = [pl.concat(parts[k], how="vertical_relaxed") for k in ("images", "roi_masks", "coarse_captions", "retrieved_knowledge")]
    missing = set(seed["roi_id"].to_list()) - set(frames[1]["roi_id"].to_list())
    if missing:
        raise FileNotFoundError(f"{len(missing)} seed records are no longer in their roi_masks manifests (e.g. {sorted(missing)[0]}): re-materialise seed_subset")
    return frames[0], frames[1], frames[2], frames[3]


def seed_prompts(images: pl.DataFrame, rois: pl.DataFrame, coarse: pl.DataFrame, retrieved: pl.DataFrame, roi_ids: set[str]) -> dict[str, str]:
    """The prompt text of each seed record, built as `caption_shard` builds it."""
    shard_facts = ShardFacts(images, rois, coarse, retrieved)
    return {r["roi_id"]: build_prompt(shard_facts(r)) for r in rois.iter_rows(named=True) if r["roi_id"] in roi_ids}


def quarantine_reasons(row: dict, prompt: str) -> list[str]:
    reasons = list(row["problems"])
    if not (row["caption"] or "").strip():
        reasons.append("empty_caption")
    if not row["prompt_hash"] or prompt_hash(prompt) != row["prompt_hash"]:
        reasons.append("prompt_mismatch")
    return sorted(set(reasons))


def caption_seed(seed: pl.DataFrame, storage, mllm, settings: GenerationSettings | None = None, use_cache: bool = True) -> SeedCaptionsResult:
    """One caption per seed record by the seed model `mllm`, quarantine flags and the exact prompt."""
    require_seed_model(mllm)
    t0 = time.perf_counter()
    if seed.is_empty():
        return SeedCaptionsResult(conform([], SEED_CAPTIONS_SCHEMA), 0.0)
    images, rois, coarse, retrieved = seed_inputs(seed, storage)
    roi_ids = set(seed["roi_id"].to_list())
    result = caption_shard(images, rois, coarse, retrieved, storage, mllm, settings, use_cache, roi_ids=roi_ids)
    prompts = seed_prompts(images, rois, coarse, retrieved, roi_ids)
    by_seed = {r["roi_id"]: r for r in seed.iter_rows(named=True)}
    overlays = dict(zip(rois["roi_id"].to_list(), rois["overlay_uri"].to_list()))
    rows = []
    for c in result.captions.iter_rows(named=True):
        s, prompt = by_seed[c["roi_id"]], prompts[c["roi_id"]]
        reasons = quarantine_reasons(c, prompt)
        rows.append(
            {
                **c,
                "modality": s["modality"],
                "seed_label": s["seed_label"],
                "overlay_uri": overlays[c["roi_id"]],
                "prompt": prompt,
                "quarantined": bool(reasons),
                "quarantine_reasons": reasons,
            }
        )
    return SeedCaptionsResult(conform(rows, SEED_CAPTIONS_SCHEMA).sort("roi_id"), time.perf_counter() - t0)
