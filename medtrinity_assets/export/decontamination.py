"""Benchmark decontamination: near-duplicates of benchmark images found by perceptual hash.

Every image file under a benchmark folder (e.g. the VQA-RAD, SLAKE or PathVQA test images a
user supplies) is hashed with ``imagehash.phash`` (64 bits, robust to re-encoding and resizing);
every clean image of the release is hashed the same way. Release images within
``max_distance`` bits of a benchmark image are dropped or flagged. The search is the project's
one near-duplicate search (`medtrinity_assets.ingest.hashing`: multi-index hashing, and a
pixel-level confirmation on thumbnails where the release images' signatures are given).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from medtrinity_assets.ingest.formats import BENCHMARK_IMAGE_SUFFIXES
from medtrinity_assets.ingest.hashing import PhashIndex, image_fingerprint, signatures_agree
from medtrinity_assets.ingest.hashing import hamming as hamming  # re-exported: the one Hamming helper

MATCHES_SCHEMA = pl.Schema({"image_id": pl.Utf8, "benchmark": pl.Utf8, "benchmark_file": pl.Utf8, "distance": pl.Int32})


def phash_hex(data: bytes) -> str:
    """64-bit perceptual hash (16 hex characters) of encoded image bytes."""
    return image_fingerprint(data)[0]


@dataclass
class BenchmarkHashes:
    """Perceptual hashes of one benchmark folder; unreadable files are listed, not fatal."""

    name: str
    folder: str
    files: list[str] = field(default_factory=list)  # paths relative to the folder
    phashes: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)  # 16x16 thumbnails (pixel confirmation)
    unreadable: list[str] = field(default_factory=list)


def benchmark_image_files(folder: Path) -> list[Path]:
    """Image files under a folder (recursive, sorted), by suffix."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in BENCHMARK_IMAGE_SUFFIXES)


def hash_benchmark(name: str, folder: Path) -> BenchmarkHashes:
    """Hash every image of one benchmark folder."""
    out = BenchmarkHashes(name=name, folder=str(folder))
    for path in benchmark_image_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            ph, sig = image_fingerprint(path.read_bytes())
        except Exception:  # noqa: BLE001 - any decoder failure means "unreadable" (PIL raises many types;
            # with ultralytics imported, Image.open is patched and raises ModuleNotFoundError for unknown data)
            out.unreadable.append(rel)
            continue
        out.files.append(rel)
        out.phashes.append(ph)
        out.signatures.append(sig)
    return out


def find_benchmark_matches(
    release_phashes: Mapping[str, str],
    benchmarks: Iterable[BenchmarkHashes],
    max_distance: int,
    release_signatures: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Every (release image, benchmark image) pair within `max_distance` bits; with
    `release_signatures`, only pairs whose thumbnails also agree (`signatures_agree`)."""
    index = PhashIndex(max_distance)
    owners: list[tuple[str, str, str]] = []
    for bench in benchmarks:
        sigs = bench.signatures or [""] * len(bench.files)
        for rel, ph, sig in zip(bench.files, bench.phashes, sigs, strict=True):
            index.add(ph)
            owners.append((bench.name, rel, sig))
    rows = []
    if owners:
        for image_id, ph in release_phashes.items():
            for idx, d in index.query(ph):
                if release_signatures is not None and not signatures_agree(release_signatures.get(image_id), owners[idx][2]):
                    continue
                rows.append({"image_id": image_id, "benchmark": owners[idx][0], "benchmark_file": owners[idx][1], "distance": d})
    return pl.DataFrame(rows, schema=MATCHES_SCHEMA) if rows else pl.DataFrame(schema=MATCHES_SCHEMA)


def nearest_matches(matches: pl.DataFrame) -> pl.DataFrame:
    """One row per matched release image: its nearest benchmark image (ties: benchmark, file order)."""
    if matches.is_empty():
        return matches
    return matches.sort(["image_id", "distance", "benchmark", "benchmark_file"]).unique("image_id", keep="first", maintain_order=True)


def apply_decontamination(records: pl.DataFrame, matches: pl.DataFrame, action: str) -> pl.DataFrame:
    """Records with ``benchmark_match`` (``<benchmark>:<file>`` or null) and ``benchmark_distance``;
    with action ``drop`` the matched records are removed."""
    if action not in ("drop", "flag"):
        raise ValueError(f"decontamination action must be 'drop' or 'flag', got {action!r}")
    best = nearest_matches(matches).select(
        "image_id",
        (pl.col("benchmark") + ":" + pl.col("benchmark_file")).alias("benchmark_match"),
        pl.col("distance").alias("benchmark_distance"),
    )
    if best.is_empty():
        best = pl.DataFrame(schema={"image_id": pl.Utf8, "benchmark_match": pl.Utf8, "benchmark_distance": pl.Int32})
    out = records.join(best, on="image_id", how="left")
    if action == "drop":
        out = out.filter(pl.col("benchmark_match").is_null())
    return out


def decontamination_report(benchmarks: list[BenchmarkHashes], matches: pl.DataFrame, records: pl.DataFrame, action: str) -> dict:
    """Per benchmark: images hashed, unreadable files, release images and records matched, action."""
    per = {}
    for bench in benchmarks:
        m = matches.filter(pl.col("benchmark") == bench.name) if matches.height else matches
        images = set(m["image_id"].to_list()) if m.height else set()
        per[bench.name] = {
            "folder": bench.folder,
            "benchmark_images": len(bench.files),
            "unreadable_files": len(bench.unreadable),
            "matched_release_images": len(images),
            "matched_records": int(records.filter(pl.col("image_id").is_in(list(images))).height) if images else 0,
            "matched_benchmark_images": m["benchmark_file"].n_unique() if m.height else 0,
        }
    all_images = set(matches["image_id"].to_list()) if matches.height else set()
    return {
        "action": action,
        "benchmarks": per,
        "matched_release_images": len(all_images),
        "matched_records": int(records.filter(pl.col("image_id").is_in(list(all_images))).height) if all_images else 0,
    }
