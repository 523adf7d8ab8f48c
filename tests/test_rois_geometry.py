"""RLE, grid positions, patient side from world coordinates, and roi_record."""

from __future__ import annotations

import numpy as np
import pytest

from medtrinity_assets.records import ROI, DisplayFrame, RejectError
from medtrinity_assets.rois import (
    box_from_mask,
    grid_cell,
    grid_position,
    position_phrase,
    rle_decode,
    rle_encode,
    rle_from_coco,
    rle_to_coco,
    roi_record,
)
from medtrinity_assets.rois.position import world_point


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


@pytest.mark.parametrize(
    "box,expected,cell",
    [
        ((0, 0, 9, 9), "upper left", (0, 0)),  # blob in the top-left corner
        ((120, 0, 139, 9), "upper left-center", (0, 1)),
        ((240, 240, 259, 259), "middle center", (2, 2)),
        ((490, 300, 499, 320), "lower-middle right", (3, 4)),
        ((0, 490, 499, 499), "lower center", (4, 2)),
        ((100, 100, 119, 119), "upper-middle left-center", (1, 1)),  # centre 110/500 = 0.22 -> band 1
    ],
)
def test_grid_cell_and_phrase_follow_box_centre(box, expected, cell):
    assert grid_cell(box, 500, 500) == cell
    assert position_phrase(box, 500, 500) == expected
    with pytest.raises(RejectError):
        position_phrase((0, 0, 600, 10), 500, 500)


def _axial_frame(x_left_mm: float, width: int = 100, spacing: float = 1.0) -> DisplayFrame:
    """Radiological axial display whose first column lies at LPS x = `x_left_mm`."""
    return DisplayFrame(
        plane="axial",
        lateral="radiological",
        up="anterior",
        world_origin=(x_left_mm, -50.0, 0.0),
        world_row_dir=(0.0, 1.0, 0.0),
        world_col_dir=(1.0, 0.0, 0.0),
        spacing_rc=(spacing, spacing),
    )


def test_patient_side_comes_from_world_coordinates_not_the_image_centre():
    # A centred field: column 0 at x = -50 mm (patient right), column 99 at +49 mm (patient left).
    centred = _axial_frame(-50.0)
    assert grid_position((5, 40, 15, 60), 100, 100, centred, (10.5, 50.5)).patient_side == "right"
    assert grid_position((85, 40, 95, 60), 100, 100, centred, (90.5, 50.5)).patient_side == "left"
    assert grid_position((45, 40, 55, 60), 100, 100, centred, (50.5, 50.5)).patient_side == "midline"
    # A field cropped off-centre: the whole image lies on the patient's right (x from -150 to -51 mm).
    # The lesion is in the middle of the image, but on the patient's right: never "midline".
    cropped = _axial_frame(-150.0)
    pos = grid_position((45, 40, 55, 60), 100, 100, cropped, (50.5, 50.5))
    assert (pos.row, pos.col) == (2, 2)
    assert pos.patient_side == "right"
    assert pos.patient_level == "central"


def test_no_side_without_a_world_frame():
    conventions_only = DisplayFrame(plane="axial", lateral="radiological", up="anterior")
    pos = grid_position((0, 0, 9, 9), 100, 100, conventions_only, (5.0, 5.0))
    assert pos.patient_side is None and pos.patient_level == "anterior"
    photo = grid_position((0, 0, 9, 9), 100, 100, DisplayFrame(), (5.0, 5.0))
    assert (photo.patient_side, photo.patient_level, photo.patient_depth) == (None, None, None)
    assert grid_position((0, 0, 9, 9), 100, 100, None, (5.0, 5.0)).patient_side is None


def test_levels_and_sagittal_depth():
    coronal = DisplayFrame(plane="coronal", lateral="radiological", up="superior")
    assert grid_position((0, 90, 9, 99), 100, 100, coronal, (5.0, 95.0)).patient_level == "inferior"
    sagittal = DisplayFrame(
        plane="sagittal", up="superior", anterior_side="left",
        world_origin=(30.0, -50.0, 50.0), world_row_dir=(0.0, 0.0, -1.0), world_col_dir=(0.0, 1.0, 0.0), spacing_rc=(1.0, 1.0),
    )
    upper_front = grid_position((0, 0, 9, 9), 100, 100, sagittal, (5.0, 5.0))
    assert (upper_front.patient_level, upper_front.patient_depth) == ("superior", "anterior")
    assert upper_front.patient_side is None  # no left/right on a sagittal plane
    assert grid_position((90, 45, 99, 55), 100, 100, sagittal, (95.0, 50.0)).patient_depth == "posterior"


def test_world_point_maps_pixel_centres():
    frame = _axial_frame(-50.0, spacing=2.0)
    assert world_point(frame, 0.5, 0.5).tolist() == [-50.0, -50.0, 0.0]
    assert world_point(frame, 10.5, 3.5).tolist() == [-30.0, -44.0, 0.0]
    assert world_point(DisplayFrame(), 1.0, 1.0) is None


# ------------------------------------------------------------------ record


def test_roi_record_fields():
    mask = np.zeros((20, 40), bool)
    mask[2:6, 4:12] = True  # 32 px
    mask[3, 12] = True
    roi = ROI("lesion", "model:x@abc", box_from_mask(mask), mask, 0.75, 2)
    rec = roi_record(roi, 40, 20)
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
        roi_record(bad, 40, 20)
    assert err.value.reason == "bbox_mismatch"
