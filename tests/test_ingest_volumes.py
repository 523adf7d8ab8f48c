"""Volumes (SimpleITK): orientation canonicalisation, display planes, square pixels, mask geometry."""

from __future__ import annotations


import numpy as np
import pytest
import SimpleITK as sitk

from medtrinity_assets.ingest import IngestPolicy, load_item
from medtrinity_assets.ingest.orientation import reorientation_from_direction
from helpers import file_item
from medtrinity_assets.records import MaskRef, RejectError, SourceItem

RAS_STORED = (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)  # index i -> patient Right, j -> Anterior, k -> Superior
LPS_STORED = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)


def _item(path, modality="MRI", masks=(), fmt="nifti", organs=()) -> SourceItem:
    return file_item(path, fmt, modality, organs=organs, masks=masks)


def write_volume(path, array_kji: np.ndarray, direction=LPS_STORED, spacing=(1.0, 1.0, 1.0)) -> str:
    image = sitk.GetImageFromArray(array_kji)
    image.SetDirection(direction)
    image.SetSpacing(spacing)
    image.SetOrigin((10.0, -20.0, 30.0))
    sitk.WriteImage(image, str(path))
    return str(path)


def marker_volume(direction) -> tuple[np.ndarray, np.ndarray]:
    """A 20x30x40 (k, j, i) volume with a bright block on patient LEFT and a dimmer one ANTERIOR, plus labels."""
    vol = np.full((20, 30, 40), 100.0, dtype=np.float32)
    labels = np.zeros(vol.shape, dtype=np.uint8)
    d = np.asarray(direction).reshape(3, 3)
    left_i = slice(0, 6) if d[0, 0] < 0 else slice(34, 40)  # i toward Right (RAS) -> left is low i
    anterior_j = slice(24, 30) if d[1, 1] < 0 else slice(0, 6)  # j toward Anterior (RAS) -> anterior is high j
    vol[:, 12:18, left_i] = 1000.0
    labels[:, 12:18, left_i] = 7
    vol[:, anterior_j, 17:23] = 500.0
    labels[:, anterior_j, 17:23] = 3
    vol[17:, :, :] += 50.0  # superior end slightly brighter
    return vol, labels


@pytest.mark.parametrize("direction", [RAS_STORED, LPS_STORED], ids=["ras_stored", "lps_stored"])
def test_patient_left_appears_on_image_right(tmp_path, direction):
    vol, labels = marker_volume(direction)
    img = write_volume(tmp_path / "vol.nii.gz", vol, direction)
    seg = write_volume(tmp_path / "seg.nii.gz", labels, direction)
    item = _item(img, masks=[MaskRef(seg, "multilabel", label_table={7: "left_marker", 3: "anterior_marker"})])
    slices = load_item(item, IngestPolicy(slicing={"select": "even", "count": 3}, intensity={"mode": "minmax"}))
    assert len(slices) == 3
    for sl in slices:
        assert sl.slice_axis == "axial"
        assert sl.meta["orientation"] == "radiological axial: patient left on image right, anterior up"
        assert sl.pixels.shape == (30, 40)
        left = next(layer for layer in sl.masks if layer.label == "left_marker")
        anterior = next(layer for layer in sl.masks if layer.label == "anterior_marker")
        cols = np.nonzero(left.mask.any(axis=0))[0]
        rows = np.nonzero(anterior.mask.any(axis=1))[0]
        assert cols.min() >= 34  # image right
        assert rows.max() <= 5  # image top
        assert sl.pixels[left.mask].min() > sl.pixels[~(left.mask | anterior.mask)].max()  # mask sits on the marker
        assert left.label_id == 7
    assert slices[0].meta["reoriented"] is (direction == RAS_STORED)


def test_stored_orientation_does_not_change_the_display(tmp_path):
    out = []
    for name, direction in (("ras", RAS_STORED), ("lps", LPS_STORED)):
        vol, _ = marker_volume(direction)
        path = write_volume(tmp_path / f"{name}.nii.gz", vol, direction)
        out.append([s.pixels for s in load_item(_item(path), IngestPolicy(slicing={"select": "all"}))])
    assert len(out[0]) == len(out[1]) == 20
    assert all(np.array_equal(a, b) for a, b in zip(*out))


def test_coronal_and_sagittal_conventions(tmp_path):
    vol = np.zeros((20, 30, 40), dtype=np.float32)  # (z, y, x) LPS-stored
    vol[19, :, :] = 1.0  # most superior slice
    vol[:, 0, :] += 2.0  # most anterior row
    vol[:, :, 39] += 4.0  # most left column
    path = write_volume(tmp_path / "v.nii.gz", vol)
    policy = {"select": "even", "count": 1}
    cor = load_item(_item(path), IngestPolicy(slicing={"axis": "coronal", **policy}, intensity={"mode": "minmax"}))[0]
    assert cor.meta["orientation"].startswith("radiological coronal")
    assert cor.pixels.shape == (20, 40)
    assert cor.pixels[0, :39].min() > 0 and cor.pixels[1:, :39].max() == 0  # superior on top
    assert cor.pixels[1:, 39].min() > 0  # patient left on image right
    sag = load_item(_item(path), IngestPolicy(slicing={"axis": "sagittal", **policy}, intensity={"mode": "minmax"}))[0]
    assert sag.meta["orientation"] == "sagittal: anterior on image left, superior up"
    assert sag.pixels.shape == (20, 30)
    assert sag.pixels[1:, 0].min() > 0 and sag.pixels[1:, 1:].max() == 0  # anterior on the left
    assert sag.pixels[0, 1:].min() > 0  # superior on top


