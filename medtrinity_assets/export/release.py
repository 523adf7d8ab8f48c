"""Build a release from the triplet manifests in storage, write every format, verify it by reading back.

`build_release` is what the ``dataset_release`` asset calls:

1. read the triplet manifests of the release's sources (`load_triplets`), keep the licence- and
   quarantine-eligible records (`select_records`);
2. copy clean images into the release and hash them (SHA-256, perceptual hash);
3. decontaminate against the benchmark folders (drop or flag near-duplicates);
4. copy the overlays; assign splits by patient / volume / item;
5. write per split the Parquet views with embedded images (``full`` and ``minimal``, see `hf`)
   and LLaVA JSON; WebDataset shards (one sample per image) with index and checksums; the
   dataset card (``card.yaml`` + ``card_template.md``) with its statistics figure and LICENSE.md,
   the HTML gallery, the decontamination report, ``release.json`` and ``checksums.sha256``
   (every file); files 644, folders 755;
6. read everything back (`verify.verify_release`): checksums, record counts across formats,
   embedded images against their hashes, every shard and every image.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from medtrinity_assets.catalog import Catalog
from medtrinity_assets.schema import REJECTS_SCHEMA, TRIPLETS_SCHEMA, conform, empty
from medtrinity_resources.storage import MedtrinityStorage

from . import webdataset as wds
from .card import LICENSE_FILE, STATISTICS_FIGURE, SourceEntry, license_markdown, render_card
from .config import SPLITS, ReleaseConfig
from .decontamination import apply_decontamination, decontamination_report, find_benchmark_matches, hash_benchmark, phash_hex
from .hf import hf_parquet, minimal_frame, view_path
from .gallery import GALLERY_FILE, render_gallery, sample_records
from .llava import caption_conversations
from .plots import statistics_figure
from .schema import RELEASE_SCHEMA, RELEASE_SCHEMA_VERSION
from .splits import add_splits, groups_in_several_splits
from .statistics import ReleaseStatistics, release_statistics
from .verify import RELEASE_MANIFEST, ReleaseError, ReleaseVerification, verify_release
from .writer import ReleaseWriter, release_prefix

CARD_FILE = "README.md"
DECONTAMINATION_REPORT = "reports/decontamination.json"
BENCHMARK_MATCHES = "reports/benchmark_matches.parquet"
COPY_WORKERS = 8


def parquet_path(split: str, view: str = "full") -> str:
    return view_path(view, split)


def llava_path(split: str) -> str:
    return f"llava/{split}.json"


# ----------------------------------------------------------------------------- inputs


def load_triplets(storage: MedtrinityStorage, sources: list[str]) -> tuple[pl.DataFrame, str]:
    """Every triplet manifest of the sources, and a fingerprint of those manifests' bytes."""
    frames = []
    h = hashlib.sha256()
    for source in sources:
        for key in storage.list_keys(f"manifests/triplets/{source}/"):
            if not key.endswith(".parquet"):
                continue
            data = storage.read_bytes(key)
            h.update(key.encode() + b"\0" + hashlib.sha256(data).digest())
            frames.append(pl.read_parquet(io.BytesIO(data)))
    df = pl.concat(frames, how="vertical_relaxed") if frames else empty(TRIPLETS_SCHEMA)
    return conform(df, TRIPLETS_SCHEMA), h.hexdigest()[:16]


def load_rejects(storage: MedtrinityStorage, sources: list[str]) -> pl.DataFrame:
    """Reject rows of every stage for the sources (``rejects/<stage>/<source>/<shard>.parquet``)."""
    wanted = set(sources)
    frames = []
    for key in storage.list_keys("rejects/"):
        parts = key.split("/")
        if len(parts) == 4 and parts[2] in wanted and key.endswith(".parquet"):
            frames.append(storage.read_parquet(key))
    df = pl.concat(frames, how="vertical_relaxed") if frames else empty(REJECTS_SCHEMA)
    return conform(df, REJECTS_SCHEMA)


@dataclass
class Selection:
    """Records eligible for a release, and what was left out and why."""

    records: pl.DataFrame
    sources: list[SourceEntry]
    quarantine: dict


