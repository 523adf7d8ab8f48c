"""Materialisation metadata shared by the assets: counts, rejects, throughput, previews."""


import polars as pl
from dagster import MetadataValue

from medtrinity_assets.generation import totals
from medtrinity_assets.stages.common import rejects_key, thumbnail_markdown


def table_md(df: pl.DataFrame, max_rows: int = 10) -> MetadataValue:
    if df.is_empty():
        return MetadataValue.md("_none_")
    head = df.head(max_rows)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join(str(v).replace("|", "/")[:120] for v in row) + " |")
    if df.height > max_rows:
        lines.append(f"\n… {df.height - max_rows} more rows")
    return MetadataValue.md("\n".join(lines))


def write_rejects(storage, stage: str, dataset: str, shard: str, rejects: pl.DataFrame) -> dict:
    """Persist a shard's rejects (an empty file too, so reruns overwrite stale rejects)."""
    key = storage.write_parquet(rejects_key(stage, dataset, shard), rejects)
    md = {"rejects": MetadataValue.int(rejects.height), "rejects_uri": MetadataValue.path(storage.uri(key))}
    if rejects.height:
        md["rejects_table"] = table_md(rejects.select("item_id", "source_file", "reason", "detail"))
    return md


def throughput(n: int, seconds: float, unit: str) -> dict:
    rate = n / seconds if seconds > 0 else 0.0
    return {f"{unit}_per_s": MetadataValue.float(round(rate, 2)), "seconds": MetadataValue.float(round(seconds, 3))}


def generation_totals(captions: pl.DataFrame, gpu_hour_usd: float) -> dict:
    """`generation.totals` of a captions frame (counts, paid tokens and time, cost rates) as metadata."""
    return {k: (MetadataValue.int(v) if isinstance(v, int) else MetadataValue.float(v)) for k, v in totals(captions, gpu_hour_usd).items()}


def preview(storage, uri: str | None, alt: str) -> dict:
    if not uri:
        return {}
    try:
        return {"preview": MetadataValue.md(thumbnail_markdown(storage.read_uri(uri), alt=alt))}
    except Exception:  # a preview must never fail a materialisation
        return {}
