"""Benchmark decontamination: near-duplicates of benchmark images found by perceptual hash.

Every image file under a benchmark folder (e.g. the VQA-RAD, SLAKE or PathVQA test images a
user supplies) is hashed with ``imagehash.phash`` (64 bits, robust to re-encoding and resizing);
every clean image of the release is hashed the same way. Release images within
``max_distance`` bits of a benchmark image are dropped or flagged. Lookup uses multi-index
hashing: the hash is cut into ``max_distance + 1`` bands and candidates must share one band
exactly, so the cost stays near-linear in the number of images.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import polars as pl
from PIL import Image
from medtrinity_assets.ingest.hashing import hash_bands

BENCHMARK_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
PHASH_BITS = 64

MATCHES_SCHEMA = pl.Schema({"image_id": pl.Utf8, "benchmark": pl.Utf8, "benchmark_file": pl.Utf8, "distance": pl.Int32})


def phash_hex(data: bytes) -> str:
    """64-bit perceptual hash (16 hex characters) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as img:
        return str(imagehash.phash(img))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass
class BenchmarkHashes:
    """Perceptual hashes of one benchmark folder; unreadable files are listed, not fatal."""

    name: str
    folder: str
    files: list[str] = field(default_factory=list)  # paths relative to the folder
    phashes: list[str] = field(default_factory=list)
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
            ph = phash_hex(path.read_bytes())
        except Exception:  # noqa: BLE001 - any decoder failure means "unreadable" (PIL raises many types;
            # with ultralytics imported, Image.open is patched and raises ModuleNotFoundError for unknown data)
            out.unreadable.append(rel)
            continue
        out.files.append(rel)
        out.phashes.append(ph)
    return out


class PhashIndex:
    """Multi-index hashing over 64-bit perceptual hashes: every entry within `max_distance` bits."""

    def __init__(self, max_distance: int) -> None:
        if not 0 <= max_distance < PHASH_BITS:
            raise ValueError(f"max_distance must be in [0, {PHASH_BITS}), got {max_distance}")
        self.max_distance = max_distance
        self.n_bands = max_distance + 1
        self.values: list[int] = []
        self._bands: dict[tuple[int, int], list[int]] = {}

    def add(self, phash: str) -> int:
        value = int(phash, 16)
        idx = len(self.values)
        self.values.append(value)
        for key in hash_bands(value, PHASH_BITS, self.n_bands):
            self._bands.setdefault(key, []).append(idx)
        return idx

    def query(self, phash: str) -> list[tuple[int, int]]:
        """(entry index, distance) of every entry within max_distance, nearest first."""
        value = int(phash, 16)
        seen: set[int] = set()
        hits = []
        for key in hash_bands(value, PHASH_BITS, self.n_bands):
            for idx in self._bands.get(key, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                d = hamming(value, self.values[idx])
                if d <= self.max_distance:
                    hits.append((idx, d))
        return sorted(hits, key=lambda t: (t[1], t[0]))


def find_benchmark_matches(release_phashes: Mapping[str, str], benchmarks: Iterable[BenchmarkHashes], max_distance: int) -> pl.DataFrame:
    """Every (release image, benchmark image) pair within `max_distance` bits."""
    index = PhashIndex(max_distance)
    owners: list[tuple[str, str]] = []
    for bench in benchmarks:
        for rel, ph in zip(bench.files, bench.phashes, strict=True):
            index.add(ph)
            owners.append((bench.name, rel))
    rows = []
    if owners:
        for image_id, ph in release_phashes.items():
            for idx, d in index.query(ph):
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
