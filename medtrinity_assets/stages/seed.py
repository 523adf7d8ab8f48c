"""seed_subset: a deterministic stratified sample of ROI records across every dataset partition
(the paper's stage 1 picks a seed set that a strong model captions, to fine-tune the local captioner).

A stratum is (source, modality, label): the ROI's label, else the image's recorded labels joined,
else ``none``. Every stratum gets ``min(min_per_stratum, its size)`` records; the rest of the budget
is shared in proportion to what each stratum has left (largest remainder, ties by stratum name).
Within a stratum, records are taken in the order of ``sha256(seed:roi_id)``: the same manifests
and settings give the same subset whatever the order partitions are read in, and a new record
never displaces one already chosen unless it sorts before it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass

import polars as pl

from medtrinity_assets.phi.pixels import QUARANTINED as PHI_QUARANTINED
from medtrinity_assets.schema import SEED_SUBSET_SCHEMA, conform

NO_LABEL = "none"
STRATUM_KEYS = ("dataset", "modality", "seed_label")


@dataclass(frozen=True)
class SeedSampling:
    """How many records to seed with, the floor per stratum, and the sampling seed."""

    size: int = 2000
    min_per_stratum: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.min_per_stratum < 1:
            raise ValueError(f"seed sampling needs size >= 1 and min_per_stratum >= 1 (got {self.size}, {self.min_per_stratum})")


@dataclass
class SeedSample:
    subset: pl.DataFrame  # SEED_SUBSET_SCHEMA
    strata: pl.DataFrame  # dataset, modality, seed_label, available, selected
    available: int
    size_raised: bool  # the floors alone exceeded `size`: coverage won


def seed_label(roi_label: str | None, image_labels: list[str] | None) -> str:
    """The label part of a record's stratum."""
    if roi_label:
        return roi_label
    labels = sorted({x for x in image_labels or [] if x})
    return ",".join(labels) if labels else NO_LABEL


def manifest_partitions(storage, asset: str, datasets: list[str] | None = None) -> list[tuple[str, str]]:
    """``(dataset, shard)`` of every manifest of a dataset x shard asset in storage."""
    out = []
    for key in storage.list_keys(f"manifests/{asset}/"):
        rel = key[len(f"manifests/{asset}/") :]
        if not rel.endswith(".parquet") or rel.count("/") != 1:
            continue
        dataset, shard = rel[: -len(".parquet")].split("/")
        if datasets is None or dataset in datasets:
            out.append((dataset, shard))
    return sorted(out)


def read_manifest(storage, asset: str, dataset: str, shard: str, columns: list[str] | None = None) -> pl.DataFrame:
    """One partition's manifest (only `columns` decoded when given); a clear error when it is missing."""
    key = f"manifests/{asset}/{dataset}/{shard}.parquet"
    if not storage.exists(key):
        raise FileNotFoundError(f"no {asset} manifest for {dataset}|{shard} ({storage.uri(key)}): materialise that partition first")
    return pl.read_parquet(io.BytesIO(storage.read_bytes(key)), columns=columns)


def candidate_records(storage, datasets: list[str] | None = None) -> pl.DataFrame:
    """Every ROI record of every built partition (coarse_captions manifests) with its stratum;
    records of images quarantined for burned-in PHI are left out (their pixels never go to a model)."""
    frames = []
    for dataset, shard in manifest_partitions(storage, "coarse_captions", datasets):
        coarse = read_manifest(storage, "coarse_captions", dataset, shard, ["roi_id", "image_id", "dataset", "shard", "modality", "roi_label", "image_labels"])
        images = read_manifest(storage, "images", dataset, shard, ["image_id", "phi_action"])
        withheld = set(images.filter(pl.col("phi_action") == PHI_QUARANTINED)["image_id"].to_list())
        rows = [
            {
                "roi_id": r["roi_id"],
                "image_id": r["image_id"],
                "dataset": r["dataset"],
                "shard": r["shard"],
                "modality": r["modality"],
                "seed_label": seed_label(r["roi_label"], r["image_labels"]),
            }
            for r in coarse.iter_rows(named=True)
            if r["image_id"] not in withheld
        ]
        if rows:
            frames.append(pl.DataFrame(rows, schema={k: pl.Utf8 for k in rows[0]}))
    if not frames:
        return pl.DataFrame(schema={k: pl.Utf8 for k in ("roi_id", "image_id", "dataset", "shard", "modality", "seed_label")})
    return pl.concat(frames).unique("roi_id", keep="first").sort("roi_id")


