"""render_overlay, rois_from_boxes, rois_from_polygons."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from medtrinity_assets.records import ROI, RejectError
from medtrinity_assets.rois import (
    box_from_mask,
    render_overlay,
    roi_colour,
    rois_from_boxes,
    rois_from_polygons,
)


def disc(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def rois_on(h: int, w: int) -> list[ROI]:
    a = disc(h, w, 20, 20, 8)
    b = np.zeros((h, w), bool)
    b[30:45, 40:60] = True
    return [ROI("a", "ground_truth", box_from_mask(a), a), ROI("b", "ground_truth", box_from_mask(b), b)]


@pytest.mark.parametrize("grey", [True, False])
def test_overlay_contour_draws_roi_colours_on_a_copy(grey):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 200, (64, 80) if grey else (64, 80, 3), dtype=np.uint8)
    before = pixels.copy()
    rois = rois_on(64, 80)
    out = render_overlay(pixels, rois)
    assert np.array_equal(pixels, before)  # the clean image is untouched
    assert out.dtype == np.uint8 and out.shape == (64, 80, 3) and out is not pixels
    for index, roi in enumerate(rois):
        colour = np.array(roi_colour(index), np.uint8)
        x0, y0, x1, y1 = roi.bbox
        assert (out[(y0 + y1) // 2, x0] == colour).all()  # leftmost mask pixel is on the contour
        painted = (out == colour).all(axis=2)
        assert painted[roi.mask].any()
        assert not painted[~roi.mask & ~np.logical_or.reduce([r.mask for r in rois])].any()  # nothing outside ROIs
    centre = out[37, 50]
    expected_centre = np.repeat(before[37, 50], 3) if grey else before[37, 50]
    assert np.array_equal(centre, expected_centre)  # interior untouched


def test_overlay_box_and_fill_styles():
    pixels = np.zeros((64, 80), np.uint8)
    rois = rois_on(64, 80)
    boxed = render_overlay(pixels, rois, style="box")
    x0, y0, x1, y1 = rois[0].bbox
    colour = np.array(roi_colour(0), np.uint8)
    assert (boxed[y0, x0] == colour).all() and (boxed[y1, x1] == colour).all()  # corners outside the disc
    assert not rois[0].mask[y0, x0]
    filled = render_overlay(pixels, rois, style="fill")
    assert filled[20, 20].any() and not (filled[20, 20] == colour).all()  # blended interior
    with pytest.raises(RejectError):
        render_overlay(pixels, rois, style="glow")
    with pytest.raises(RejectError):
        render_overlay(pixels.astype(np.float32), rois)


def test_boxes_from_csv_rows_xywh_rescaled():
    text = "Image Index,Finding Label,Bbox [x,y,w,h]\nimg.png,Nodule,100,200,50,40\nimg.png,Mass,0,0,1024,10\n"
    rows = list(csv.DictReader(io.StringIO(text)))
    rois = rois_from_boxes(
        rows, 512, 512, label_key="Finding Label", box_format="xywh",
        coord_keys=("Bbox [x", "y", "w", "h]"), source_size=(1024, 1024),
    )
    expected = [("Mass", (0, 0, 511, 4), 2), ("Nodule", (50, 100, 74, 119), 1)]
    assert [(r.label, r.bbox, r.instance) for r in rois] == expected
    for r in rois:
        x0, y0, x1, y1 = r.bbox
        assert box_from_mask(r.mask) == r.bbox and int(r.mask.sum()) == (x1 - x0 + 1) * (y1 - y0 + 1)


def test_boxes_json_formats_and_errors():
    json_rows = [
        {"label": "lesion", "bbox": [10, 10, 20, 15], "score": 0.9},
        {"label": "lesion", "x0": 30, "y0": 5, "x1": 30, "y1": 5},
    ]
    cont = rois_from_boxes(json_rows[:1], 64, 64)
    assert cont[0].bbox == (10, 10, 19, 14) and cont[0].score == 0.9  # continuous corners
    incl = rois_from_boxes(json_rows, 64, 64, box_format="xyxy_inclusive")
    assert [r.bbox for r in incl] == [(30, 5, 30, 5), (10, 10, 20, 15)]
    bare = rois_from_boxes([(0, 0, 64, 64)], 64, 64, default_label="finding")
    assert bare[0].label == "finding" and bare[0].mask.all()
    for bad in ([(5, 5, 2, 8)], [(100, 100, 120, 120)], [(1, 2, 3)], [{"label": "x"}]):
        with pytest.raises(RejectError):
            rois_from_boxes(bad, 64, 64)


def test_polygons_rasterise_by_pixel_centre():
    coco = [
        {"category_id": 1, "segmentation": [[2, 3, 10, 3, 10, 9, 2, 9]]},  # rectangle [2,10) x [3,9)
        {"category_id": 2, "segmentation": [[20, 20, 30, 20, 20, 30], [40, 40, 44, 40, 44, 44, 40, 44]]},
    ]
    rois = rois_from_polygons(coco, 64, 64, label_key="category_id", label_table={1: "liver", 2: "tumour"})
    by_label = {r.label: r for r in rois}
    rect = by_label["liver"]
    assert rect.bbox == (2, 3, 9, 8) and int(rect.mask.sum()) == 8 * 6
    assert rect.bbox == rois_from_boxes([(2, 3, 10, 9)], 64, 64)[0].bbox  # same convention as boxes
    tri = by_label["tumour"]
    assert tri.mask[21, 21] and not tri.mask[29, 29]  # below the hypotenuse x + y = 50 -> outside
    assert tri.mask[40:44, 40:44].all() and tri.bbox == (20, 20, 43, 43)
    yolo = rois_from_polygons([[0.5, 0.5, 1.0, 0.5, 1.0, 1.0, 0.5, 1.0]], 64, 64, normalized=True)
    assert yolo[0].bbox == (32, 32, 63, 63)
    pairs = rois_from_polygons([[(2, 3), (10, 3), (10, 9), (2, 9)]], 64, 64)
    assert np.array_equal(pairs[0].mask, rect.mask)
    sliver = rois_from_polygons([[5, 5, 5.2, 5, 5.2, 15, 5, 15]], 64, 64)  # thinner than a pixel
    assert sliver[0].mask.any()
    rle = rois_from_polygons([{"segmentation": {"size": [2, 3], "counts": [2, 3, 1]}}], 3, 2)
    assert rle[0].bbox == (1, 0, 2, 1)
    with pytest.raises(RejectError):
        rois_from_polygons([[1, 2, 3, 4]], 64, 64)
    with pytest.raises(RejectError):
        rois_from_polygons([[100, 100, 120, 100, 120, 120]], 64, 64)
