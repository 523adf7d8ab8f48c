"""Write a release's VQA pairs (``vqa/``): Parquet and LLaVA JSON per split, README, checksums."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from medtrinity_resources.storage import MedtrinityStorage

from .config import SPLITS, ReleaseConfig
from .llava import vqa_conversations
from .release import parquet_bytes
from .verify import read_release_records, verify_checksums
from .schema import VQA_COLUMNS, schema_markdown
from .vqa import vqa_summary
from .vqa_model import derive_vqa
from .writer import ReleaseWriter, release_prefix

VQA_DIR = "vqa/"


@dataclass
class VqaResult:
    pairs: pl.DataFrame
    summary: dict
    generation: dict
    files: dict[str, str]
    uri: str
    problems: list[str]


def vqa_readme(config: ReleaseConfig, summary: dict, generation: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in summary.get("per_category", {}).items())
    return (
        f"# VQA pairs of release `{config.name}`\n\n"
        f"{summary.get('pairs', 0)} question–answer pairs derived from the release's captions, structured fields and pixel measurements "
        f"(generator: `{generation.get('generator')}`). Closed questions: {summary.get('closed_yes', 0)} 'Yes', "
        f"{summary.get('closed_no', 0)} 'No'. Pairs keep their record's split.\n\n"
        "| category | pairs |\n|---|---|\n" + rows + "\n\n"
        "Files: `<split>.parquet` (schema below) and `llava_<split>.json` (LLaVA conversations, image paths relative "
        "to the release root).\n\n" + schema_markdown(VQA_COLUMNS) + "\n"
    )


def build_vqa(storage: MedtrinityStorage, config: ReleaseConfig, mllm) -> VqaResult:
    """Derive pairs from a built release and write them under ``releases/<name>/vqa/``."""
    records = read_release_records(storage, config.name)
    pairs, generation = derive_vqa(records, mllm, config.vqa)
    writer = ReleaseWriter(storage, release_prefix(config.name) + VQA_DIR)
    files = {}
    for split in SPLITS:
        part = pairs.filter(pl.col("split") == split)
        if part.is_empty():
            continue
        files[f"{split}.parquet"] = writer.write(f"{split}.parquet", parquet_bytes(part))
        files[f"llava_{split}.json"] = writer.write_json(f"llava_{split}.json", vqa_conversations(part))
    summary = vqa_summary(pairs)
    writer.write_text("README.md", vqa_readme(config, summary, generation))
    writer.finish()
    _, problems = verify_checksums(storage, writer.prefix)
    return VqaResult(pairs, summary, generation, files, writer.uri(), problems)
