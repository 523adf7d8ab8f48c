"""WebDataset shards: deterministic bytes, index and checksums, and read-back that catches damage."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from medtrinity_assets.export import webdataset as wds
from medtrinity_assets.export.writer import sha256_hex


def _png(seed: int, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _samples(split: str, n: int) -> list[wds.WdsSample]:
    """n images; image i has i % 3 + 1 records: ROI records with their own overlays, and for every
    third image a whole-image record (no overlay of its own)."""
    out = []
    for i in range(n):
        image_id = f"src/{split}/img{i}"
        image = _png(i)
        records, overlays = [], []
        for j in range(i % 3 + 1):
            whole = i % 3 == 0
            overlay = None if whole else _png(1000 * (j + 1) + i)
            sid = f"{image_id}#whole" if whole else f"{image_id}#{j:03d}"
            records.append({"sample_id": sid, "image_id": image_id, "split": split, "width": 40, "height": 30, "caption": f"caption {i}.{j}\nsecond line",
                            "image_sha256": sha256_hex(image), "overlay_sha256": sha256_hex(overlay if overlay else image)})
            overlays.append(overlay)
        out.append(wds.WdsSample(wds.sample_key(image_id), image_id, records, image, overlays))
    return out


def _write(files: dict[str, bytes], samples_by_split: dict[str, list[wds.WdsSample]], max_samples: int) -> list[wds.ShardEntry]:
    entries = []
    for split, samples in samples_by_split.items():
        for i, batch in enumerate(wds.cut_shards(samples, max_samples, 1 << 30)):
            data = wds.tar_samples(batch)
            name = wds.shard_name(split, i)
            files[f"{wds.WDS_DIR}/{name}"] = data
            entries.append(wds.ShardEntry(name, split, len(batch), len(data), sha256_hex(data), sum(len(x.records) for x in batch)))
    files[wds.INDEX_FILE] = json.dumps(wds.shard_index(entries, "t")).encode()
    files[wds.SUMS_FILE] = wds.shard_sums(entries).encode()
    return entries


def test_shards_round_trip_with_index_and_checksums():
    files: dict[str, bytes] = {}
    # train: 7 images with 1,2,3,1,2,3,1 = 13 records; shards cut at 4 records (an image is never split)
    entries = _write(files, {"train": _samples("train", 7), "validation": _samples("validation", 2)}, max_samples=4)
    assert [e.file for e in entries] == ["train-00000.tar", "train-00001.tar", "train-00002.tar", "train-00003.tar", "validation-00000.tar"]
    assert [(e.n_samples, e.n_records) for e in entries] == [(2, 3), (2, 4), (1, 2), (2, 4), (2, 3)]
    index = json.loads(files[wds.INDEX_FILE])
    assert index["splits"]["train"] == {"n_shards": 4, "n_samples": 7, "n_records": 13, "urls": "train-{00000..00003}.tar"}
    # one sample per image: the clean image once, captions as .txt, per-record caption and overlay
    with tarfile.open(fileobj=io.BytesIO(files["webdataset/train-00000.tar"])) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        names = tar.getnames()
    first, second = _samples("train", 2)
    assert names[:4] == [f"{first.key}.png", f"{first.key}.txt", f"{first.key}.json", f"{first.key}.000.txt"]  # whole-image record: no overlay
    assert [n for n in names if n.startswith(second.key)] == [
        f"{second.key}.png", f"{second.key}.txt", f"{second.key}.json",
        f"{second.key}.000.txt", f"{second.key}.000.overlay.png", f"{second.key}.001.txt", f"{second.key}.001.overlay.png",
    ]
    assert members[f"{second.key}.txt"].decode() == "caption 1.0 second line\ncaption 1.1 second line"
    assert members[f"{second.key}.001.txt"].decode() == "caption 1.1 second line"
    assert [r["sample_id"] for r in json.loads(members[f"{second.key}.json"])["records"]] == ["src/train/img1#000", "src/train/img1#001"]
    report = wds.verify_shards(files.__getitem__)
    assert report.ok, report.problems
    # images decoded: 9 clean + one overlay per ROI record (train 13 - 3 whole, validation 3 - 1 whole)
    assert report.n_shards == 5 and report.n_samples == 9 and report.n_records == 16 and report.n_images_decoded == 9 + 10 + 2
    assert report.per_split == {"train": 13, "validation": 3}
    # same samples, same bytes
    again: dict[str, bytes] = {}
    _write(again, {"train": _samples("train", 7), "validation": _samples("validation", 2)}, max_samples=4)
    assert again == files


def test_webdataset_library_reads_png_txt_pairs(tmp_path):
    """The `webdataset` reader's `to_tuple("png", "txt")` works on the shards, if the library is installed."""
    webdataset = pytest.importorskip("webdataset")
    files: dict[str, bytes] = {}
    _write(files, {"train": _samples("train", 5)}, max_samples=100)
    (tmp_path / "train-00000.tar").write_bytes(files["webdataset/train-00000.tar"])
    pairs = list(webdataset.WebDataset(str(tmp_path / "train-00000.tar"), shardshuffle=False).decode("pil").to_tuple("png", "txt"))
    assert len(pairs) == 5 and all(isinstance(img, Image.Image) and img.size == (40, 30) for img, _ in pairs)
    assert pairs[2][1] == "caption 2.0 second line\ncaption 2.1 second line\ncaption 2.2 second line"


