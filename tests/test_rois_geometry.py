"""RLE, position phrases, anatomical wording and roi_record."""

from __future__ import annotations

import numpy as np
import pytest

from medtrinity_assets.records import ROI, RejectError
from medtrinity_assets.rois import (
    POSITION_VOCABULARY,
    anatomical_position,
    anatomical_side,
    box_from_mask,
    display_convention,
    parse_position,
    position_phrase,
    rle_decode,
    rle_encode,
    rle_from_coco,
    rle_to_coco,
    roi_record,
)

RADIOLOGICAL_AXIAL = "radiological: patient left on image right, anterior up (axial)"


# ------------------------------------------------------------------ RLE


def test_rle_matches_coco_column_major_convention():
    m = np.array([[0, 1, 1], [0, 1, 0]], dtype=bool)
    # column-major: col0 = 0,0 ; col1 = 1,1 ; col2 = 1,0 -> 0 0 1 1 1 0
    assert rle_encode(m) == "2 3;2 3 1"
    full = np.ones((2, 2), bool)
    assert rle_encode(full) == "2 2;0 4"  # starts with an empty background run
    assert rle_encode(np.zeros((3, 2), bool)) == "3 2;6"
    assert rle_to_coco("2 3;2 3 1") == {"size": [2, 3], "counts": [2, 3, 1]}
    assert np.array_equal(rle_from_coco({"size": [2, 3], "counts": [2, 3, 1]}), m)


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 33), (0, 4)])
def test_rle_round_trip_random(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.1, 0.5, 1.0):
        m = rng.random(shape) < density
        s = rle_encode(m)
        back = rle_decode(s)
        assert back.dtype == bool and back.shape == shape and np.array_equal(back, m)
        assert np.array_equal(rle_decode(s, shape), m)


def test_rle_rejects_bad_input():
    for bad in ("", "2 3", "2 3;1 1", "a b;1", "2 3;7 -1"):
        with pytest.raises(RejectError) as err:
            rle_decode(bad)
        assert err.value.reason == "bad_rle"
    with pytest.raises(RejectError) as err:
        rle_decode("2 3;6", (3, 2))
    assert err.value.reason == "shape_mismatch"


# ------------------------------------------------------------------ position


def test_vocabulary_is_5x5_and_parse_inverts_every_phrase():
    assert len(POSITION_VOCABULARY["vertical"]) == len(POSITION_VOCABULARY["horizontal"]) == 5
    assert len(POSITION_VOCABULARY["phrases"]) == 25
    for phrase in POSITION_VOCABULARY["phrases"]:
        v, h = parse_position(phrase)
        assert f"{v} {h}" == phrase
    for bad in ("upper", "top left", "upper  left", "left upper", ""):
        with pytest.raises(RejectError):
            parse_position(bad)


@pytest.mark.parametrize(
    "box,expected",
    [
        ((0, 0, 9, 9), "upper left"),  # blob in the top-left corner
        ((120, 0, 139, 9), "upper left-center"),
        ((240, 240, 259, 259), "middle center"),
        ((490, 300, 499, 320), "lower-middle right"),
        ((0, 490, 499, 499), "lower center"),
        ((100, 100, 119, 119), "upper-middle left-center"),  # centre 110/500 = 0.22 -> band 1
    ],
)
def test_position_phrase_follows_box_centre(box, expected):
    assert position_phrase(box, 500, 500, "") == expected


def test_position_phrase_is_in_image_terms_whatever_the_orientation():
    box = (10, 10, 30, 30)
    assert position_phrase(box, 500, 500, RADIOLOGICAL_AXIAL) == position_phrase(box, 500, 500, "") == "upper left"
    with pytest.raises(RejectError):
        position_phrase((0, 0, 600, 10), 500, 500, "")


def test_anatomical_side_flips_only_under_radiological_convention():
    assert anatomical_side("left", RADIOLOGICAL_AXIAL) == "right"
    assert anatomical_side("left-center", RADIOLOGICAL_AXIAL) == "right"
    assert anatomical_side("right", RADIOLOGICAL_AXIAL) == "left"
    assert anatomical_side("center", RADIOLOGICAL_AXIAL) == "midline"
    assert anatomical_side("left", "neurological convention, axial") == "left"
    assert anatomical_side("left", "") is None  # 2D source, unknown orientation: no claim
    assert anatomical_side("left", "unknown") is None
    assert anatomical_side("left", "radiological sagittal") is None  # no left/right in sagittal