def allocate(counts: dict[tuple[str, ...], int], size: int, min_per_stratum: int) -> dict[tuple[str, ...], int]:
    """Records per stratum: the floor for each, the remaining budget in proportion to what is left."""
    quota = {k: min(min_per_stratum, n) for k, n in counts.items()}
    budget = size - sum(quota.values())
    spare = {k: counts[k] - quota[k] for k in counts}
    total_spare = sum(spare.values())
    if budget <= 0 or total_spare == 0:
        return quota
    if total_spare <= budget:
        return dict(counts)
    ideal = {k: budget * s / total_spare for k, s in spare.items()}
    extra = {k: int(v) for k, v in ideal.items()}
    left = budget - sum(extra.values())
    for k in sorted(ideal, key=lambda k: (-(ideal[k] - extra[k]), k))[:left]:
        extra[k] += 1
    return {k: quota[k] + extra[k] for k in counts}


def _order_key(seed: int, roi_id: str) -> str:
    return hashlib.sha256(f"{seed}:{roi_id}".encode()).hexdigest()


def stratified_sample(candidates: pl.DataFrame, sampling: SeedSampling) -> SeedSample:
    """The seed subset of `candidates` (columns of `candidate_records`)."""
    settings = json.dumps(asdict(sampling), sort_keys=True)
    if candidates.is_empty():
        empty = pl.DataFrame(schema={**{k: pl.Utf8 for k in STRATUM_KEYS}, "available": pl.Int64, "selected": pl.Int64})
        return SeedSample(conform([], SEED_SUBSET_SCHEMA), empty, 0, False)
    counts = {tuple(k): n for *k, n in candidates.group_by(list(STRATUM_KEYS)).len().iter_rows()}
    quota = allocate(counts, sampling.size, sampling.min_per_stratum)
    ranked = candidates.with_columns(pl.col("roi_id").map_elements(lambda r: _order_key(sampling.seed, r), return_dtype=pl.Utf8).alias("_order"))
    rows = []
    for key, part in ranked.sort("_order").group_by(list(STRATUM_KEYS), maintain_order=True):
        take = quota[tuple(key)]
        for r in part.head(take).iter_rows(named=True):
            rows.append({**{k: r[k] for k in ("roi_id", "image_id", "dataset", "shard", "modality", "seed_label")}, "stratum_size": counts[tuple(key)], "sampling": settings})
    subset = conform(rows, SEED_SUBSET_SCHEMA).sort("dataset", "shard", "roi_id")
    strata = pl.DataFrame(
        [{"dataset": k[0], "modality": k[1], "seed_label": k[2], "available": n, "selected": quota[k]} for k, n in sorted(counts.items())],
        schema={**{k: pl.Utf8 for k in STRATUM_KEYS}, "available": pl.Int64, "selected": pl.Int64},
    )
    floors = sum(min(sampling.min_per_stratum, n) for n in counts.values())
    return SeedSample(subset, strata, candidates.height, floors > sampling.size)


def build_seed_subset(storage, sampling: SeedSampling, datasets: list[str] | None = None) -> SeedSample:
    """The seed subset over every built partition of `datasets` (default: all in storage)."""
    return stratified_sample(candidate_records(storage, datasets), sampling)
