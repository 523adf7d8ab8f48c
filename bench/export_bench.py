"""Export bench: release build throughput and decontamination lookup, each against a bare baseline.

  python bench/export_bench.py                         # storage from MEDTRINITY_STORAGE / MEDTRINITY_HOME
  python bench/export_bench.py --storage output/dataset --release demo --repeats 3

1. **Release build** (needs triplets in the storage, e.g. after `medtrinity demo`): `build_release`
   of the release (all formats, card, figure, gallery, read-back verification) into a scratch
   name, against a bare export of the same records: copy the clean images and overlays, write one
   Parquet of the triplets and one plain tar of image + overlay + JSON per record, no hashing, no
   splits, no verification. Ratio = ours records/s / bare records/s.
2. **Decontamination lookup**: N release hashes against M benchmark hashes within 4 bits,
   multi-index `PhashIndex` against a vectorised numpy brute force (XOR + popcount over the full
   N x M matrix, in chunks). Ratio = bare seconds / ours seconds (> 1: ours faster).

3. **Release sizes** (``--sizes <release folder>``, a built local release): bytes of the
   WebDataset shards as built (one sample per image, clean image stored once) against the
   per-record layout they replaced (clean image + overlay + JSON + caption for every record,
   re-tarred here from the release's own files), and the Parquet views with embedded images.

Wall-clock seconds, best of --repeats; the machine may be shared, so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from medtrinity_assets import settings  # noqa: E402
from medtrinity_assets.catalog import load_catalog  # noqa: E402
from medtrinity_assets.export import build_release, load_releases, load_triplets  # noqa: E402
from medtrinity_assets.export.decontamination import PhashIndex  # noqa: E402
from dagster_aws.s3 import S3Resource  # noqa: E402

from medtrinity_resources.storage import MedtrinityStorage  # noqa: E402


def bare_export(storage: MedtrinityStorage, triplets: pl.DataFrame, out: str) -> None:
    """Copy images/overlays, one Parquet, one tar: the least a release needs."""
    for uri in set(triplets["image_uri"].to_list()) | set(triplets["overlay_uri"].drop_nulls().to_list()):
        storage.write_bytes(f"{out}/{storage.key_of(uri)}", storage.read_uri(uri))
    buf = io.BytesIO()
    triplets.write_parquet(buf)
    storage.write_bytes(f"{out}/data.parquet", buf.getvalue())
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        for i, r in enumerate(triplets.iter_rows(named=True)):
            for name, data in (
                (f"{i:08d}.png", storage.read_uri(r["image_uri"])),
                (f"{i:08d}.overlay.png", storage.read_uri(r["overlay_uri"] or r["image_uri"])),
                (f"{i:08d}.json", json.dumps({k: v for k, v in r.items()}, default=str).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    storage.write_bytes(f"{out}/shard.tar", tar_buf.getvalue())


def bench_release(storage: MedtrinityStorage, release_name: str, repeats: int) -> None:
    catalog = load_catalog(settings.catalog_path())
    config = load_releases()[release_name]
    config = config.model_validate({**config.model_dump(), "name": "bench_release_tmp", "benchmark_dirs": {}})
    triplets, _ = load_triplets(storage, config.source_names(catalog))
    if triplets.is_empty():
        print(f"release build: no triplets under {storage.uri('manifests/triplets/')} (run `medtrinity demo` first); skipped")
        return
    ours, bare, n = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = build_release(storage, config, catalog)
        ours.append(time.perf_counter() - t0)
        n = result.records.height
        eligible = triplets.filter(pl.col("dataset").is_in(result.records["dataset"].unique().to_list()) & ~pl.col("quarantined"))
        t0 = time.perf_counter()
        bare_export(storage, eligible, "bench_bare_tmp")
        bare.append(time.perf_counter() - t0)
    for prefix in ("releases/bench_release_tmp/", "bench_bare_tmp/"):
        for key in storage.list_keys(prefix):
            storage.delete(key)
    ours_rate, bare_rate = n / min(ours), n / min(bare)
    print(f"release build: {n} records, {result.total_bytes / 1e6:.1f} MB, verified={result.verification.ok}")
    print(f"  ours  {min(ours):7.2f} s  {ours_rate:8.1f} records/s  (all formats, card, figure, gallery, read-back)")
    print(f"  bare  {min(bare):7.2f} s  {bare_rate:8.1f} records/s  (copy files, one Parquet, one tar)")
    print(f"  ratio ours/bare records/s = {ours_rate / bare_rate:.2f}")


def brute_force(queries: np.ndarray, stored: np.ndarray, max_d: int, chunk: int = 512) -> int:
    hits = 0
    for i in range(0, len(queries), chunk):
        x = np.bitwise_xor(queries[i : i + chunk, None], stored[None, :])
        hits += int((np.bitwise_count(x) <= max_d).sum())
    return hits


def bench_lookup(n_release: int, n_bench: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 2**63, n_bench, dtype=np.uint64) * 2 + rng.integers(0, 2, n_bench, dtype=np.uint64)
    queries = rng.integers(0, 2**63, n_release, dtype=np.uint64) * 2
    queries[: n_bench // 10] = stored[: n_bench // 10] ^ np.uint64(0b101)  # planted near-duplicates
    hex_stored = [f"{int(v):016x}" for v in stored]
    hex_queries = [f"{int(v):016x}" for v in queries]
    ours, bare = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        index = PhashIndex(4)
        for h in hex_stored:
            index.add(h)
        found = sum(len(index.query(h)) for h in hex_queries)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        expected = brute_force(queries, stored, 4)
        bare.append(time.perf_counter() - t0)
    assert found == expected, (found, expected)
    print(f"decontamination lookup: {n_release} release x {n_bench} benchmark hashes, {found} matches within 4 bits")
    print(f"  ours  {min(ours):7.3f} s  (multi-index hashing, pure Python)")
    print(f"  bare  {min(bare):7.3f} s  (numpy XOR + popcount over the full matrix)")
    print(f"  ratio bare/ours seconds = {min(bare) / min(ours):.2f}")


def _tar_size(members: list[tuple[str, bytes]]) -> int:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return len(buf.getvalue())


def _du(root: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in root.glob(pattern) if p.is_file())


def release_sizes(root: Path) -> None:
    """WebDataset grouped vs per-record layout, and the Parquet views, of a built release folder."""
    index = json.loads((root / "webdataset" / "index.json").read_text())
    grouped = sum(s["bytes"] for s in index["shards"])
    per_split: dict[str, int] = {}
    records = 0
    for path in sorted((root / "data" / "full").glob("*.parquet")):
        df = pl.read_parquet(path).with_columns(pl.col("image").struct.field("path").alias("image"), pl.col("overlay").struct.field("path").alias("overlay"))
        members = []
        for i, r in enumerate(df.iter_rows(named=True)):
            key = f"{i:020d}"
            members += [
                (f"{key}.png", (root / r["image"]).read_bytes()),
                (f"{key}.overlay.png", (root / r["overlay"]).read_bytes()),
                (f"{key}.json", json.dumps(r, default=str, sort_keys=True).encode()),
                (f"{key}.txt", (r["caption"] or "").encode()),
            ]
        per_split[path.stem] = _tar_size(members)
        records += df.height
    per_record = sum(per_split.values())
    images = sum(s["n_samples"] for s in index["shards"])
    mb = 1 / 1e6
    print(f"release sizes of {root} ({records} records, {images} images)")
    print(f"  clean images  {_du(root, 'images/**/*') * mb:8.2f} MB   overlays {_du(root, 'overlays/**/*') * mb:8.2f} MB")
    print(f"  WebDataset, one sample per record (before): {per_record * mb:8.2f} MB  " + ", ".join(f"{k} {v * mb:.2f}" for k, v in per_split.items()))
    print(f"  WebDataset, one sample per image (now):     {grouped * mb:8.2f} MB  ratio now/before = {grouped / per_record:.2f}")
    print(f"  Parquet full view (image + overlay embedded): {_du(root, 'data/full/*.parquet') * mb:8.2f} MB")
    print(f"  Parquet minimal view (image embedded):        {_du(root, 'data/minimal/*.parquet') * mb:8.2f} MB")
    print(f"  whole release:                                {_du(root, '**/*') * mb:8.2f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default=settings.storage_root())
    parser.add_argument("--release", default="demo")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--release-hashes", type=int, default=200_000)
    parser.add_argument("--benchmark-hashes", type=int, default=5_000)
    parser.add_argument("--sizes", metavar="RELEASE_DIR", help="only report the sizes of this built release folder")
    args = parser.parse_args()
    if args.sizes:
        release_sizes(Path(args.sizes))
        return 0
    s3 = S3Resource(endpoint_url=os.environ.get("MEDTRINITY_S3_ENDPOINT_URL") or None) if args.storage.startswith("s3://") else None
    storage = MedtrinityStorage(root=args.storage, s3=s3)
    bench_release(storage, args.release, args.repeats)
    bench_lookup(args.release_hashes, args.benchmark_hashes, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
