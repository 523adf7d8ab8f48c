"""Cross-source duplicate report: exact copies and re-encoded near copies are found; the first
image (in source, image id order) is the one kept."""

from __future__ import annotations

import numpy as np
import polars as pl
from PIL import Image

from medtrinity_assets.ingest import pixel_hashes
from medtrinity_assets.stages.duplicates import find_duplicates

REPO_IMG = "data/sources/torchxrayvision_cxr/images/h0001.png"


def _row(image_id: str, dataset: str, pixels: np.ndarray) -> dict:
    sha, phash = pixel_hashes(pixels)
    return {"image_id": image_id, "dataset": dataset, "image_sha256": sha, "image_phash": phash}


def test_exact_and_near_duplicates_across_sources():
    from pathlib import Path

    base = np.asarray(Image.open(Path(__file__).resolve().parents[1] / REPO_IMG).convert("L"))
    near = np.asarray(Image.fromarray(base).resize((base.shape[1] - 7, base.shape[0] - 7)).resize(base.shape[::-1]))
    other = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "data/sources/torchxrayvision_cxr/images/tb0005.png").convert("L"))
    images = pl.DataFrame(
        [
            _row("a_src/h0001", "a_src", base),
            _row("b_src/copy", "b_src", base.copy()),
            _row("c_src/resized", "c_src", near),
            _row("c_src/other", "c_src", other),
        ]
    )
    dups = find_duplicates(images).sort("image_id")
    assert dups["image_id"].to_list() == ["b_src/copy", "c_src/resized"]
    assert dups["duplicate_of"].to_list() == ["a_src/h0001", "a_src/h0001"]
    assert dups["kind"].to_list() == ["exact", "near"]
    assert (dups["duplicate_of_dataset"] == "a_src").all()
    assert find_duplicates(images.filter(pl.col("image_id") != "b_src/copy").filter(pl.col("image_id") != "c_src/resized")).is_empty()


def test_release_drops_duplicate_images_unless_kept(tmp_path):
    from medtrinity_assets.export.release import drop_duplicate_images
    from medtrinity_resources.storage import MedtrinityStorage

    storage = MedtrinityStorage(root=str(tmp_path))
    records = pl.DataFrame({"image_id": ["a_src/h0001", "b_src/copy", "c_src/other"], "caption": ["x", "y", "z"]})
    assert drop_duplicate_images(storage, records).height == 3  # no report yet: nothing to drop
    storage.write_parquet(
        "manifests/image_duplicates/all.parquet",
        pl.DataFrame({"image_id": ["b_src/copy"], "duplicate_of": ["a_src/h0001"]}),
    )
    assert drop_duplicate_images(storage, records)["image_id"].to_list() == ["a_src/h0001", "c_src/other"]