def select_records(triplets: pl.DataFrame, config: ReleaseConfig, catalog: Catalog) -> Selection:
    """Filter to the release's sources, its licence rule and (unless included) non-quarantined records."""
    names = config.source_names(catalog)
    df = triplets.filter(pl.col("dataset").is_in(names))
    present = dict(df.group_by("dataset").len().iter_rows()) if df.height else {}
    allowed = [n for n in names if catalog.source(n).redistributable or not config.redistributable_only]
    df = df.filter(pl.col("dataset").is_in(allowed))
    quarantined = df.filter(pl.col("quarantined"))
    reasons = dict(quarantined.explode("quarantine_reasons").group_by("quarantine_reasons").len().drop_nulls().iter_rows()) if quarantined.height else {}
    if not config.include_quarantined:
        df = df.filter(~pl.col("quarantined"))
    kept = dict(df.group_by("dataset").len().iter_rows()) if df.height else {}
    entries = []
    for n in names:
        s = catalog.source(n)
        if n not in allowed:
            status = "excluded: not redistributable"
        elif not present.get(n):
            status = "no triplets materialised"
        else:
            status = "included"
        entries.append(SourceEntry(n, s.title, s.licence, s.citation, s.redistributable, status, int(kept.get(n, 0))))
    return Selection(df, entries, {"quarantined": quarantined.height, "reasons": reasons, "included": config.include_quarantined})


def drop_duplicate_images(storage: MedtrinityStorage, records: pl.DataFrame) -> pl.DataFrame:
    """Records of images that `image_duplicates` found to repeat an earlier image are left out."""
    key = "manifests/image_duplicates/all.parquet"
    if records.is_empty() or not storage.exists(key):
        return records
    duplicate_ids = storage.read_parquet(key)["image_id"]
    return records.filter(~pl.col("image_id").is_in(duplicate_ids.implode()))


# ----------------------------------------------------------------------------- files


@dataclass
class CopiedFile:
    rel: str
    sha256: str
    phash: str | None


def copy_files(storage: MedtrinityStorage, writer: ReleaseWriter, uris: list[str], with_phash: bool) -> dict[str, CopiedFile]:
    """Copy storage objects into the release under their storage key (``images/…``, ``overlays/…``)."""

    def one(uri: str) -> tuple[str, CopiedFile]:
        rel = storage.key_of(uri)
        data = storage.read_uri(uri)
        ph = phash_hex(data) if with_phash else None
        return uri, CopiedFile(rel, writer.write(rel, data), ph)

    with ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
        return dict(pool.map(one, sorted(set(uris))))


