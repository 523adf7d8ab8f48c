"""Counts and distributions of a release, for the dataset card and its figure."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from .splits import split_summary

WHOLE_IMAGE_LABEL = "(whole image)"


def word_counts(texts: list[str]) -> list[int]:
    return [len((t or "").split()) for t in texts]


def quantiles(values: list[float]) -> dict[str, float]:
    """min, p5, median, mean, p95, max (empty: {})."""
    if not values:
        return {}
    s = pl.Series(values, dtype=pl.Float64)
    return {
        "min": float(s.min()),
        "p5": float(s.quantile(0.05, "nearest")),
        "median": float(s.median()),
        "mean": float(s.mean()),
        "p95": float(s.quantile(0.95, "nearest")),
        "max": float(s.max()),
    }


def counts(df: pl.DataFrame, column: str, explode: bool = False, fill: str | None = None) -> list[tuple[str, int]]:
    """(value, records) sorted by count then value; lists exploded when asked; nulls -> `fill`."""
    if df.is_empty():
        return []
    col = df.select(pl.col(column))
    if explode:
        col = col.explode(column)
    if fill is not None:
        col = col.with_columns(pl.col(column).fill_null(fill))
    col = col.drop_nulls()
    grouped = col.group_by(column).len()
    return sorted(((str(v), int(n)) for v, n in grouped.iter_rows()), key=lambda t: (-t[1], t[0]))


def image_counts(df: pl.DataFrame, column: str) -> dict[str, int]:
    """Distinct images per value of `column`."""
    if df.is_empty():
        return {}
    return {str(v): int(n) for v, n in df.group_by(column).agg(pl.col("image_id").n_unique()).iter_rows()}


@dataclass
class ReleaseStatistics:
    records: int
    images: int
    rois: int
    whole_image_records: int
    groups: int
    by_modality: list[tuple[str, int]]
    images_by_modality: dict[str, int]
    by_organ: list[tuple[str, int]]
    by_label: list[tuple[str, int]]
    by_image_label: list[tuple[str, int]]
    by_source: list[tuple[str, int]]
    images_by_source: dict[str, int]
    by_origin: list[tuple[str, int]]
    splits: dict[str, dict[str, int]]
    caption_words: list[int]
    caption_words_summary: dict[str, float]
    roi_area_frac: list[float]
    roi_area_summary: dict[str, float]
    passages_per_record: dict[str, float] = field(default_factory=dict)


def release_statistics(df: pl.DataFrame) -> ReleaseStatistics:
    """Everything the card counts about the released records (`df` in the release schema)."""
    rois = df.filter(pl.col("roi_origin") != "none") if df.height else df
    words = word_counts(df["caption"].to_list()) if df.height else []
    areas = [float(a) for a in rois["area_frac"].drop_nulls().to_list()] if rois.height else []
    image_labels = df.unique("image_id").select("labels") if df.height else pl.DataFrame({"labels": []}, schema={"labels": pl.List(pl.Utf8)})
    n_passages = df["passage_ids"].list.len().cast(pl.Float64).to_list() if df.height else []
    return ReleaseStatistics(
        records=df.height,
        images=df["image_id"].n_unique() if df.height else 0,
        rois=rois.height,
        whole_image_records=df.height - rois.height,
        groups=df["split_group"].n_unique() if df.height else 0,
        by_modality=counts(df, "modality"),
        images_by_modality=image_counts(df, "modality"),
        by_organ=counts(df, "organs", explode=True),
        by_label=counts(df, "roi_label", fill=WHOLE_IMAGE_LABEL),
        by_image_label=counts(image_labels, "labels", explode=True),
        by_source=counts(df, "dataset"),
        images_by_source=image_counts(df, "dataset"),
        by_origin=counts(df, "roi_origin"),
        splits=split_summary(df),
        caption_words=words,
        caption_words_summary=quantiles([float(w) for w in words]),
        roi_area_frac=areas,
        roi_area_summary=quantiles(areas),
        passages_per_record=quantiles(n_passages),
    )
