"""ROI measurements on real bundled images, each checked against an independent computation.

Every test ingests a bundled source through the production path (catalog -> load_item ->
rois_from_masks -> slice_values -> measure_roi) and recomputes the value it checks straight from
the source file with SimpleITK / PIL / numpy, so a wrong orientation, resize, rescale or ring
would show.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medtrinity_assets.records import ROI
from medtrinity_assets.rois import measure_roi, rois_from_masks, slice_values
from medtrinity_assets.rois.measure import background_mask

from helpers import SOURCES, bundled_catalog, bundled_slices, needs_bundled_sources

pytestmark = needs_bundled_sources


@pytest.fixture(scope="module")
def catalog():
    return bundled_catalog()


def _largest(rois: list[ROI], label: str) -> ROI:
    return max((r for r in rois if r.label == label), key=lambda r: int(r.mask.sum()))


def _lps(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS"))


def test_ct_mean_attenuation_in_hounsfield_units(catalog):
    slices, _ = bundled_slices(catalog, "totalsegmentator_example", "example_ct_sm.nii.gz")
    sl = next(s for s in slices if any(layer.label == "liver" for layer in s.masks))
    liver = _largest(rois_from_masks(sl), "liver")
    m = measure_roi(liver.mask, slice_values(sl.pixels, sl.native, sl.native_unit), sl.frame.spacing_rc)
    ct, seg = _lps(SOURCES / "totalsegmentator_example/example_ct_sm.nii.gz"), _lps(SOURCES / "totalsegmentator_example/example_seg.nii.gz")
    plane, labels = ct[sl.slice_index], seg[sl.slice_index] == 5  # 5 = liver in the label table
    assert labels.shape == liver.mask.shape  # 3 mm isotropic: displayed at source resolution
    expected = float(plane[labels & liver.mask].mean())
    assert m.intensity_unit == "HU"
    assert m.mean == pytest.approx(expected, abs=0.06)
    assert 0 < m.mean < 200  # soft tissue, not a windowed grey level
    # size from the mask and the 3 mm spacing
    assert m.area_mm2 == pytest.approx(int(liver.mask.sum()) * 9.0)
    assert m.equivalent_diameter_mm == pytest.approx(math.sqrt(4 * m.area_mm2 / math.pi), rel=1e-3)


def test_mr_relative_intensity_uses_native_values(catalog):
    slices, _ = bundled_slices(catalog, "totalsegmentator_example", "example_mr_sm.nii.gz")
    sl = slices[0]
    roi = max(rois_from_masks(sl), key=lambda r: int(r.mask.sum()))
    m = measure_roi(roi.mask, slice_values(sl.pixels, sl.native, sl.native_unit), sl.frame.spacing_rc)
    plane = _lps(SOURCES / "totalsegmentator_example/example_mr_sm.nii.gz")[sl.slice_index].astype(np.float64)
    low, high = np.percentile(plane, (0.5, 99.5))
    expected = float(((plane[roi.mask] - low) / (high - low)).mean())
    assert m.intensity_unit == "relative"
    assert m.mean == pytest.approx(expected, abs=2e-3)


def _grey(path: Path) -> np.ndarray:
    img = Image.open(path)
    return np.asarray(img.convert("L"), dtype=np.float64)


def test_xray_lung_field_darker_than_its_surroundings(catalog):
    slices, _ = bundled_slices(catalog, "torchxrayvision_cxr", "16747_3_1.jpg")
    sl = slices[0]
    lungs = _largest(rois_from_masks(sl, merge_per_label=True), "lungs")  # both lung fields, as in the source mask
    m = measure_roi(lungs.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    # independent: the source at its own resolution (1036 px wide; displayed at 1024) with its own mask
    grey = _grey(SOURCES / "torchxrayvision_cxr/images/16747_3_1.jpg")
    mask = _grey(SOURCES / "torchxrayvision_cxr/masks/16747_3_1_lungs_v7labs.jpg") > 127
    assert grey.shape != lungs.mask.shape and mask.shape == grey.shape
    low, high = np.percentile(grey, (0.5, 99.5))
    assert m.intensity_unit == "relative"
    assert m.mean == pytest.approx(float((grey[mask].mean() - low) / (high - low)), abs=0.01)
    assert m.contrast is not None and m.contrast < 0  # aerated lung is darker than the chest wall around it


def test_ultrasound_vessel_is_anechoic(catalog):
    slices, _ = bundled_slices(catalog, "usgra_nerve_ultrasound", "0020.png")
    sl = slices[0]
    vessel = _largest(rois_from_masks(sl), "blood vessel")
    m = measure_roi(vessel.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    grey = _grey(SOURCES / "usgra_nerve_ultrasound/images/0020.png")
    vessel_src = np.asarray(Image.open(SOURCES / "usgra_nerve_ultrasound/masks/0020_blood_vessel.png")) > 0
    assert vessel.mask.shape == grey.shape
    low, high = np.percentile(grey, (0.5, 99.5))
    assert m.mean == pytest.approx(float((grey[vessel.mask & vessel_src].mean() - low) / (high - low)), abs=1e-3)
    assert m.contrast < 0  # blood is anechoic: darker than the surrounding tissue


def test_tinted_grey_ultrasound_capture_has_no_colour(catalog):
    """0100.png is a B-mode capture stored as RGB with a faint tint (channels differ by up to 24
    grey levels, 0.004 on average): it stays a colour source, but HSV saturation of its dark
    pixels is noise, so no hue or saturation difference is recorded and no colour is claimed."""
    slices, _ = bundled_slices(catalog, "usgra_nerve_ultrasound", "0100.png")
    sl = slices[0]
    rgb = _rgb(SOURCES / "usgra_nerve_ultrasound/images/0100.png").astype(np.int16)
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert spread.max() > 4 and spread.mean() / 255.0 < 0.05  # not grey to the ingest test, yet without colour
    for roi in rois_from_masks(sl):
        m = measure_roi(roi.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
        assert m.intensity_unit == "rgb"
        assert m.hue_delta is None and m.saturation_delta is None
        assert m.unmeasured["hue_delta"] == m.unmeasured["saturation_delta"] == "achromatic"
        assert m.contrast is not None  # the grey comparison is still made


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_dermoscopy_lesion_darker_and_more_saturated_than_skin(catalog):
    slices, _ = bundled_slices(catalog, "ham10000_dermoscopy", "ISIC_0027287.jpg")
    sl = slices[0]
    lesion = _largest(rois_from_masks(sl), "skin lesion")
    m = measure_roi(lesion.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    rgb = _rgb(SOURCES / "ham10000_dermoscopy/images/ISIC_0027287.jpg").astype(np.float64)
    assert rgb.shape[:2] == lesion.mask.shape
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    assert m.intensity_unit == "rgb"
    assert m.mean == pytest.approx(float(lum[lesion.mask].mean()) / 255.0, abs=2e-3)
    sat = np.array([colorsys.rgb_to_hsv(*(px / 255.0))[1] for px in rgb[lesion.mask][::50]])
    assert m.contrast < 0 and m.saturation_delta > 0
    assert float(sat.mean()) == pytest.approx(float(m.saturation_delta) + _ring_saturation(rgb, lesion, m), abs=0.05)


def _ring_saturation(rgb: np.ndarray, lesion: ROI, m) -> float:
    sat = np.array([colorsys.rgb_to_hsv(*(px / 255.0))[1] for px in rgb[_ring(lesion.mask, rgb)][::20]])
    return float(sat.mean())


def _ring(mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """The ring as measure.py documents it, built here with scipy / numpy for an independent check."""
    from scipy import ndimage

    ring_px = int(np.clip(round(0.5 * math.sqrt(int(mask.sum()) / math.pi)), 3, 15))
    ring = (ndimage.distance_transform_edt(~mask) <= ring_px) & ~mask
    grey = np.clip(np.rint(rgb @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    return ring & ~background_mask(grey)


@pytest.mark.parametrize(("source", "item"), [("ham10000_dermoscopy", "ISIC_0024311.jpg"), ("ham10000_dermoscopy", "ISIC_0027800.jpg")])  # stored at full size (the fundus photographs are resized at ingest)
def test_mean_colour_of_roi_and_ring(catalog, source, item):
    """m_rgb_mean / m_ring_rgb_mean equal the average R, G, B of the source file's pixels under the
    mask and in the ring, recomputed from the JPEG with PIL and numpy."""
    slices, _ = bundled_slices(catalog, source, item)
    sl = slices[0]
    roi = rois_from_masks(sl, merge_per_label=True)[0]
    m = measure_roi(roi.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    rgb = _rgb(SOURCES / source / "images" / item).astype(np.float64)
    assert rgb.shape[:2] == roi.mask.shape
    assert m.rgb_mean == pytest.approx(tuple(rgb[roi.mask].mean(axis=0) / 255.0), abs=2e-3)
    assert m.ring_rgb_mean == pytest.approx(tuple(rgb[_ring(roi.mask, rgb)].mean(axis=0) / 255.0), abs=2e-3)


def test_fundus_vessels_darker_than_retina(catalog):
    slices, _ = bundled_slices(catalog, "chase_db1_fundus", "Image_04L.jpg")
    sl = slices[0]
    vessels = rois_from_masks(sl, merge_per_label=True)[0]
    m = measure_roi(vessels.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    assert m.intensity_unit == "rgb"
    assert m.contrast < 0  # vessels are darker than the retina around them
    assert m.elongation is not None and m.solidity < 0.5  # a branching tree, not a blob
    assert m.n_components >= 1


def test_fluorescence_nuclei_brighter_than_background(catalog):
    slices, _ = bundled_slices(catalog, "stardist_dsb2018", "img2d.tif")
    sl = slices[0]
    rois = rois_from_masks(sl)
    assert len(rois) > 50
    union = np.zeros_like(rois[0].mask)
    for r in rois:
        union |= r.mask
    nucleus = max(rois, key=lambda r: int(r.mask.sum()))
    sv = slice_values(sl.pixels, sl.native, sl.native_unit)
    m = measure_roi(nucleus.mask, sv, same_label=union & ~nucleus.mask, label_count=len(rois))
    raw = np.asarray(Image.open(SOURCES / "stardist_dsb2018/img2d.tif"), dtype=np.float64)  # 16-bit counts
    assert raw.shape == nucleus.mask.shape and sl.native is not None
    low, high = np.percentile(raw, (0.5, 99.5))
    assert m.mean == pytest.approx(float(((raw[nucleus.mask] - low) / (high - low)).mean()), abs=2e-3)
    assert m.contrast > 0  # stained nuclei glow against the dark background
    assert m.label_count == len(rois)
    assert 0.5 < m.circularity <= 1.0


def test_histopathology_tile_nuclei_darker_and_bluer(catalog):
    slices, _ = bundled_slices(catalog, "stardist_dsb2018", "histo.jpg")
    sl = slices[0]
    rgb = sl.pixels.astype(np.float64)
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    region = np.zeros(lum.shape, bool)  # the darkest (haematoxylin) pixels of the central quarter
    h, w = lum.shape
    centre = lum[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    region[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = centre < np.percentile(centre, 20)
    m = measure_roi(region, slice_values(sl.pixels))
    assert m.mean == pytest.approx(float(lum[region].mean()) / 255.0, abs=2e-3)
    assert m.contrast < 0


def test_unmeasurable_cases_give_reasons_not_errors():
    flat = slice_values(np.full((50, 50), 80, np.uint8))
    whole = measure_roi(np.ones((50, 50), bool), flat)
    assert whole.ring_mean is None and whole.unmeasured["ring_mean"] in ("roi_covers_image", "constant_intensity")
    dot = np.zeros((50, 50), bool)
    dot[10, 10] = True
    tiny = measure_roi(dot, slice_values(np.random.default_rng(0).integers(0, 255, (50, 50), dtype=np.uint8)))
    assert tiny.mean is None and tiny.unmeasured["mean"] == "roi_too_small"
    assert tiny.circularity is None and tiny.area_px == 1
    empty = measure_roi(np.zeros((50, 50), bool), flat)
    assert empty.unmeasured == {"all": "empty_mask"}
    disc = np.zeros((50, 50), bool)
    disc[20:30, 20:30] = True
    constant = measure_roi(disc, flat, spacing_rc=(0.5, 0.5))
    assert constant.contrast is None and constant.unmeasured["contrast"] == "constant_intensity"
    assert constant.area_mm2 == pytest.approx(25.0)