def test_png_txt_pairs_with_tarfile_grouping_like_webdataset():
    """Without the library: group members by key as WebDataset does (name up to the first dot) and
    check every sample has the `png` and `txt` members `to_tuple("png", "txt")` asks for."""
    files: dict[str, bytes] = {}
    _write(files, {"train": _samples("train", 5)}, max_samples=100)
    grouped: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(files["webdataset/train-00000.tar"])) as tar:
        for m in tar.getmembers():
            key, _, ext = m.name.partition(".")
            grouped.setdefault(key, {})[ext] = tar.extractfile(m).read()
    assert len(grouped) == 5
    for sample in grouped.values():
        Image.open(io.BytesIO(sample["png"])).load()
        doc = json.loads(sample["json"])
        assert sample["txt"].decode().split("\n") == [" ".join(r["caption"].split()) for r in doc["records"]]


def test_read_back_catches_damaged_missing_and_undecodable_shards():
    files: dict[str, bytes] = {}
    _write(files, {"train": _samples("train", 4)}, max_samples=2)

    damaged = dict(files)
    data = bytearray(damaged["webdataset/train-00001.tar"])
    data[700] ^= 0xFF
    damaged["webdataset/train-00001.tar"] = bytes(data)
    report = wds.verify_shards(damaged.__getitem__)
    assert any("train-00001.tar: sha256" in p for p in report.problems)

    missing = {k: v for k, v in files.items() if k != "webdataset/train-00000.tar"}
    report = wds.verify_shards(missing.__getitem__)
    assert any("train-00000.tar: listed but cannot be read" in p for p in report.problems)

    # a shard whose image does not decode, with an index that agrees with its bytes
    bad = _samples("train", 2)
    bad[1] = wds.WdsSample(bad[1].key, bad[1].image_id, bad[1].records, b"\x89PNG\r\n\x1a\ngarbage", bad[1].overlays)
    broken: dict[str, bytes] = {}
    tar_bytes = wds.tar_samples(bad)
    entry = wds.ShardEntry("train-00000.tar", "train", 2, len(tar_bytes), sha256_hex(tar_bytes))
    broken["webdataset/train-00000.tar"] = tar_bytes
    broken[wds.INDEX_FILE] = json.dumps(wds.shard_index([entry], "t")).encode()
    broken[wds.SUMS_FILE] = wds.shard_sums([entry]).encode()
    report = wds.verify_shards(broken.__getitem__)
    assert any(".png does not decode" in p for p in report.problems), report.problems

    # the index claims more samples than the shard holds
    lying = dict(files)
    index = json.loads(lying[wds.INDEX_FILE])
    index["shards"][0]["n_samples"] = 5
    lying[wds.INDEX_FILE] = json.dumps(index).encode()
    report = wds.verify_shards(lying.__getitem__)
    assert any("1 samples, index says 5" in p for p in report.problems)

    # a sample whose .txt does not hold its records' captions
    wrong = _samples("train", 2)
    wrong[1].records[0]["caption"] = "another caption"
    tar_bytes = wds.tar_samples(wrong)
    wrong[1].records[0]["caption"] = "caption 1.0\nsecond line"
    doc = json.dumps({"image_id": wrong[1].image_id, "records": wrong[1].records}, ensure_ascii=False, sort_keys=True).encode()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        rebuilt = io.BytesIO()
        with tarfile.open(fileobj=rebuilt, mode="w", format=tarfile.USTAR_FORMAT) as out:
            for m in tar.getmembers():
                data = tar.extractfile(m).read()
                if m.name == f"{wrong[1].key}.json":
                    data, m.size = doc, len(doc)
                out.addfile(m, io.BytesIO(data))
    tar_bytes = rebuilt.getvalue()
    entry = wds.ShardEntry("train-00000.tar", "train", 2, len(tar_bytes), sha256_hex(tar_bytes), 3)
    stale = {"webdataset/train-00000.tar": tar_bytes, wds.INDEX_FILE: json.dumps(wds.shard_index([entry], "t")).encode(), wds.SUMS_FILE: wds.shard_sums([entry]).encode()}
    report = wds.verify_shards(stale.__getitem__)
    assert any(f"{wrong[1].key}.txt does not hold the records' captions" in p for p in report.problems), report.problems
