"""Decontamination: a re-encoded, resized copy of a real image is found; distinct images are not."""

from __future__ import annotations

import io
import random
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from medtrinity_assets.export.decontamination import (
    PhashIndex,
    apply_decontamination,
    decontamination_report,
    find_benchmark_matches,
    hamming,
    hash_benchmark,
    phash_hex,
)

REPO = Path(__file__).resolve().parents[1]
SAM = REPO / "data" / "sources" / "sam_med2d_demo" / "images"
CXR = REPO / "data" / "sources" / "torchxrayvision_cxr" / "images"


def _reencoded(path: Path, scale: float = 0.6, quality: int = 70) -> bytes:
    img = Image.open(path).convert("RGB")
    img = img.resize((int(img.width * scale), int(img.height * scale)), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_index_finds_exactly_what_brute_force_finds():
    rng = random.Random(0)
    stored = [rng.getrandbits(64) for _ in range(400)]
    # near copies of some stored hashes (1-6 bits flipped) and unrelated queries
    queries = []
    for v in stored[:60]:
        for b in rng.sample(range(64), rng.randint(0, 6)):
            v ^= 1 << b
        queries.append(v)
    queries += [rng.getrandbits(64) for _ in range(100)]
    for max_d in (0, 4, 6):
        index = PhashIndex(max_d)
        for v in stored:
            index.add(f"{v:016x}")
        for q in queries:
            expected = sorted((i, hamming(q, v)) for i, v in enumerate(stored) if hamming(q, v) <= max_d)
            assert sorted(index.query(f"{q:016x}")) == expected


def test_planted_benchmark_duplicate_is_caught_and_distinct_images_are_not(tmp_path):
    release_images = sorted(SAM.glob("*.png"))
    assert len(release_images) >= 4
    bench = tmp_path / "vqa_rad_test"
    (bench / "sub").mkdir(parents=True)
    planted = release_images[2]
    (bench / "sub" / "synpic_0001.jpg").write_bytes(_reencoded(planted))
    for i, p in enumerate(sorted(CXR.glob("*.png"))[:3]):  # unrelated radiographs
        (bench / f"cxr_{i}.png").write_bytes(p.read_bytes())
    (bench / "broken.jpg").write_bytes(b"not an image")
    (bench / "truncated.png").write_bytes(planted.read_bytes()[:200])  # a PNG header, then nothing
    (bench / "notes.txt").write_text("ignored: not an image suffix")

    hashes = hash_benchmark("vqa_rad", bench)
    assert hashes.unreadable == ["broken.jpg", "truncated.png"]
    assert len(hashes.files) == 4

    release = {f"sam/{p.stem}": phash_hex(p.read_bytes()) for p in release_images}
    matches = find_benchmark_matches(release, [hashes], max_distance=4)
    assert matches["image_id"].to_list() == [f"sam/{planted.stem}"]
    assert matches["benchmark_file"].to_list() == ["sub/synpic_0001.jpg"]
    assert matches["distance"][0] <= 4

    records = pl.DataFrame({"image_id": [f"sam/{p.stem}" for p in release_images for _ in range(2)], "sample_id": [f"{p.stem}#{k}" for p in release_images for k in range(2)]})
    dropped = apply_decontamination(records, matches, "drop")
    assert dropped.height == records.height - 2 and f"sam/{planted.stem}" not in dropped["image_id"].to_list()
    flagged = apply_decontamination(records, matches, "flag")
    assert flagged.height == records.height
    hit = flagged.filter(pl.col("benchmark_match").is_not_null())
    assert set(hit["image_id"]) == {f"sam/{planted.stem}"} and hit["benchmark_match"][0] == "vqa_rad:sub/synpic_0001.jpg"

    report = decontamination_report([hashes], matches, records, "drop")
    assert report["benchmarks"]["vqa_rad"] == {
        "folder": str(bench),
        "benchmark_images": 4,
        "unreadable_files": 2,
        "matched_release_images": 1,
        "matched_records": 2,
        "matched_benchmark_images": 1,
    }


def test_no_benchmarks_means_no_matches_and_bad_action_is_refused():
    empty = find_benchmark_matches({"a": "0" * 16}, [], 4)
    assert empty.is_empty()
    records = pl.DataFrame({"image_id": ["a"], "sample_id": ["a#0"]})
    assert apply_decontamination(records, empty, "drop").height == 1
    with pytest.raises(ValueError, match="drop' or 'flag"):
        apply_decontamination(records, empty, "remove")