def test_anisotropic_pixels_resampled_square_and_masks_follow(tmp_path):
    vol = np.zeros((10, 20, 30), dtype=np.float32)
    labels = np.zeros(vol.shape, dtype=np.uint8)
    vol[:, 5:10, 10:20] = 1.0
    labels[:, 5:10, 10:20] = 1
    img = write_volume(tmp_path / "a.nii.gz", vol, spacing=(1.0, 2.0, 3.0))  # x, y, z
    seg = write_volume(tmp_path / "s.nii.gz", labels, spacing=(1.0, 2.0, 3.0))
    item = _item(img, masks=[MaskRef(seg, "binary", label="box")])
    axial = load_item(item, IngestPolicy(slicing={"count": 1}, intensity={"mode": "minmax"}))[0]
    assert axial.pixels.shape == (40, 30)  # rows (2 mm) doubled
    assert axial.meta["pixel_spacing_out"] == [1.0, 1.0]
    box = axial.masks[0]
    assert box.label == "box" and box.mask.shape == (40, 30)
    assert np.array_equal(np.argwhere(box.mask).min(axis=0), [10, 10])
    assert np.array_equal(np.argwhere(box.mask).max(axis=0), [19, 19])
    coronal = load_item(item, IngestPolicy(slicing={"axis": "coronal", "count": 1}))[0]
    assert coronal.pixels.shape == (30, 30)  # 10 slices x 3 mm
    flat = load_item(item, IngestPolicy(slicing={"count": 1, "resample_isotropic": False}))[0]
    assert flat.pixels.shape == (20, 30)


def test_mask_with_other_voxel_spacing_is_rejected(tmp_path):
    vol = np.zeros((4, 16, 16), dtype=np.float32)
    img = write_volume(tmp_path / "a.nii.gz", vol, spacing=(1.0, 1.0, 1.0))
    seg = write_volume(tmp_path / "s.nii.gz", np.ones(vol.shape, np.uint8), spacing=(2.0, 2.0, 2.0))
    with pytest.raises(RejectError) as exc:
        load_item(_item(img, masks=[MaskRef(seg, "binary", label="x")]), IngestPolicy())
    assert exc.value.reason == "geometry_mismatch"


def test_ct_volume_in_hu_gets_an_organ_window(tmp_path):
    hu = np.full((3, 16, 16), -1000, dtype=np.int16)
    hu[:, 4:12, 4:12] = 40
    path = write_volume(tmp_path / "ct.nii.gz", hu)
    lung = load_item(_item(path, modality="CT", organs=("lung",)), IngestPolicy())[0]
    brain = load_item(_item(path, modality="CT", organs=("brain",)), IngestPolicy())[0]
    assert lung.meta["intensity"]["window"]["name"] == "lung"
    assert brain.meta["intensity"]["window"]["name"] == "brain"
    assert brain.pixels[8, 8] == 128 and brain.pixels[0, 0] == 0  # 40 HU is the brain window centre
    assert lung.pixels[8, 8] == int((40 + 1350) / 1500 * 255 + 0.5)


def test_mha_and_nrrd_are_read(tmp_path):
    vol = np.random.default_rng(0).normal(size=(5, 20, 24)).astype(np.float32)
    for ext, fmt in (("mha", "mha"), ("nrrd", "nrrd"), ("mhd", "mha")):
        path = write_volume(tmp_path / f"v.{ext}", vol, RAS_STORED)
        slices = load_item(_item(path, fmt=fmt), IngestPolicy(slicing={"select": "all"}))
        assert len(slices) == 5 and slices[0].pixels.shape == (20, 24), ext


def test_reorientation_of_a_permuted_direction():
    # stored i -> S, j -> A (reversed P), k -> L: a sagittal acquisition
    direction = np.array([[0, 0, 1], [0, -1, 0], [1, 0, 0]], dtype=float)
    reo = reorientation_from_direction(direction)
    assert reo.native_axis == "sagittal"
    stored = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # (k, j, i)
    canon = reo.apply(stored)
    assert canon.shape == (4, 3, 2)  # (z <- i, y <- j, x <- k)
    assert canon[0, 0, 0] == stored[0, 2, 0]  # y flipped
    assert reo.spacing((1.0, 2.0, 3.0)) == (1.0, 2.0, 3.0)
