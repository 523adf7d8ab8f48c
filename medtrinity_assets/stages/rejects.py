"""Rejects of every stage, gathered per source: what could not be read or grounded, and why."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from medtrinity_assets.schema import REJECTS_SCHEMA
from medtrinity_assets.stages.common import rejects_key

REJECTING_STAGES = ("images", "roi_masks")


def collect_rejects(storage, sources: Iterable[str], shards: Iterable[str], stages: Iterable[str] = REJECTING_STAGES) -> pl.DataFrame:
    """Every rejects row the stages wrote for these sources and shards (missing files: none yet)."""
    frames = []
    wanted = {rejects_key(stage, source, shard) for stage in stages for source in sources for shard in shards}
    for stage in stages:
        for key in storage.list_keys(f"rejects/{stage}/"):  # one listing per stage, not a lookup per shard
            if key in wanted:
                frames.append(storage.read_parquet(key))
    if not frames:
        return pl.DataFrame(schema=REJECTS_SCHEMA)
    return pl.concat([f.select(list(REJECTS_SCHEMA)) for f in frames], how="vertical_relaxed").sort("dataset", "shard", "stage", "item_id")


def rejects_by_source(rejects: pl.DataFrame, sources: Iterable[str]) -> dict[str, int]:
    """Number of rejects per source, every source listed (0 when none)."""
    counts = dict(rejects.group_by("dataset").len().iter_rows()) if rejects.height else {}
    return {s: int(counts.get(s, 0)) for s in sources}
