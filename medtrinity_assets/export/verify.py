"""Read a built release back: checksums of every file, both Parquet views (embedded image bytes
against their hashes), LLaVA JSON, every WebDataset shard; and the records of a built release."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import polars as pl

from medtrinity_assets.records import RejectError
from medtrinity_resources.storage import MedtrinityStorage

from . import webdataset as wds
from .hf import image_paths
from .schema import RELEASE_SCHEMA
from .writer import CHECKSUMS_FILE, parse_checksum_lines, release_prefix, sha256_hex

RELEASE_MANIFEST = "release.json"


class ReleaseError(RejectError):
    """A release that cannot be built (reason code + detail)."""


@dataclass
class ReleaseVerification:
    """Result of reading a release back; `ok` when nothing is wrong."""

    files_checked: int = 0
    records: int = 0
    per_split: dict[str, int] = field(default_factory=dict)
    llava_entries: int = 0
    wds: wds.WdsVerification | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_checksums(storage: MedtrinityStorage, prefix: str, skip: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    """Re-hash every file a ``checksums.sha256`` lists; report mismatches, missing and unlisted files."""
    problems = []
    try:
        listed = parse_checksum_lines(storage.read_bytes(prefix + CHECKSUMS_FILE).decode("utf-8"))
    except Exception as exc:
        return {}, [f"cannot read {prefix}{CHECKSUMS_FILE}: {exc}"]
    present = {k[len(prefix) :] for k in storage.list_keys(prefix)}
    for rel, digest in listed.items():
        if rel not in present:
            problems.append(f"{rel}: listed in {CHECKSUMS_FILE} but missing")
            continue
        if sha256_hex(storage.read_bytes(prefix + rel)) != digest:
            problems.append(f"{rel}: content does not match its checksum")
    for rel in sorted(present - set(listed) - {CHECKSUMS_FILE}):
        if not rel.startswith(skip):
            problems.append(f"{rel}: present but not listed in {CHECKSUMS_FILE}")
    return listed, problems


def _embedded_images(df: pl.DataFrame, col: str, sha_col: str | None, listed: dict[str, str], rel: str) -> list[str]:
    """Problems of one embedded ``Image`` column: bytes must hash to the record's hash and to the
    checksum of the release file its path names."""
    problems = []
    if not isinstance(df.schema.get(col), pl.Struct):
        return [f"{rel}: column {col} is not an embedded image (struct bytes+path)"]
    cols = [pl.col(col).struct.field("path").alias("path"), pl.col(col).struct.field("bytes").alias("bytes")]
    seen: set[tuple[str, str | None]] = set()
    for path, data, want in df.select(*cols, pl.col(sha_col) if sha_col else pl.lit(None).alias("want")).iter_rows():
        if (path, want) in seen:
            continue
        seen.add((path, want))
        digest = sha256_hex(data) if data is not None else None
        if digest is None or listed.get(path) != digest or (want is not None and want != digest):
            problems.append(f"{rel}: {col} {path}: embedded bytes missing or differ from the release file / record hash")
    return problems


def _verify_minimal(storage: MedtrinityStorage, prefix: str, rel: str, full: pl.DataFrame, listed: dict[str, str]) -> list[str]:
    try:
        mini = storage.read_parquet(prefix + rel)
    except Exception as exc:
        return [f"{rel}: cannot be read ({exc})"]
    if mini.columns != ["image", "id", "caption", "source"]:
        return [f"{rel}: columns {mini.columns}, expected image, id, caption, source"]
    problems = _embedded_images(mini, "image", None, listed, rel)
    want = full.select(pl.col("sample_id").alias("id"), "caption", pl.col("dataset").alias("source"), pl.col("image").struct.field("path").alias("path"))
    got = mini.select("id", "caption", "source", pl.col("image").struct.field("path").alias("path"))
    if not got.sort("id").equals(want.sort("id")):
        problems.append(f"{rel}: ids, captions, sources or image paths differ from the full view")
    return problems


def verify_release(storage: MedtrinityStorage, name: str) -> ReleaseVerification:
    """Read a release back: checksums of every file, record counts across Parquet views, LLaVA and
    WebDataset, embedded images of every record, and every shard (see `wds.verify_shards`)."""
    prefix = release_prefix(name)
    v = ReleaseVerification()
    listed, v.problems = verify_checksums(storage, prefix, skip=("vqa/",))
    v.files_checked = len(listed)
    try:
        manifest = json.loads(storage.read_bytes(prefix + RELEASE_MANIFEST))
    except Exception as exc:
        v.problems.append(f"cannot read {RELEASE_MANIFEST}: {exc}")
        return v
    ids: set[str] = set()
    for split, rel in manifest["files"]["parquet"].items():
        try:
            df = storage.read_parquet(prefix + rel)
        except Exception as exc:
            v.problems.append(f"{rel}: cannot be read ({exc})")
            continue
        v.per_split[split] = df.height
        v.records += df.height
        ids |= set(df["sample_id"].to_list())
        if set(df["split"].unique().to_list()) - {split}:
            v.problems.append(f"{rel}: holds records of another split")
        for col in ("image", "overlay"):
            v.problems += _embedded_images(df, col, f"{col}_sha256", listed, rel)
        mini = manifest["files"].get("parquet_minimal", {}).get(split)
        if mini is None:
            v.problems.append(f"no minimal view for split {split}")
        elif not any(p.startswith(rel) for p in v.problems):
            v.problems += _verify_minimal(storage, prefix, mini, df, listed)
        try:
            llava = json.loads(storage.read_bytes(prefix + manifest["files"]["llava"][split]))
        except Exception as exc:
            v.problems.append(f"{manifest['files']['llava'][split]}: cannot be read ({exc})")
            continue
        v.llava_entries += len(llava)
        if len(llava) != df.height or {e["id"] for e in llava} != set(df["sample_id"].to_list()):
            v.problems.append(f"{manifest['files']['llava'][split]}: {len(llava)} conversations for {df.height} records")
        for e in llava:
            if e["image"] not in listed:
                v.problems.append(f"llava entry {e['id']}: image {e['image']} not in the release")
    if v.records != manifest["counts"]["records"]:
        v.problems.append(f"Parquet holds {v.records} records, {RELEASE_MANIFEST} says {manifest['counts']['records']}")
    v.wds = wds.verify_shards(lambda rel: storage.read_bytes(prefix + rel))
    v.problems += [f"webdataset: {p}" for p in v.wds.problems]
    if v.wds.sample_ids != ids:
        v.problems.append(f"webdataset holds {len(v.wds.sample_ids)} samples, Parquet {len(ids)}; they differ")
    return v


def read_release_records(storage: MedtrinityStorage, name: str) -> pl.DataFrame:
    """Every record of a built release (all splits) from its full Parquet view, with ``image`` and
    ``overlay`` as release-relative paths (the embedded bytes are dropped)."""
    prefix = release_prefix(name)
    try:
        manifest = json.loads(storage.read_bytes(prefix + RELEASE_MANIFEST))
    except Exception as exc:
        raise ReleaseError("release_not_built", f"no release '{name}' at {storage.uri(prefix)}: materialise dataset_release first ({exc})") from None
    frames = [image_paths(pl.read_parquet(io.BytesIO(storage.read_bytes(prefix + rel)))) for rel in manifest["files"]["parquet"].values()]
    return pl.concat(frames) if frames else pl.DataFrame(schema=RELEASE_SCHEMA)
