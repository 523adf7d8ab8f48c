"""WebDataset tar shards, one sample per image with all its ROI records; index, checksums, read-back.

Layout under ``webdataset/``::

    <split>-00000.tar ...   one sample per image (key = sample_key(image_id)):
                              <key>.png              clean image, stored once
                              <key>.txt              the captions of the image's records, one line each
                              <key>.json             {"image_id", "records": [record, ...]} (release schema)
                              <key>.<nnn>.txt        caption of record nnn
                              <key>.<nnn>.overlay.png  image with record nnn's ROI contour (ROI records only)
    index.json              {"shards": [{"file", "split", "n_samples", "n_records", "bytes", "sha256"}], "splits": {...}}
    SHA256SUMS              ``sha256sum -c`` format, one line per shard

``to_tuple("png", "txt")`` gives (clean image, its captions); per-record pairs are
``(<nnn>.overlay.png, <nnn>.txt)`` or the ``records`` list of the JSON. Grouping stores each
clean image once instead of once per ROI record (measured sizes in docs/record_schema.md).
A sample key is the first 20 hex digits of sha1(image_id) (WebDataset keys may not contain
dots). Tar members are written in a fixed order with fixed metadata, so the same records give
byte-identical shards. `verify_shards` reads every shard back: checksums, member layout,
sample and record counts, JSON, captions, and every image decodes at the size its JSON states
(identical bytes are decoded once).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from PIL import Image

from .writer import checksum_lines, parse_checksum_lines, sha256_hex

WDS_DIR = "webdataset"
INDEX_FILE = f"{WDS_DIR}/index.json"
SUMS_FILE = f"{WDS_DIR}/SHA256SUMS"
TAR_MTIME = 1_700_000_000  # fixed member mtime: identical inputs give identical shards
RECORD_MEMBER = re.compile(r"^(?P<n>\d{3})\.(?P<kind>txt|overlay\.png)$")


def sample_key(image_id: str) -> str:
    return hashlib.sha1(image_id.encode("utf-8")).hexdigest()[:20]


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.tar"


def caption_line(caption: str | None) -> str:
    return " ".join((caption or "").split())


@dataclass
class WdsSample:
    """One image: its records (JSON-serialisable, in order), clean image bytes, and per record the
    overlay bytes (None for a record without its own overlay: whole-image records)."""

    key: str
    image_id: str
    records: list[dict]
    image: bytes
    overlays: list[bytes | None]


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def tar_samples(samples: Iterable[WdsSample]) -> bytes:
    """A tar (ustar) holding the samples in order, members as in the module docstring."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in samples:
            _member(tar, f"{s.key}.png", s.image)
            _member(tar, f"{s.key}.txt", "\n".join(caption_line(r.get("caption")) for r in s.records).encode("utf-8"))
            doc = {"image_id": s.image_id, "records": s.records}
            _member(tar, f"{s.key}.json", json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8"))
            for i, (r, overlay) in enumerate(zip(s.records, s.overlays, strict=True)):
                _member(tar, f"{s.key}.{i:03d}.txt", caption_line(r.get("caption")).encode("utf-8"))
                if overlay is not None:
                    _member(tar, f"{s.key}.{i:03d}.overlay.png", overlay)
    return buf.getvalue()


def sample_bytes(s: WdsSample) -> int:
    return len(s.image) + sum(len(o) for o in s.overlays if o) + 2048 * (1 + len(s.records))  # + JSON, text and tar headers, roughly


def cut_shards(samples: Iterable[WdsSample], max_samples: int, max_bytes: int) -> Iterator[list[WdsSample]]:
    """Consecutive groups of samples, each within max_samples records and (unless one sample is larger) max_bytes."""
    batch: list[WdsSample] = []
    size = records = 0
    for s in samples:
        b = sample_bytes(s)
        if batch and (records + len(s.records) > max_samples or size + b > max_bytes):
            yield batch
            batch, size, records = [], 0, 0
        batch.append(s)
        size += b
        records += len(s.records)
    if batch:
        yield batch


@dataclass
class ShardEntry:
    file: str  # relative to webdataset/
    split: str
    n_samples: int  # images
    bytes: int
    sha256: str
    n_records: int = 0  # release records (ROI and whole-image) in those samples


def shard_index(entries: list[ShardEntry], release: str) -> dict:
    """index.json content: every shard, and per split the shard count, samples and brace URL pattern."""
    splits: dict[str, dict] = {}
    for e in entries:
        s = splits.setdefault(e.split, {"n_shards": 0, "n_samples": 0, "n_records": 0, "files": []})
        s["n_shards"] += 1
        s["n_samples"] += e.n_samples
        s["n_records"] += e.n_records
        s["files"].append(e.file)
    for name, s in splits.items():
        s["urls"] = f"{name}-{{00000..{s['n_shards'] - 1:05d}}}.tar"
        del s["files"]
    return {
        "format": "webdataset",
        "release": release,
        "members": {
            "png": "clean image (once per image)",
            "txt": "captions of the image's records, one line each",
            "json": '{"image_id", "records": [...]} (release schema)',
            "<nnn>.txt": "caption of record nnn",
            "<nnn>.overlay.png": "image with record nnn's ROI contour (ROI records)",
        },
        "shards": [e.__dict__ for e in entries],
        "splits": splits,
    }


def shard_sums(entries: list[ShardEntry]) -> str:
    return checksum_lines({e.file: e.sha256 for e in entries})


@dataclass
class WdsVerification:
    """What reading every shard back found; `ok` when no problem."""

    n_shards: int = 0
    n_samples: int = 0  # images
    n_records: int = 0
    n_images_decoded: int = 0
    per_split: dict[str, int] = field(default_factory=dict)  # records per split
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


def _check_image(report: WdsVerification, where: str, data: bytes, want_sha: str | None, sha_field: str) -> tuple[int, int] | None:
    digest = sha256_hex(data)
    if digest not in report.decoded:
        try:
            report.decoded[digest] = _decode(data)
        except Exception as exc:  # any decoder failure is a broken sample
            report.problems.append(f"{where} does not decode ({exc})")
            return None
    report.n_images_decoded += 1
    if want_sha and digest != want_sha:
        report.problems.append(f"{where} differs from its {sha_field}")
    return report.decoded[digest]


def _verify_sample(report: WdsVerification, entry: ShardEntry, key: str, members: dict[str, bytes]) -> int:
    """Check one sample's members against its JSON; returns the number of records it holds."""
    where = f"{entry.file}: {key}"
    missing = [m for m in ("png", "txt", "json") if m not in members]
    if missing:
        report.problems.append(f"{where} lacks {', '.join(missing)}")
        return 0
    try:
        doc = json.loads(members["json"])
        records = doc["records"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        report.problems.append(f"{where}.json is not a sample document ({exc})")
        return 0
    if sample_key(doc.get("image_id", "")) != key:
        report.problems.append(f"{where}: key does not belong to image {doc.get('image_id')!r}")
    captions = [caption_line(r.get("caption")) for r in records]
    if members["txt"].decode("utf-8", "replace") != "\n".join(captions):
        report.problems.append(f"{where}.txt does not hold the records' captions")
    expected = {"png", "txt", "json"}
    size = None
    for i, r in enumerate(records):
        sid = r.get("sample_id", "")
        if sid in report.sample_ids:
            report.problems.append(f"{entry.file}: record {sid} appears twice")
        report.sample_ids.add(sid)
        if r.get("split") != entry.split:
            report.problems.append(f"{entry.file}: record {sid} has split {r.get('split')!r}")
        if r.get("image_id") != doc.get("image_id"):
            report.problems.append(f"{entry.file}: record {sid} belongs to image {r.get('image_id')!r}, not {doc.get('image_id')!r}")
        n = f"{i:03d}"
        expected.add(f"{n}.txt")
        if members.get(f"{n}.txt", b"").decode("utf-8", "replace") != captions[i]:
            report.problems.append(f"{where}.{n}.txt is not record {sid}'s caption")
        if i == 0:
            size = _check_image(report, f"{where}.png", members["png"], r.get("image_sha256"), "image_sha256")
            if size is not None and list(size) != [r.get("width"), r.get("height")]:
                report.problems.append(f"{where}.png is {size}, record says {r.get('width')}x{r.get('height')}")
        elif r.get("image_sha256") and r.get("image_sha256") != sha256_hex(members["png"]):
            report.problems.append(f"{where}.png differs from record {sid}'s image_sha256")
        if r.get("overlay_sha256") and r.get("overlay_sha256") != r.get("image_sha256"):
            expected.add(f"{n}.overlay.png")
            if f"{n}.overlay.png" not in members:
                report.problems.append(f"{where} lacks {n}.overlay.png")
            else:
                _check_image(report, f"{where}.{n}.overlay.png", members[f"{n}.overlay.png"], r["overlay_sha256"], "overlay_sha256")
    for extra in sorted(set(members) - expected):
        report.problems.append(f"{where}: unexpected member .{extra}")
    return len(records)


def verify_tar(data: bytes, entry: ShardEntry, report: WdsVerification) -> None:
    """Check one shard's members: complete samples, parseable JSON, captions, images decode at the stated size."""
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
            if suffix not in ("png", "txt", "json") and not RECORD_MEMBER.match(suffix):
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
    n_records = sum(_verify_sample(report, entry, key, members) for key, members in samples.items())
    if entry.n_records and n_records != entry.n_records:
        report.problems.append(f"{entry.file}: {n_records} records, index says {entry.n_records}")
    report.n_samples += len(samples)
    report.n_records += n_records
    report.per_split[entry.split] = report.per_split.get(entry.split, 0) + n_records


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
