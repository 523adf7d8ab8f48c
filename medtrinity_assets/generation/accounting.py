"""Totals of a captions frame for asset metadata: what was paid, what came from the cache, and
what a full run would cost at the measured rate."""

from __future__ import annotations

import polars as pl

FULL_RUN_CAPTIONS = 25_000_000  # MedTrinity-25M


def totals(df: pl.DataFrame, gpu_hour_usd: float = 0.0, full_run: int = FULL_RUN_CAPTIONS) -> dict[str, float | int]:
    """Counts and rates over a captions frame (columns tokens_in/out, seconds, model_calls, cache_hit).

    Rates use only captions the model was paid for (``cache_hit`` false): ``seconds_per_caption``
    is model time per caption, ``gpu_hours_per_1k`` and ``projected_gpu_hours_full_run`` scale it
    (one model replica's time; served runs measure wall time per concurrency wave)."""
    if df.is_empty():
        return {"captions": 0, "model_calls": 0, "cache_hits": 0}
    paid = df.filter(~pl.col("cache_hit"))
    seconds = float(paid["seconds"].sum()) if paid.height else 0.0
    per = seconds / paid.height if paid.height else 0.0
    out: dict[str, float | int] = {
        "captions": df.height,
        "model_calls": int(df["model_calls"].sum()),
        "cache_hits": int(df["cache_hit"].sum()),
        "attempts": int(df["attempts"].sum()),
        "tokens_in_paid": int(paid["tokens_in"].sum()) if paid.height else 0,
        "tokens_out_paid": int(paid["tokens_out"].sum()) if paid.height else 0,
        "model_seconds_paid": round(seconds, 3),
        "seconds_per_caption": round(per, 4),
        "gpu_hours_per_1k": round(per * 1000 / 3600, 5),
        "projected_gpu_hours_full_run": round(per * full_run / 3600, 1),
    }
    if gpu_hour_usd > 0:
        out["usd_per_1k"] = round(per * 1000 / 3600 * gpu_hour_usd, 4)
    return out