def test_display_convention_parsing():
    assert display_convention(RADIOLOGICAL_AXIAL).lateral == "radiological"
    assert display_convention(RADIOLOGICAL_AXIAL).plane == "axial"
    assert display_convention("patient's left on image right; PA chest radiograph").plane == "projection"
    assert display_convention("coronal, radiological").plane == "coronal"
    assert display_convention("microscopy").lateral is None


# display texts written by ingestion (medtrinity_assets.ingest.orientation)
INGEST_AXIAL = "radiological axial: patient left on image right, anterior up"
INGEST_CORONAL = "radiological coronal: patient left on image right, superior up"
INGEST_SAGITTAL = "sagittal: anterior on image left, superior up"
INGEST_2D = "as acquired (2D source)"


def test_ingest_orientation_texts():
    texts = (INGEST_AXIAL, INGEST_CORONAL, INGEST_SAGITTAL, INGEST_2D)
    axial, coronal, sagittal, flat = (display_convention(t) for t in texts)
    assert (axial.lateral, axial.plane, axial.up) == ("radiological", "axial", "anterior")
    assert (coronal.lateral, coronal.plane, coronal.up) == ("radiological", "coronal", "superior")
    assert (sagittal.lateral, sagittal.plane) == (None, "sagittal")
    assert (sagittal.up, sagittal.anterior_side) == ("superior", "left")
    assert (flat.lateral, flat.up) == (None, None)
    assert anatomical_position("upper left", INGEST_AXIAL) == "in the patient's right anterior region"
    assert anatomical_position("lower right", INGEST_CORONAL) == "in the patient's left lower region"
    assert anatomical_position("upper left", INGEST_SAGITTAL) == "in the upper anterior region"
    assert anatomical_position("middle right", INGEST_SAGITTAL) == "in the posterior region"
    assert anatomical_side("left", INGEST_SAGITTAL) is None
    assert anatomical_position("upper left", INGEST_2D) is None
    radiograph = display_convention("PA radiograph: patient left on image right, feet down")
    assert (radiograph.lateral, radiograph.up) == ("radiological", "superior")


def test_anatomical_position_wording():
    assert anatomical_position("upper left", RADIOLOGICAL_AXIAL) == "in the patient's right anterior region"
    assert anatomical_position("lower right-center", RADIOLOGICAL_AXIAL) == "in the patient's left posterior region"
    assert anatomical_position("upper left", "radiological coronal") == "in the patient's right upper region"
    assert anatomical_position("upper center", "radiological coronal") == "in the upper region near the midline"
    assert anatomical_position("middle left", "radiological") == "on the patient's right side"
    assert anatomical_position("upper left", "") is None
    # bbox form: a box in the image's top-left, radiological axial display
    assert anatomical_position((0, 0, 9, 9), 100, 100, RADIOLOGICAL_AXIAL) == "in the patient's right anterior region"
    assert anatomical_position((0, 0, 9, 9), 100, 100, "") is None
    with pytest.raises(TypeError):
        anatomical_position((0, 0, 9, 9), RADIOLOGICAL_AXIAL)


# ------------------------------------------------------------------ record


def test_roi_record_fields():
    mask = np.zeros((20, 40), bool)
    mask[2:6, 4:12] = True  # 32 px
    mask[3, 12] = True
    roi = ROI("lesion", "model:x@abc", box_from_mask(mask), mask, 0.75, 2)
    rec = roi_record(roi, 40, 20, RADIOLOGICAL_AXIAL)
    assert set(rec) == {
        "label", "origin", "score", "instance", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "bbox_norm",
        "area_px", "area_frac", "centroid_x", "centroid_y", "position", "rle", "n_components",
    }
    assert (rec["bbox_x0"], rec["bbox_y0"], rec["bbox_x1"], rec["bbox_y1"]) == (4, 2, 12, 5)
    assert rec["bbox_norm"] == [4 / 40, 2 / 20, 13 / 40, 6 / 20]
    assert rec["area_px"] == 33 and rec["area_frac"] == pytest.approx(33 / 800)
    ys, xs = np.nonzero(mask)
    assert rec["centroid_x"] == pytest.approx((xs.mean() + 0.5) / 40)
    assert rec["centroid_y"] == pytest.approx((ys.mean() + 0.5) / 20)
    assert rec["position"] == "upper-middle left-center"  # centre (8.5/40, 4/20) = (0.21, 0.2)
    assert rec["n_components"] == 1 and rec["score"] == 0.75 and rec["instance"] == 2
    assert np.array_equal(rle_decode(rec["rle"]), mask)
    bad = ROI("lesion", "ground_truth", (0, 0, 1, 1), mask, None, None)
    with pytest.raises(RejectError) as err:
        roi_record(bad, 40, 20, "")
    assert err.value.reason == "bbox_mismatch"
