"""The seed captions as a fine-tuning set in LLaVA conversation format (the paper's stage 1 output).

Under ``finetune/seed_llava/`` in storage:

- ``llava_seed.json``: a JSON list, one entry per checked seed caption::

      {"id": <roi_id>, "image": "images/<sha256>.png",
       "conversations": [{"from": "human", "value": "<image>\\n" + <the captioner's prompt>},
                         {"from": "gpt", "value": <the five sections and the description>}],
       "provenance": {...}}

  The human turn is the exact prompt caption_batches sends for that record (same builder, same
  ``prompt_version``; its hash is the record's ``prompt_hash``); the answer is in the format that
  prompt asks for (`format_sections`), so the fine-tuned model answers in what the parser reads back.
- ``images/``: the overlays the seed model saw (ROI outlined), named by content hash;
- ``export_info.json``: prompt version, seed model, counts (exported, quarantined and excluded per reason).

Files of an earlier export that are not part of this one are removed. Quarantined seed captions
are never exported; they are counted.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from medtrinity_assets.captions import PROMPT_VERSION
from medtrinity_assets.captions.sections import SECTION_KEYS, format_sections
from medtrinity_assets.schema import SEED_FINETUNE_SCHEMA, conform

from .llava import conversation

FINETUNE_PREFIX = "finetune/seed_llava"
CONVERSATIONS_FILE = "llava_seed.json"
INFO_FILE = "export_info.json"
IMAGE_TOKEN = "<image>"
IO_THREADS = 16  # overlay copies in flight (S3 round trips)


@dataclass
class FinetuneExport:
    rows: pl.DataFrame  # SEED_FINETUNE_SCHEMA, one per exported conversation
    entries: list[dict]
    excluded: dict[str, int] = field(default_factory=dict)  # quarantine reason -> records (a record counts under each)
    n_excluded: int = 0
    uri: str = ""
    prompt_versions: list[str] = field(default_factory=list)


def answer_of(row: dict) -> str:
    """The training answer: the five sections and the description, in the prompt's output format."""
    return format_sections({k: row.get(f"section_{k}") or "" for k in SECTION_KEYS}, row["caption"])


def provenance_of(row: dict, image_sha256: str, licence: tuple[str, bool] | None = None) -> dict:
    return {
        "roi_id": row["roi_id"],
        "image_id": row["image_id"],
        "dataset": row["dataset"],
        "shard": row["shard"],
        "modality": row["modality"],
        "seed_label": row["seed_label"],
        "overlay_uri": row["overlay_uri"],
        "overlay_sha256": image_sha256,
        "prompt_version": row["prompt_version"],
        "prompt_hash": row["prompt_hash"],
        "backend": row["backend"],
        "model": row["model"],
        "model_version": row["model_version"],
        "generation_settings": json.loads(row["generation_settings"] or "{}"),
        "passage_ids": list(row["passage_ids"] or []),
        "concept_ids": list(row["concept_ids"] or []),
        "licence": licence[0] if licence else "",
        "redistributable": licence[1] if licence else None,
    }


def copy_image(storage, uri: str, prefix: str) -> str:
    """Copy an overlay into the export under its content hash (kept when already there); its sha256."""
    png = storage.read_uri(uri)
    sha = hashlib.sha256(png).hexdigest()
    key = f"{prefix}/images/{sha}.png"
    if not storage.exists(key):
        storage.write_bytes(key, png)
    return sha


def build_finetune_set(
    storage, seed_captions: pl.DataFrame, licences: dict[str, tuple[str, bool]] | None = None, prefix: str = FINETUNE_PREFIX
) -> FinetuneExport:
    """Write the LLaVA conversation set of the checked seed captions; quarantined ones are counted.
    `licences`: source -> (licence, redistributable), recorded per row (the set is for training; a
    release decides what may be shared)."""
    kept = seed_captions.filter(~pl.col("quarantined")).sort("roi_id")
    dropped = seed_captions.filter(pl.col("quarantined"))
    excluded: dict[str, int] = {}
    for reasons in dropped["quarantine_reasons"].to_list():
        for reason in reasons or ["unspecified"]:
            excluded[reason] = excluded.get(reason, 0) + 1
    records = list(kept.iter_rows(named=True))
    with ThreadPoolExecutor(max_workers=IO_THREADS) as pool:
        shas = list(pool.map(lambda r: copy_image(storage, r["overlay_uri"], prefix), records))
    entries, rows = [], []
    written = {f"{prefix}/images/{sha}.png" for sha in shas}
    for r, sha in zip(records, shas, strict=True):
        image = f"images/{sha}.png"
        entries.append(conversation(r["roi_id"], image, r["prompt"], answer_of(r), provenance=provenance_of(r, sha, (licences or {}).get(r["dataset"]))))
        rows.append(
            {
                "id": r["roi_id"],
                "image": image,
                "image_sha256": sha,
                **{k: r[k] for k in ("dataset", "shard", "modality", "seed_label", "overlay_uri", "prompt_version", "prompt_hash", "backend", "model", "model_version")},
            }
        )
    versions = sorted(set(kept["prompt_version"].to_list()))
    info = {
        "format": "llava_conversations",
        "conversations_file": CONVERSATIONS_FILE,
        "image_folder": ".",
        "prompt_version": versions[0] if len(versions) == 1 else (versions or ""),  # a list only if the seed mixes versions
        "current_prompt_version": PROMPT_VERSION,
        "seed_models": sorted(set(kept["model"].to_list())),
        "exported": len(entries),
        "quarantined_excluded": dropped.height,
        "excluded_per_reason": dict(sorted(excluded.items())),
    }
    for name, payload in ((CONVERSATIONS_FILE, entries), (INFO_FILE, info)):
        key = f"{prefix}/{name}"
        storage.write_bytes(key, json.dumps(payload, indent=1, ensure_ascii=False).encode("utf-8"))
        written.add(key)
    for key in storage.list_keys(f"{prefix}/"):
        if key not in written:
            storage.delete(key)  # an earlier export's files (records no longer in the seed)
    return FinetuneExport(
        rows=conform(rows, SEED_FINETUNE_SCHEMA),
        entries=entries,
        excluded=dict(sorted(excluded.items())),
        n_excluded=dropped.height,
        uri=storage.uri(prefix),
        prompt_versions=versions,
    )


def read_finetune_set(storage, prefix: str = FINETUNE_PREFIX) -> list[dict]:
    """The conversations of the export (for checks and tests)."""
    return json.loads(storage.read_bytes(f"{prefix}/{CONVERSATIONS_FILE}"))


def human_prompt(entry: dict) -> str:
    """The prompt of a conversation's human turn, without the image token line."""
    value = entry["conversations"][0]["value"]
    return value[len(IMAGE_TOKEN) + 1 :] if value.startswith(IMAGE_TOKEN + "\n") else value
