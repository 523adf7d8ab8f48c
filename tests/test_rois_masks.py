"""rois_from_masks on synthetic masks and on the bundled demo sources' real masks."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2  # independent 8-connectivity check (installed with ultralytics)
import numpy as np
import pytest
import tifffile
from PIL import Image

from medtrinity_assets.records import MaskLayer, RejectError, Slice2D
from medtrinity_assets.rois import box_from_mask, rle_decode, rle_encode, roi_record, rois_from_masks

SOURCES = Path(__file__).resolve().parents[1] / "data" / "sources"


def np_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.where(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def single_component(mask: np.ndarray) -> bool:
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return n == 2  # background + one


def blank(h: int = 40, w: int = 60) -> np.ndarray:
    return np.zeros((h, w), dtype=bool)


# ------------------------------------------------------------------ synthetic


def test_components_min_area_and_order():
    m = blank()
    m[20:30, 40:50] = True  # 100 px, lower right
    m[2:6, 3:8] = True  # 20 px, upper left
    m[10, 10] = True  # 1 px speck
    m[14:16, 30:32] = True  # 4 px, diagonal neighbour of the next one
    m[16:18, 32:34] = True  # touches the previous block corner-to-corner -> same component (8-conn)
    sl = Slice2D(np.zeros((40, 60), np.uint8), [MaskLayer("lesion", m)])
    rois = rois_from_masks(sl, min_area_px=16)
    assert [r.bbox for r in rois] == [(3, 2, 7, 5), (40, 20, 49, 29)]
    assert [r.instance for r in rois] == [1, 2]
    assert all(r.origin == "ground_truth" and r.score is None for r in rois)
    rois_all = rois_from_masks(sl, min_area_px=1)
    assert [r.bbox for r in rois_all] == [(3, 2, 7, 5), (10, 10, 10, 10), (30, 14, 33, 17), (40, 20, 49, 29)]
    assert int(rois_all[2].mask.sum()) == 8
    union = np.logical_or.reduce([r.mask for r in rois_all])
    assert np.array_equal(union, m)


def test_layer_instance_kept_and_label_order():
    a, b = blank(), blank()
    a[30:35, 0:5] = True
    b[0:5, 50:55] = True
    sl = Slice2D(
        np.zeros((40, 60), np.uint8),
        [MaskLayer("spleen", a, instance=0), MaskLayer("liver", b, instance=7)],
    )
    rois = rois_from_masks(sl, min_area_px=1)
    assert [(r.label, r.instance) for r in rois] == [("liver", 7), ("spleen", 0)]


def test_merge_per_label_unions_components_and_layers():
    a, b = blank(), blank()
    a[0:5, 0:5] = True
    a[0:5, 20:25] = True
    b[30:35, 50:55] = True
    b[39, 0] = True  # speck below min area: dropped from the union
    sl = Slice2D(np.zeros((40, 60), np.uint8), [MaskLayer("nodule", a), MaskLayer("nodule", b)])
    merged = rois_from_masks(sl, min_area_px=4, merge_per_label=True)
    assert len(merged) == 1
    roi = merged[0]
    assert roi.bbox == (0, 0, 54, 34) and roi.instance is None
    assert int(roi.mask.sum()) == 75
    rec = roi_record(roi, 60, 40)
    assert rec["n_components"] == 3 and rec["area_px"] == 75


def test_shape_mismatch_rejected():
    sl = Slice2D(np.zeros((40, 60), np.uint8), [MaskLayer("x", np.zeros((40, 61), bool))])
    with pytest.raises(RejectError) as err:
        rois_from_masks(sl)
    assert err.value.reason == "shape_mismatch"


def test_empty_layers_give_no_rois():
    sl = Slice2D(np.zeros((8, 8), np.uint8), [MaskLayer("x", np.zeros((8, 8), bool))])
    assert rois_from_masks(sl) == []


# ------------------------------------------------------------------ real sources


def manifest(name: str) -> list[dict]:
    path = SOURCES / name / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_layer_rois(rois, layer_mask: np.ndarray, expected_box, expected_area) -> None:
    """ROIs of one layer: exact partition of the mask into maximal 8-connected parts."""
    for roi in rois:
        assert roi.bbox == np_box(roi.mask) == box_from_mask(roi.mask)
        assert single_component(roi.mask)
        assert np.array_equal(rle_decode(rle_encode(roi.mask)), roi.mask)
    union = np.logical_or.reduce([r.mask for r in rois])
    assert np.array_equal(union, layer_mask)  # IoU 1.0 with the file mask
    assert sum(int(r.mask.sum()) for r in rois) == int(layer_mask.sum())  # disjoint
    xs0, ys0, xs1, ys1 = zip(*(r.bbox for r in rois))
    assert (min(xs0), min(ys0), max(xs1), max(ys1)) == tuple(expected_box) == np_box(layer_mask)
    assert int(layer_mask.sum()) == expected_area


def test_sam_med2d_masks_match_manifest():
    rows = manifest("sam_med2d_demo")
    by_image: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row)
    assert len(by_image) == 4 and len(rows) == 30
    for image, image_rows in by_image.items():
        pixels = np.array(Image.open(SOURCES / "sam_med2d_demo" / image).convert("L"))
        layers = [
            MaskLayer(
                r["label"], np.array(Image.open(SOURCES / "sam_med2d_demo" / r["mask"])) > 0, instance=r["instance"]
            )
            for r in image_rows
        ]
        sl = Slice2D(pixels, layers)
        rois = rois_from_masks(sl, min_area_px=1)
        grouped = defaultdict(list)
        for roi in rois:
            grouped[(roi.label, roi.instance)].append(roi)
        assert len(grouped) == len(image_rows)
        for row, layer in zip(image_rows, layers):
            check_layer_rois(grouped[(row["label"], row["instance"])], layer.mask, row["bbox_xyxy"], row["area_px"])
            # no two ROIs of one layer touch (else they would be one 8-connected component)
            parts = grouped[(row["label"], row["instance"])]
            for i, a in enumerate(parts):
                grown = cv2.dilate(a.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                assert not any((grown & b.mask).any() for b in parts[i + 1 :])
        keys = [(r.label, r.bbox[1], r.bbox[0]) for r in rois]
        assert keys == sorted(keys)


def test_stardist_instance_map_matches_manifest():
    rows = {r["instance_id"]: r for r in manifest("stardist_dsb2018")}
    instance_map = tifffile.imread(SOURCES / "stardist_dsb2018" / "mask2d.tif")
    image = tifffile.imread(SOURCES / "stardist_dsb2018" / "img2d.tif").astype(np.float32)
    pixels = np.round(255 * (image - image.min()) / (image.max() - image.min())).astype(np.uint8)
    ids = [int(i) for i in np.unique(instance_map) if i != 0]
    assert sorted(ids) == sorted(rows)
    layers = [MaskLayer("nucleus", instance_map == i, instance=i) for i in ids]
    rois = rois_from_masks(Slice2D(pixels, layers), min_area_px=1)
    by_instance = defaultdict(list)
    for roi in rois:
        by_instance[roi.instance].append(roi)
    for i in ids:
        check_layer_rois(by_instance[i], instance_map == i, rows[i]["bbox_xyxy"], rows[i]["area_px"])
    default = rois_from_masks(Slice2D(pixels, layers))  # min_area_px=16 drops only tiny parts
    assert {r.instance for r in default} == {i for i in ids if rows[i]["area_px"] >= 16}


def test_cxr_jpeg_lung_mask_threshold_matches_manifest():
    (row,) = manifest("torchxrayvision_cxr")
    mask = np.array(Image.open(SOURCES / "torchxrayvision_cxr" / row["mask"]).convert("L")) > 127
    pixels = np.array(Image.open(SOURCES / "torchxrayvision_cxr" / row["image"]).convert("L"))
    assert pixels.shape == mask.shape == (row["image_size_wh"][1], row["image_size_wh"][0])
    sl = Slice2D(pixels, [MaskLayer("lungs", mask)])
    check_layer_rois(rois_from_masks(sl, min_area_px=1), mask, row["bbox_xyxy"], row["area_px"])
    (merged,) = rois_from_masks(sl, min_area_px=1, merge_per_label=True)
    assert merged.bbox == tuple(row["bbox_xyxy"])
    rec = roi_record(merged, sl.width, sl.height)
    assert rec["area_px"] == row["area_px"]
    assert rec["bbox_norm"] == [86 / 1036, 10 / 885, 990 / 1036, 759 / 885]
    assert np.array_equal(rle_decode(rec["rle"]), mask)
    lungs = rois_from_masks(sl)  # default min area: the two lungs (plus nothing else)
    assert len(lungs) >= 2
    two_largest = sorted(lungs, key=lambda r: -int(r.mask.sum()))[:2]
    left_in_image, right_in_image = sorted(two_largest, key=lambda r: r.bbox[0])
    assert roi_record(left_in_image, sl.width, sl.height)["position"].endswith("left-center")
    assert roi_record(right_in_image, sl.width, sl.height)["position"].endswith("right-center")