def release_frame(records: pl.DataFrame, images: dict[str, CopiedFile], overlays: dict[str, CopiedFile]) -> pl.DataFrame:
    """Records in the release schema, ordered by split then sample id."""
    files = {**images, **overlays}
    overlay_uri = pl.coalesce(pl.col("overlay_uri"), pl.col("image_uri"))
    box = ["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
    df = records.with_columns(
        pl.col("triplet_id").alias("sample_id"),
        pl.lit(RELEASE_SCHEMA_VERSION).alias("release_schema_version"),
        pl.col("image_uri").replace_strict({u: f.rel for u, f in images.items()}, return_dtype=pl.Utf8).alias("image"),
        overlay_uri.replace_strict({u: f.rel for u, f in files.items()}, return_dtype=pl.Utf8).alias("overlay"),
        pl.col("image_uri").replace_strict({u: f.sha256 for u, f in images.items()}, return_dtype=pl.Utf8).alias("image_sha256"),
        overlay_uri.replace_strict({u: f.sha256 for u, f in files.items()}, return_dtype=pl.Utf8).alias("overlay_sha256"),
        pl.col("image_uri").replace_strict({u: f.phash for u, f in images.items()}, return_dtype=pl.Utf8).alias("image_phash"),
        pl.when(pl.all_horizontal(pl.col(c).is_not_null() for c in box)).then(pl.concat_list(box)).otherwise(None).alias("bbox"),
        pl.col("rle").alias("mask_rle"),
        pl.col("schema_version").alias("triplet_schema_version"),
    )
    order = {s: i for i, s in enumerate(SPLITS)}
    df = df.with_columns(pl.col("split").replace_strict(order, return_dtype=pl.Int32).alias("_split_order"))
    df = df.sort("_split_order", "sample_id")
    return df.select([pl.col(n).cast(t) for n, t in RELEASE_SCHEMA.items()])


def parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def wds_record(r: dict) -> dict:
    """JSON of one WebDataset sample: the record plus its mask as a COCO RLE dict."""
    from medtrinity_assets.rois import rle_to_coco

    out = dict(r)
    out["mask_coco_rle"] = rle_to_coco(r["mask_rle"]) if r.get("mask_rle") else None
    return out


def write_webdataset(storage: MedtrinityStorage, writer: ReleaseWriter, df: pl.DataFrame, config: ReleaseConfig) -> list[wds.ShardEntry]:
    """Shards per split, one sample per image holding all its records (images read back from the
    release copies), index.json and SHA256SUMS."""
    entries: list[wds.ShardEntry] = []
    keys: set[str] = set()
    for split in SPLITS:
        part = df.filter(pl.col("split") == split)
        by_image: dict[str, list[dict]] = {}
        for r in part.iter_rows(named=True):
            by_image.setdefault(r["image_id"], []).append(r)

        def samples(by_image=by_image):
            for image_id, records in by_image.items():
                key = wds.sample_key(image_id)
                if key in keys:
                    raise ReleaseError("sample_key_collision", f"two images share WebDataset key {key}")
                keys.add(key)
                image = storage.read_bytes(writer.key(records[0]["image"]))
                overlays = [None if r["overlay"] == r["image"] else storage.read_bytes(writer.key(r["overlay"])) for r in records]
                yield wds.WdsSample(key, image_id, [wds_record(r) for r in records], image, overlays)

        for i, batch in enumerate(wds.cut_shards(samples(), config.shard_max_samples, config.shard_max_bytes)):
            data = wds.tar_samples(batch)
            name = wds.shard_name(split, i)
            digest = writer.write(f"{wds.WDS_DIR}/{name}", data)
            entries.append(wds.ShardEntry(name, split, len(batch), len(data), digest, sum(len(s.records) for s in batch)))
    writer.write_json(wds.INDEX_FILE, wds.shard_index(entries, config.name))
    writer.write_text(wds.SUMS_FILE, wds.shard_sums(entries))
    return entries


# ----------------------------------------------------------------------------- build


@dataclass
class ReleaseResult:
    name: str
    uri: str
    records: pl.DataFrame
    statistics: ReleaseStatistics
    decontamination: dict
    selection: Selection
    card_markdown: str
    figure_png: bytes
    files: dict
    shards: list[wds.ShardEntry]
    verification: ReleaseVerification
    input_fingerprint: str
    stale_removed: list[str]
    total_bytes: int
    split_conflicts: list[str]


def _check_not_empty(records: pl.DataFrame, config: ReleaseConfig, names: list[str], selection: Selection) -> None:
    if records.is_empty():
        raise ReleaseError(
            "empty_release",
            f"release '{config.name}' has no eligible records: materialise `triplets` for its sources "
            f"({', '.join(names)}) first; sources: " + "; ".join(f"{s.name}: {s.status}" for s in selection.sources),
        )


def decontaminate(
    storage: MedtrinityStorage, writer: ReleaseWriter, records: pl.DataFrame, config: ReleaseConfig, benchmarks_at: dict
) -> tuple[pl.DataFrame, dict, dict, pl.DataFrame]:
    """Copy the images (with their pHash), drop the records whose image matches a benchmark image
    and delete those images' copies. Returns (kept records, copied images by URI, report, matches)."""
    images = copy_files(storage, writer, records["image_uri"].to_list(), with_phash=True)
    benchmarks = [hash_benchmark(n, p) for n, p in benchmarks_at.items()]
    phashes = {}
    for image_id, uri in records.select("image_id", "image_uri").unique().iter_rows():
        phashes[image_id] = images[uri].phash
    matches = find_benchmark_matches(phashes, benchmarks, config.phash_max_distance)
    decon = decontamination_report(benchmarks, matches, records, config.decontamination)
    records = apply_decontamination(records, matches, config.decontamination)
    if records.is_empty():
        raise ReleaseError("empty_release", f"release '{config.name}': every record matched a benchmark image and was dropped")
    kept_uris = set(records["image_uri"].to_list())
    for uri, f in list(images.items()):
        if uri not in kept_uris:  # dropped by decontamination: not part of the release
            storage.delete(writer.key(f.rel))
            writer.files.pop(f.rel, None)
            writer.sizes.pop(f.rel, None)
            del images[uri]
    return records, images, decon, matches


def write_split_tables(storage: MedtrinityStorage, writer: ReleaseWriter, df: pl.DataFrame) -> dict:
    """Per split: the full and minimal Hugging Face parquet views and the LLaVA conversations.
    Returns the `files` section of the manifest (paths per split, Arrow bytes per parquet)."""
    files: dict = {"parquet": {}, "parquet_minimal": {}, "arrow_bytes": {}, "llava": {}}

    def read(rel: str) -> bytes:
        return storage.read_bytes(writer.key(rel))

    for split in SPLITS:
        part = df.filter(pl.col("split") == split)
        if part.is_empty():
            continue
        for view, key, frame in (("full", "parquet", part), ("minimal", "parquet_minimal", minimal_frame(part))):
            data, arrow_bytes = hf_parquet(frame, read)
            files[key][split] = parquet_path(split, view)
            files["arrow_bytes"][parquet_path(split, view)] = arrow_bytes
            writer.write(parquet_path(split, view), data)
        files["llava"][split] = llava_path(split)
        writer.write_json(llava_path(split), caption_conversations(part))
    return files


def release_manifest(
    config: ReleaseConfig, fingerprint: str, df: pl.DataFrame, stats: ReleaseStatistics, selection: Selection, decon: dict, rejects: int, files: dict
) -> dict:
    """The release manifest: name, version, schema, input fingerprint, config, counts, sources and files."""
    return {
        "name": config.name,
        "version": config.version,
        "release_schema_version": RELEASE_SCHEMA_VERSION,
        "input_fingerprint": fingerprint,
        "config": config.model_dump(exclude={"base_dir"}),
        "counts": {"records": df.height, "images": stats.images, "rois": stats.rois, "per_split": {k: v["records"] for k, v in stats.splits.items()}},
        "sources": [s.__dict__ for s in selection.sources],
        "decontamination": decon,
        "rejects": rejects,
        "quarantined": selection.quarantine,
        "files": {**files, "card": CARD_FILE, "licence": LICENSE_FILE, "gallery": GALLERY_FILE, "figure": STATISTICS_FIGURE, "webdataset_index": wds.INDEX_FILE},
    }


def build_release(storage: MedtrinityStorage, config: ReleaseConfig, catalog: Catalog) -> ReleaseResult:
    """Build, write and verify one release (see the module docstring)."""
    names = config.source_names(catalog)
    benchmarks_at = config.benchmark_paths()  # fail on a missing folder before any work
    triplets, fingerprint = load_triplets(storage, names)
    selection = select_records(triplets, config, catalog)
    records = drop_duplicate_images(storage, selection.records) if config.duplicates == "drop" else selection.records
    _check_not_empty(records, config, names, selection)
    writer = ReleaseWriter(storage, release_prefix(config.name))

    records, images, decon, matches = decontaminate(storage, writer, records, config, benchmarks_at)
    overlay_uris = [u for u in records["overlay_uri"].drop_nulls().to_list() if u not in images]
    overlays = copy_files(storage, writer, overlay_uris, with_phash=False)

    records = add_splits(records, config.splits.as_dict(), config.split_salt, config.group_patterns)
    conflicts = groups_in_several_splits(records)
    df = release_frame(records, images, overlays)

    files = write_split_tables(storage, writer, df)
    shards = write_webdataset(storage, writer, df, config)
    files["n_shards"] = len(shards)

    if not matches.is_empty():
        writer.write(BENCHMARK_MATCHES, parquet_bytes(matches.sort("image_id", "distance")))
    writer.write_json(DECONTAMINATION_REPORT, decon)

    sampled = sample_records(df, config.gallery_samples, salt=config.split_salt)
    files["gallery_samples"] = sampled.height
    writer.write_text(GALLERY_FILE, render_gallery(sampled, config.title or config.name, df.height))

    stats = release_statistics(df)
    figure = statistics_figure(stats, config.title or config.name)
    writer.write(STATISTICS_FIGURE, figure)
    rejects = load_rejects(storage, [s.name for s in selection.sources if s.status == "included"])
    card = render_card(config, stats, selection.sources, selection.quarantine, rejects, decon, files, fingerprint, writer.sizes)
    writer.write_text(CARD_FILE, card)
    writer.write_text(LICENSE_FILE, license_markdown(config, selection.sources))

    writer.write_json(RELEASE_MANIFEST, release_manifest(config, fingerprint, df, stats, selection, decon, rejects.height, files))
    stale = writer.finish()
    verification = verify_release(storage, config.name)
    return ReleaseResult(
        name=config.name,
        uri=writer.uri(),
        records=df,
        statistics=stats,
        decontamination=decon,
        selection=selection,
        card_markdown=card,
        figure_png=figure,
        files=files,
        shards=shards,
        verification=verification,
        input_fingerprint=fingerprint,
        stale_removed=stale,
        total_bytes=writer.total_bytes(),
        split_conflicts=conflicts,
    )
