"""PNG encoding determinism, pixel hashes, exact and near-duplicate flags."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from PIL import Image

from medtrinity_assets.ingest import dedup_flags, encode_png, near_duplicate, pixel_hashes
from medtrinity_assets.ingest.hashing import phash_distance


def _image(seed: int, shape=(96, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 16, shape[1] // 16), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def test_encode_png_is_deterministic_and_lossless():
    grey = _image(1)
    rgb = np.stack([grey, grey[::-1], 255 - grey], axis=-1)
    for pixels in (grey, rgb):
        a, b = encode_png(pixels), encode_png(pixels.copy())
        assert a == b
        back = np.asarray(Image.open(io.BytesIO(a)))
        assert np.array_equal(back, pixels)
        assert b"tEXt" not in a and b"tIME" not in a and b"iTXt" not in a  # no metadata chunks
    assert encode_png(grey) != encode_png(grey[:, ::-1])
    with pytest.raises(ValueError):
        encode_png(grey.astype(np.uint16))


def test_pixel_hashes():
    grey = _image(2)
    sha, ph = pixel_hashes(grey)
    assert len(sha) == 64 and len(ph) == 16
    assert pixel_hashes(grey.copy()) == (sha, ph)
    assert pixel_hashes(grey.reshape(-1, 64))[0] != sha  # shape is part of the hash
    brighter = np.clip(grey.astype(int) + 3, 0, 255).astype(np.uint8)
    sha2, ph2 = pixel_hashes(brighter)
    assert sha2 != sha
    assert near_duplicate(ph, ph2)
    other = pixel_hashes(_image(99))[1]
    assert not near_duplicate(ph, other)
    assert phash_distance(ph, ph) == 0
    assert near_duplicate("ffffffffffffffff", "fffffffffffffff0", max_distance=4)
    assert not near_duplicate("ffffffffffffffff", "ffffffffffffff00", max_distance=4)


def test_dedup_flags_exact_and_near_within_and_across_sources():
    a = _image(3)
    a_resized = np.asarray(Image.fromarray(a).resize((64, 48), Image.Resampling.BILINEAR))  # same picture, smaller
    b = _image(4)
    rows = []
    for image_id, pixels in (
        ("src1/a", a),
        ("src1/b", b),
        ("src2/a_copy", a.copy()),
        ("src2/a_small", a_resized),
        ("src2/b_copy", b.copy()),
        ("src2/c", _image(5)),
    ):
        sha, ph = pixel_hashes(pixels)
        rows.append({"image_id": image_id, "image_sha256": sha, "image_phash": ph})
    flags = dedup_flags(pl.DataFrame(rows))
    got = {r["image_id"]: (r["exact_duplicate"], r["near_duplicate"], r["duplicate_of"]) for r in flags.to_dicts()}
    assert got == {
        "src1/a": (False, False, None),
        "src1/b": (False, False, None),
        "src2/a_copy": (True, False, "src1/a"),
        "src2/a_small": (False, True, "src1/a"),
        "src2/b_copy": (True, False, "src1/b"),
        "src2/c": (False, False, None),
    }
    assert flags.columns[:3] == ["image_id", "image_sha256", "image_phash"]


def test_dedup_flags_first_occurrence_kept_and_plain_column_names():
    df = pl.DataFrame(
        {
            "image_id": ["x", "y", "z", "w"],
            "sha256": ["s1", "s2", "s3", "s1"],
            "phash": ["ffffffffffffffff", "fffffffffffffff0", "0000000000000000", "ffffffffffffffff"],
        }
    )
    flags = dedup_flags(df)
    assert flags["duplicate_of"].to_list() == [None, "x", None, "x"]
    assert flags["phash_distance"].to_list() == [None, 4, None, 0]
    strict = dedup_flags(df, max_distance=2)
    assert strict["duplicate_of"].to_list() == [None, None, None, "x"]
    assert dedup_flags(df.head(0)).height == 0
