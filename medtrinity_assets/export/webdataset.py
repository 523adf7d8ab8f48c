"""WebDataset tar shards (image + overlay + JSON per sample), a shard index, checksums, read-back.

Layout under ``webdataset/``::

    <split>-00000.tar ...   samples: <key>.png (clean image), <key>.overlay.png, <key>.json (the record)
    index.json              {"shards": [{"file", "split", "n_samples", "bytes", "sha256"}], "splits": {...}}
    SHA256SUMS              ``sha256sum -c`` format, one line per shard

A sample key is the first 20 hex digits of sha1(sample_id) (WebDataset keys may not contain
dots). Tar members are written in a fixed order with fixed metadata, so the same records give
byte-identical shards. `verify_shards` reads every shard back: checksums, member layout,
sample counts, JSON, and every image decodes at the size its JSON states (identical bytes are
decoded once).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from PIL import Image

from .writer import checksum_lines, parse_checksum_lines, sha256_hex

WDS_DIR = "webdataset"
INDEX_FILE = f"{WDS_DIR}/index.json"
SUMS_FILE = f"{WDS_DIR}/SHA256SUMS"
TAR_MTIME = 1_700_000_000  # fixed member mtime: identical inputs give identical shards
MEMBER_SUFFIXES = ("png", "overlay.png", "json")


def sample_key(sample_id: str) -> str:
    return hashlib.sha1(sample_id.encode("utf-8")).hexdigest()[:20]


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.tar"


@dataclass
class WdsSample:
    """One sample: the record (JSON-serialisable), its clean image and overlay bytes."""

    key: str
    record: dict
    image: bytes
    overlay: bytes


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def tar_samples(samples: Iterable[WdsSample]) -> bytes:
    """A tar (ustar) holding the samples in order, members ``<key>.png``, ``.overlay.png``, ``.json``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in samples:
            _member(tar, f"{s.key}.png", s.image)
            _member(tar, f"{s.key}.overlay.png", s.overlay)
            _member(tar, f"{s.key}.json", json.dumps(s.record, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return buf.getvalue()


def sample_bytes(s: WdsSample) -> int:
    return len(s.image) + len(s.overlay) + 2048  # + JSON and tar headers, roughly


def cut_shards(samples: Iterable[WdsSample], max_samples: int, max_bytes: int) -> Iterator[list[WdsSample]]:
    """Consecutive groups of samples, each within max_samples and (unless one sample is larger) max_bytes."""
    batch: list[WdsSample] = []
    size = 0
    for s in samples:
        b = sample_bytes(s)
        if batch and (len(batch) >= max_samples or size + b > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(s)
        size += b
    if batch:
        yield batch


@dataclass
class ShardEntry:
    file: str  # relative to webdataset/
    split: str
    n_samples: int
    bytes: int
    sha256: str


def shard_index(entries: list[ShardEntry], release: str) -> dict:
    """index.json content: every shard, and per split the shard count, samples and brace URL pattern."""
    splits: dict[str, dict] = {}
    for e in entries:
        s = splits.setdefault(e.split, {"n_shards": 0, "n_samples": 0, "files": []})
        s["n_shards"] += 1
        s["n_samples"] += e.n_samples
        s["files"].append(e.file)
    for name, s in splits.items():
        s["urls"] = f"{name}-{{00000..{s['n_shards'] - 1:05d}}}.tar"
        del s["files"]
    return {
        "format": "webdataset",
        "release": release,
        "members": {"png": "clean image", "overlay.png": "image with the ROI contour", "json": "the record (release schema)"},
        "shards": [e.__dict__ for e in entries],
        "splits": splits,
    }


def shard_sums(entries: list[ShardEntry]) -> str:
    return checksum_lines({e.file: e.sha256 for e in entries})


@dataclass
class WdsVerification:
    """What reading every shard back found; `ok` when no problem."""

    n_shards: int = 0
    n_samples: int = 0
    n_images_decoded: int = 0
    per_split: dict[str, int] = field(default_factory=dict)
    sample_ids: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    decoded: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)  # sha256 -> size: same bytes decode once

    @property
    def ok(self) -> bool:
        return not self.problems


def _decode(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size


def verify_tar(data: bytes, entry: ShardEntry, report: WdsVerification) -> None:
    """Check one shard's members: complete samples, parseable JSON, images decode at the stated size."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as exc:
        report.problems.append(f"{entry.file}: not a tar ({exc})")
        return
    samples: dict[str, dict[str, bytes]] = {}
    order: list[str] = []
    with tar:
        for m in tar.getmembers():
            if not m.isfile():
                report.problems.append(f"{entry.file}: member {m.name} is not a file")
                continue
            key, _, suffix = m.name.partition(".")
            if suffix not in MEMBER_SUFFIXES:
                report.problems.append(f"{entry.file}: unexpected member {m.name}")
                continue
            if key not in samples:
                if key in order:
                    report.problems.append(f"{entry.file}: members of {key} are not contiguous")
                samples[key] = {}
                order.append(key)
            f = tar.extractfile(m)
            samples[key][suffix] = f.read() if f else b""
    if len(samples) != entry.n_samples:
        report.problems.append(f"{entry.file}: {len(samples)} samples, index says {entry.n_samples}")
    for key, members in samples.items():
        missing = [s for s in MEMBER_SUFFIXES if s not in members]
        if missing:
            report.problems.append(f"{entry.file}: sample {key} lacks {', '.join(missing)}")
            continue
        try:
            record = json.loads(members["json"])
        except json.JSONDecodeError as exc:
            report.problems.append(f"{entry.file}: {key}.json is not JSON ({exc})")
            continue
        sid = record.get("sample_id", "")
        if sample_key(sid) != key:
            report.problems.append(f"{entry.file}: key {key} does not belong to sample {sid!r}")
        if sid in report.sample_ids:
            report.problems.append(f"{entry.file}: sample {sid} appears twice")
        report.sample_ids.add(sid)
        if record.get("split") != entry.split:
            report.problems.append(f"{entry.file}: sample {sid} has split {record.get('split')!r}")
        for suffix, sha_field in (("png", "image_sha256"), ("overlay.png", "overlay_sha256")):
            digest = sha256_hex(members[suffix])
            if digest not in report.decoded:
                try:
                    report.decoded[digest] = _decode(members[suffix])
                except Exception as exc:  # any decoder failure is a broken sample
                    report.problems.append(f"{entry.file}: {key}.{suffix} does not decode ({exc})")
                    continue
            size = report.decoded[digest]
            report.n_images_decoded += 1
            if record.get(sha_field) and digest != record[sha_field]:
                report.problems.append(f"{entry.file}: {key}.{suffix} differs from its {sha_field}")
            if suffix == "png" and list(size) != [record.get("width"), record.get("height")]:
                report.problems.append(f"{entry.file}: {key}.png is {size}, record says {record.get('width')}x{record.get('height')}")
    report.n_samples += len(samples)
    report.per_split[entry.split] = report.per_split.get(entry.split, 0) + len(samples)


def verify_shards(read: Callable[[str], bytes]) -> WdsVerification:
    """Read index, checksums and every shard back through `read(relative path)`; collect problems."""
    report = WdsVerification()
    try:
        index = json.loads(read(INDEX_FILE))
        sums = parse_checksum_lines(read(SUMS_FILE).decode("utf-8"))
    except Exception as exc:  # missing or unreadable index is itself the finding
        report.problems.append(f"cannot read shard index or checksums: {exc}")
        return report
    entries = [ShardEntry(**e) for e in index.get("shards", [])]
    listed = {e.file for e in entries}
    if set(sums) != listed:
        report.problems.append(f"SHA256SUMS lists {sorted(set(sums) ^ listed)} differently from index.json")
    for e in entries:
        try:
            data = read(f"{WDS_DIR}/{e.file}")
        except Exception as exc:
            report.problems.append(f"{e.file}: listed but cannot be read ({exc})")
            continue
        digest = sha256_hex(data)
        if digest != e.sha256 or digest != sums.get(e.file):
            report.problems.append(f"{e.file}: sha256 {digest} does not match the index/SHA256SUMS")
        if len(data) != e.bytes:
            report.problems.append(f"{e.file}: {len(data)} bytes, index says {e.bytes}")
        verify_tar(data, e, report)
        report.n_shards += 1
    declared = sum(e.n_samples for e in entries)
    if report.n_samples != declared:
        report.problems.append(f"read {report.n_samples} samples, index declares {declared}")
    return report
