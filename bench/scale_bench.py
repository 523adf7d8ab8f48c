"""Scale simulation: dataset statistics and export planning over a 25M-row triplets manifest.

    python bench/scale_bench.py [--rows 25000000] [--sources 90] [--shards 64] [--dir DIR] [--keep]

1. generate: a synthetic triplets-like manifest, one Parquet file per (source, shard) partition
   exactly as the pipeline lays them out (manifests/triplets/<source>/<shard>.parquet): 90 sources
   x 64 shards = 5,760 files, source sizes skewed (Zipf-like), narrow columns (dataset, shard,
   image_key, modality, organs, roi_label, roi_origin, area_frac, caption_len, quarantined,
   patient_hash, licence, redistributable). One file at a time: memory stays bounded.
2. stats (timed, in a fresh child process so its peak RSS is its own): lazily over all files with
   polars scan_parquet and the streaming engine, one query after another -- counts by modality /
   source (with exact distinct images) / ROI label / origin / organ, exact distinct patients,
   caption length distribution, patient-grouped split assignment (train/validation/test from the patient
   hash, so no patient spans two splits), licence filtering (redistributable, not quarantined), and
   export planning (rows and estimated bytes per split and source -> number of export shards).
3. baseline (same child-process measurement): a bare streaming scan of the same columns computing
   only a row count, i.e. the cost of reading the data once. Prints stats/baseline.

Goal: stats <= 60 s and <= 2 GB peak RSS on a 2-core machine. Also prints the partition and run
counts the design implies for 90 sources.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

import _common

MODALITIES = ["CT", "MRI", "X-ray", "Ultrasound", "Histopathology", "Fluorescence microscopy", "Nuclear medicine", "Dermoscopy", "Endoscopy", "Fundus photography"]
ORGANS = ["abdomen", "liver", "kidney", "spleen", "pancreas", "lung", "heart", "brain", "chest", "pelvis", "breast", "skin", "colon", "eye", "bone", "prostate", "thyroid", "cell"]
LICENCES = ["CC BY 4.0", "CC BY-NC 4.0", "CC BY-SA 4.0", "CC0-1.0", "Apache-2.0", "custom DUA"]
ORIGINS = ["ground_truth", "expert_model", "none"]
N_LABELS = 240
SPLITS = {"train": (0, 90), "validation": (90, 95), "test": (95, 100)}  # patient-hash bucket ranges (of 100)
EXPORT_TARGET_BYTES = 512 << 20  # one export shard (WebDataset tar / Parquet) per ~512 MiB
BYTES_PER_CAPTION_WORD = 6.5
BYTES_PER_RECORD = 420  # ids, box, RLE pointer, provenance columns (measured order of magnitude)
BYTES_PER_IMAGE = 95_000  # a 1024 px PNG, amortised over the ROIs sharing it
ROIS_PER_IMAGE = 3.0


# -- generation ---------------------------------------------------------------------------------


def source_sizes(total: int, n_sources: int, rng: np.random.Generator) -> np.ndarray:
    """Rows per source, Zipf-like skew (a few huge sources, a long tail), summing to `total`."""
    w = 1.0 / np.arange(1, n_sources + 1) ** 0.9
    w = rng.permutation(w / w.sum())
    sizes = np.floor(w * total).astype(np.int64)
    sizes[: total - sizes.sum()] += 1
    return sizes


def source_profile(i: int, rng: np.random.Generator) -> dict:
    primary = MODALITIES[i % len(MODALITIES)]
    return {
        "name": f"source_{i:03d}",
        "modalities": [primary] + ([MODALITIES[(i + 3) % len(MODALITIES)]] if i % 4 == 0 else []),
        "organs": list(rng.choice(ORGANS, size=3, replace=False)),
        "licence": LICENCES[i % len(LICENCES)],
        "redistributable": LICENCES[i % len(LICENCES)] != "custom DUA",
        "labels": rng.choice(N_LABELS, size=24, replace=False),
    }


def shard_frame(profile: dict, shard: str, n: int, patients: np.ndarray, rng: np.random.Generator, first_key: int) -> pl.DataFrame:
    """One (source, shard) partition of the synthetic triplets manifest."""
    mods = profile["modalities"]
    organ_pick = rng.integers(0, len(profile["organs"]), size=n)
    organs = pl.Series([[profile["organs"][0], profile["organs"][k]] if k else [profile["organs"][0]] for k in range(len(profile["organs"]))])
    labels = np.array([f"label_{x:03d}" for x in profile["labels"]])
    return pl.DataFrame(
        {
            "dataset": pl.Series([profile["name"]]).new_from_index(0, n),
            "shard": pl.Series([shard]).new_from_index(0, n),
            "image_key": np.arange(first_key, first_key + n, dtype=np.int64) // 3,
            "modality": np.array(mods)[rng.integers(0, len(mods), size=n)] if len(mods) > 1 else pl.Series([mods[0]]).new_from_index(0, n),
            "organs": organs.gather(organ_pick),
            "roi_label": labels[rng.zipf(1.6, size=n).clip(1, len(labels)) - 1],
            "roi_origin": np.array(ORIGINS)[rng.choice(3, size=n, p=[0.55, 0.3, 0.15])],
            "area_frac": rng.beta(1.2, 12.0, size=n).astype(np.float32),
            "caption_len": rng.normal(120, 30, size=n).clip(25, 400).astype(np.int16),
            "quarantined": rng.random(n) < 0.004,
            "patient_hash": patients[rng.integers(0, len(patients), size=n)],
            "licence": pl.Series([profile["licence"]]).new_from_index(0, n),
            "redistributable": pl.Series([profile["redistributable"]]).new_from_index(0, n),
        }
    )


def generate(out: Path, rows: int, n_sources: int, n_shards: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sizes = source_sizes(rows, n_sources, rng)
    shards = [f"{s:02d}" for s in range(n_shards)]
    t0 = time.perf_counter()
    files = 0
    key = 0
    for i, size in enumerate(sizes):
        profile = source_profile(i, rng)
        n_patients = max(1, int(size) // 20)
        patients = np.array([f"{x:016x}" for x in rng.integers(0, 2**63, size=n_patients, dtype=np.int64)])
        per_shard = rng.multinomial(int(size), np.full(n_shards, 1.0 / n_shards))
        src_dir = out / profile["name"]
        src_dir.mkdir(parents=True, exist_ok=True)
        for shard, n in zip(shards, per_shard):
            shard_frame(profile, shard, int(n), patients, rng, key).write_parquet(src_dir / f"{shard}.parquet", compression="zstd", statistics=True)
            key += int(n)
            files += 1
    seconds = time.perf_counter() - t0
    size_bytes = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    return {"files": files, "rows": int(sizes.sum()), "seconds": seconds, "bytes": size_bytes, "largest_source": int(sizes.max()), "smallest_source": int(sizes.min())}


# -- statistics and export planning (lazy) --------------------------------------------------------


def split_expr() -> pl.Expr:
    """train/validation/test from the first 8 hex digits of the patient hash: a patient never spans splits."""
    bucket = pl.col("patient_hash").str.slice(0, 8).str.to_integer(base=16) % 100
    expr = pl.lit("test")
    for name, (lo, hi) in reversed(list(SPLITS.items())):
        expr = pl.when((bucket >= lo) & (bucket < hi)).then(pl.lit(name)).otherwise(expr)
    return expr.alias("split")


def stats_queries(lf: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    exportable = lf.filter(pl.col("redistributable") & ~pl.col("quarantined")).with_columns(split_expr())
    est_bytes = pl.col("caption_len").cast(pl.Float64) * BYTES_PER_CAPTION_WORD + BYTES_PER_RECORD + BYTES_PER_IMAGE / ROIS_PER_IMAGE
    return {
        "totals": lf.group_by("dataset").agg(
            pl.len().alias("rows"), pl.col("quarantined").sum().alias("quarantined"), pl.col("redistributable").sum().alias("redistributable")
        ).select(pl.len().alias("sources"), pl.col("rows", "quarantined", "redistributable").sum()),
        # exact distinct counts through a streaming group-by (n_unique() would hold the column in memory)
        "patients": lf.group_by("patient_hash").agg(pl.len()).select(pl.len().alias("patients")),
        "by_modality": lf.group_by("modality").agg(pl.len().alias("rows"), pl.col("area_frac").mean().alias("mean_area_frac"), pl.col("quarantined").sum()).sort("rows", descending=True),
        "by_source": lf.group_by("dataset").agg(pl.len().alias("rows"), pl.col("image_key").n_unique().alias("images"), pl.col("quarantined").sum()).sort("rows", descending=True),
        "by_label": lf.group_by("roi_label").agg(pl.len().alias("rows")).sort("rows", descending=True).head(20),
        "by_origin": lf.group_by("roi_origin").agg(pl.len().alias("rows")),
        "by_organ": lf.select(pl.col("organs").explode()).group_by("organs").agg(pl.len().alias("rows")).sort("rows", descending=True),
        "caption_len": lf.select(
            pl.col("caption_len").mean().alias("mean"),
            *[pl.col("caption_len").quantile(q, "nearest").alias(f"p{int(q * 100)}") for q in (0.05, 0.5, 0.95)],
            pl.col("caption_len").max().alias("max"),
        ),
        "caption_len_hist": lf.group_by((pl.col("caption_len") // 50 * 50).alias("bin")).agg(pl.len().alias("rows")).sort("bin"),
        "splits": lf.with_columns(split_expr())
        .group_by("split")
        .agg(pl.len().alias("rows"), pl.col("patient_hash").approx_n_unique().alias("patients_approx"))
        .sort("split"),
        "by_licence": lf.group_by("licence", "redistributable").agg(pl.len().alias("rows"), (~pl.col("quarantined")).sum().alias("exportable")).sort("licence"),
        "export_plan": exportable.group_by("split", "dataset")
        .agg(pl.len().alias("rows"), est_bytes.sum().alias("est_bytes"))
        .group_by("split")
        .agg(
            pl.col("rows").sum(),
            pl.col("est_bytes").sum(),
            pl.col("dataset").n_unique().alias("sources"),
            (pl.col("est_bytes") / EXPORT_TARGET_BYTES).ceil().cast(pl.Int64).sum().alias("export_shards_per_source_split"),
        )
        .with_columns((pl.col("est_bytes") / EXPORT_TARGET_BYTES).ceil().cast(pl.Int64).alias("export_shards_pooled"))
        .sort("split"),
    }


def run_stats(root: Path) -> dict:
    """Every query streamed on its own: peak memory is the largest single query's, not their sum
    (collect_all would cache the shared scan, i.e. the whole manifest, in memory)."""
    lf = pl.scan_parquet(str(root / "*" / "*.parquet"))
    return {name: query.collect(engine="streaming") for name, query in stats_queries(lf).items()}


def run_baseline(root: Path) -> dict:
    lf = pl.scan_parquet(str(root / "*" / "*.parquet"))
    cols = ["dataset", "modality", "organs", "roi_label", "roi_origin", "area_frac", "caption_len", "quarantined", "patient_hash", "licence", "redistributable", "image_key"]
    return {"baseline": lf.select(pl.len(), *[pl.col(c).null_count().alias(c) for c in cols]).collect(engine="streaming")}


def child(mode: str, root: Path) -> None:
    """Child-process entry: run one phase, print wall time, peak RSS and results as JSON."""
    t0 = time.perf_counter()
    frames = run_stats(root) if mode == "stats" else run_baseline(root)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "frames": {k: v.to_dicts() for k, v in frames.items()}}))


def measure(mode: str, root: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--dir", str(root)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report ---------------------------------------------------------------------------------------


def print_report(gen: dict | None, stats: dict, base: dict, n_sources: int, n_shards: int) -> None:
    if gen:
        print(f"generated {gen['rows']:,} rows in {gen['files']:,} Parquet files ({gen['bytes'] / 2**20:,.0f} MiB) in {gen['seconds']:.1f}s; "
              f"sources {gen['smallest_source']:,}..{gen['largest_source']:,} rows")
    f = stats["frames"]
    t = f["totals"][0]
    print(f"\ntotals: {t['rows']:,} triplets, {t['sources']} sources, {f['patients'][0]['patients']:,} patients, {t['quarantined']:,} quarantined, {t['redistributable']:,} redistributable")
    print("by modality:   " + ", ".join(f"{r['modality']} {r['rows']:,}" for r in f["by_modality"]))
    print("by origin:     " + ", ".join(f"{r['roi_origin']} {r['rows']:,}" for r in f["by_origin"]))
    print("top labels:    " + ", ".join(f"{r['roi_label']} {r['rows']:,}" for r in f["by_label"][:6]))
    src = f["by_source"]
    print(f"by source:     largest {src[0]['dataset']} {src[0]['rows']:,} rows / {src[0]['images']:,} images; smallest {src[-1]['dataset']} {src[-1]['rows']:,}")
    c = f["caption_len"][0]
    print(f"caption words: mean {c['mean']:.1f}, p5 {c['p5']}, p50 {c['p50']}, p95 {c['p95']}, max {c['max']}")
    print("splits:        " + ", ".join(f"{r['split']} {r['rows']:,} rows / ~{r['patients_approx']:,} patients" for r in f["splits"]))
    print("licences:      " + ", ".join(f"{r['licence']}{'' if r['redistributable'] else ' (not redistributable)'} {r['exportable']:,}" for r in f["by_licence"]))
    for r in f["export_plan"]:
        print(f"export {r['split']:<5}: {r['rows']:,} rows from {r['sources']} sources, ~{r['est_bytes'] / 2**30:,.1f} GiB -> "
              f"{r['export_shards_pooled']:,} shards of {EXPORT_TARGET_BYTES >> 20} MiB pooled ({r['export_shards_per_source_split']:,} if split per source)")
    per_asset = n_sources * n_shards
    print(f"\npartitions implied: {n_sources} sources x {n_shards} shards = {per_asset:,} keys per dataset asset "
          f"(x 6 dataset assets = {per_asset * 6:,} asset partitions) + {n_sources} source_manifest keys; "
          f"a full backfill = {per_asset:,} shard runs + {n_sources} manifest runs")
    ratio = stats["seconds"] / base["seconds"] if base["seconds"] > 0 else float("nan")
    ok = stats["seconds"] <= 60 and stats["peak_rss_mb"] <= 2048
    print(f"\nstats + export planning: {stats['seconds']:.1f}s wall, peak RSS {stats['peak_rss_mb']:,.0f} MiB "
          f"(goal <= 60 s and <= 2048 MiB: {'met' if ok else 'NOT met'})")
    print(f"bare baseline (one streaming scan of the same columns): {base['seconds']:.1f}s, peak RSS {base['peak_rss_mb']:,.0f} MiB")
    print(f"ratio stats / bare scan: {ratio:.2f}x time, {stats['peak_rss_mb'] / max(base['peak_rss_mb'], 1):.2f}x memory")


def main() -> int:
    parser = _common.parser(__doc__)
    parser.add_argument("--rows", type=int, default=25_000_000)
    parser.add_argument("--sources", type=int, default=90)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", help="where to write the manifest (default: a temp dir, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the generated manifest")
    parser.add_argument("--reuse", action="store_true", help="skip generation when --dir already holds a manifest")
    parser.add_argument("--child", choices=["stats", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child(args.child, Path(args.dir))
        return 0

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="medtrinity-scale-")) / "manifests" / "triplets"
    need = int(args.rows * 40)  # generous bytes/row upper bound for the compressed manifest
    free = shutil.disk_usage(root.parent if root.parent.exists() else tempfile.gettempdir()).free
    print(f"manifest dir: {root} (free disk {free / 2**30:,.1f} GiB)")
    if free < need:
        print(f"not enough free disk: need ~{need / 2**30:.1f} GiB", file=sys.stderr)
        return 2
    try:
        gen = None
        if not (args.reuse and any(root.glob("*/*.parquet"))):
            root.mkdir(parents=True, exist_ok=True)
            gen = generate(root, args.rows, args.sources, args.shards, args.seed)
        base = measure("baseline", root)
        stats = measure("stats", root)
        print_report(gen, stats, base, args.sources, args.shards)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root.parents[1], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
