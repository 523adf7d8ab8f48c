"""WebDataset shards: deterministic bytes, index and checksums, and read-back that catches damage."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
from PIL import Image

from medtrinity_assets.export import webdataset as wds
from medtrinity_assets.export.writer import sha256_hex


def _png(seed: int, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _samples(split: str, n: int) -> list[wds.WdsSample]:
    out = []
    for i in range(n):
        sid = f"src/{split}/img{i}#00{i % 3}"
        image, overlay = _png(i), _png(1000 + i)
        record = {"sample_id": sid, "split": split, "width": 40, "height": 30, "image_sha256": sha256_hex(image), "overlay_sha256": sha256_hex(overlay)}
        out.append(wds.WdsSample(wds.sample_key(sid), record, image, overlay))
    return out


def _write(files: dict[str, bytes], samples_by_split: dict[str, list[wds.WdsSample]], max_samples: int) -> list[wds.ShardEntry]:
    entries = []
    for split, samples in samples_by_split.items():
        for i, batch in enumerate(wds.cut_shards(samples, max_samples, 1 << 30)):
            data = wds.tar_samples(batch)
            name = wds.shard_name(split, i)
            files[f"{wds.WDS_DIR}/{name}"] = data
            entries.append(wds.ShardEntry(name, split, len(batch), len(data), sha256_hex(data)))
    files[wds.INDEX_FILE] = json.dumps(wds.shard_index(entries, "t")).encode()
    files[wds.SUMS_FILE] = wds.shard_sums(entries).encode()
    return entries


def test_shards_round_trip_with_index_and_checksums():
    files: dict[str, bytes] = {}
    entries = _write(files, {"train": _samples("train", 7), "val": _samples("val", 2)}, max_samples=3)
    assert [e.file for e in entries] == ["train-00000.tar", "train-00001.tar", "train-00002.tar", "val-00000.tar"]
    assert [e.n_samples for e in entries] == [3, 3, 1, 2]
    index = json.loads(files[wds.INDEX_FILE])
    assert index["splits"]["train"] == {"n_shards": 3, "n_samples": 7, "urls": "train-{00000..00002}.tar"}
    # members: <key>.png, <key>.overlay.png, <key>.json, grouped per sample (what webdataset expects)
    with tarfile.open(fileobj=io.BytesIO(files["webdataset/train-00000.tar"])) as tar:
        names = tar.getnames()
    key = _samples("train", 1)[0].key
    assert names[:3] == [f"{key}.png", f"{key}.overlay.png", f"{key}.json"]
    report = wds.verify_shards(files.__getitem__)
    assert report.ok, report.problems
    assert report.n_shards == 4 and report.n_samples == 9 and report.n_images_decoded == 18
    assert report.per_split == {"train": 7, "val": 2}
    # same samples, same bytes
    again: dict[str, bytes] = {}
    _write(again, {"train": _samples("train", 7), "val": _samples("val", 2)}, max_samples=3)
    assert again == files


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
    bad[1] = wds.WdsSample(bad[1].key, bad[1].record, b"\x89PNG\r\n\x1a\ngarbage", bad[1].overlay)
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
    assert any("2 samples, index says 5" in p for p in report.problems)
