"""Measured value -> the wording it must produce, per modality family, on real bundled images.

Each test measures an ROI of a bundled source through the production path (catalog -> load_item
-> rois_from_masks -> slice_values -> measure_roi), checks the value against an independent
computation from the source file (as tests/test_rois_measure.py does), then composes the caption
and checks the appearance words that value must produce under the thresholds of
captions/data/appearance.yaml — and that nothing is claimed where the measurement is unreliable.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medtrinity_assets.captions import check_caption, compose_caption
from medtrinity_assets.captions.data_files import appearance
from medtrinity_assets.captions.quality import claims_agree, read_claims
from medtrinity_assets.captions.appearance import assess
from medtrinity_assets.captions.look_text import contrast_head
from medtrinity_assets.records import CaptionFacts, GridPosition, Measurements
from medtrinity_assets.rois import measure_roi, rois_from_masks, slice_values

from helpers import SOURCES, bundled_catalog, bundled_slices, needs_bundled_sources

pytestmark = needs_bundled_sources


@pytest.fixture(scope="module")
def catalog():
    return bundled_catalog()


def _slice(catalog, source_name: str, item_suffix: str, pick=lambda slices: slices[0]):
    return pick(bundled_slices(catalog, source_name, item_suffix)[0])


def _largest(rois, label=None):
    return max((r for r in rois if label is None or r.label == label), key=lambda r: int(r.mask.sum()))


def _caption(m: Measurements, modality: str, label: str, organs: list[str]) -> tuple[str, dict[str, str], CaptionFacts]:
    facts = CaptionFacts(
        modality=modality, organs=organs, coarse_caption="", roi_label=label, roi_position="middle center",
        roi_area_frac=0.05, measurements=m, position=GridPosition(2, 2),
    )
    text, sections = compose_caption(facts, seed=f"{modality}/{label}")
    return text, sections, facts


def _direction(contrast: float) -> str:
    bands = appearance().contrast
    if abs(contrast) < bands["similar"]:
        return "similar"
    return "darker" if contrast < 0 else "brighter"


def _agrees(sections, m) -> None:
    claims = read_claims(sections["texture"])
    assert claims and claims_agree(claims, assess(m)), (sections["texture"], claims, assess(m))


def _forms(word: str) -> set[str]:
    """Every wording of the reading `word` names (``hypointense`` -> also ``lower in signal``...),
    as listed in data/appearance.yaml."""
    for words in appearance().intensity_words.values():
        for key in ("darker", "brighter", "similar"):
            heads = {contrast_head(t) for t in getattr(words, key)}
            if word in heads:
                return heads
    return {word}


def _says(texture: str, word: str, surround: str) -> bool:
    """`word` (any of its equivalent wordings) stated relative to `surround` (or an equivalent
    surround: adjacent / neighbouring / nearby): ``darker than the surrounding skin`` or ``Against
    the surrounding skin, the lesion appears darker`` / ``Compared with ..., ... is darker``."""
    rings = {surround} | {surround.replace("the surrounding", alt) for alt in ("the adjacent", "the neighbouring", "nearby")}
    for w in _forms(word):
        for ring in rings:
            direct = any(f"{w} {link} {ring}" in texture for link in ("than", "relative to", "against", "to"))
            direct = direct or bool(re.search(rf"\b{re.escape(w)} and [a-z ]+ than {re.escape(ring)}", texture))  # "darker and more deeply coloured than"
            fronted = re.search(rf"(?:Against|Compared with|Relative to|Seen against) {re.escape(ring)}, [^.]*\b{re.escape(w)}\b", texture)
            if direct or fronted:
                return True
    return False


def _grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def _lps(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS"))


def test_ct_liver_attenuation_in_hounsfield_units_and_range(catalog):
    sl = _slice(catalog, "totalsegmentator_example", "example_ct_sm.nii.gz", lambda s: next(x for x in s if any(layer.label == "liver" for layer in x.masks)))
    liver = _largest(rois_from_masks(sl), "liver")
    m = measure_roi(liver.mask, slice_values(sl.pixels, sl.native, sl.native_unit), sl.frame.spacing_rc)
    ct = _lps(SOURCES / "totalsegmentator_example/example_ct_sm.nii.gz")[sl.slice_index]
    seg = _lps(SOURCES / "totalsegmentator_example/example_seg.nii.gz")[sl.slice_index] == 5
    expected_hu = float(ct[seg & liver.mask].mean())
    assert m.mean == pytest.approx(expected_hu, abs=0.5)
    text, sections, facts = _caption(m, "CT", "liver", ["abdomen"])
    assert f"about {expected_hu:.0f} HU" in sections["texture"]
    assert 20 <= expected_hu < 100 and "soft-tissue range" in sections["texture"]
    word = {"darker": "hypodense", "brighter": "hyperdense", "similar": "similar in attenuation"}[_direction(m.contrast)]
    assert word in sections["texture"]
    spacing = sl.frame.spacing_rc
    diameter = 2 * np.sqrt(liver.mask.sum() * spacing[0] * spacing[1] / np.pi)  # mask + spacing
    assert f"{diameter / 10:.1f} cm" in text or f"{diameter:.0f} mm" in text
    _agrees(sections, m)
    assert check_caption(text, sections, facts) == []


def test_mr_organ_signal_relative_to_surroundings(catalog):
    sl = _slice(catalog, "totalsegmentator_example", "example_mr_sm.nii.gz")
    roi = _largest(rois_from_masks(sl))
    m = measure_roi(roi.mask, slice_values(sl.pixels, sl.native, sl.native_unit), sl.frame.spacing_rc)
    assert m.intensity_unit == "relative" and m.contrast is not None
    text, sections, facts = _caption(m, "MRI", roi.label, ["abdomen"])
    word = {"darker": "hypointense", "brighter": "hyperintense", "similar": "similar in signal intensity"}[_direction(m.contrast)]
    assert _says(sections["texture"], word, "the surrounding tissue") or word.startswith("similar"), sections["texture"]
    assert "HU" not in text
    _agrees(sections, m)


def test_xray_lung_fields_darker_than_the_chest_wall(catalog):
    sl = _slice(catalog, "torchxrayvision_cxr", "16747_3_1.jpg")
    lungs = _largest(rois_from_masks(sl, merge_per_label=True), "lungs")
    m = measure_roi(lungs.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    grey = _grey(SOURCES / "torchxrayvision_cxr/images/16747_3_1.jpg")
    mask = _grey(SOURCES / "torchxrayvision_cxr/masks/16747_3_1_lungs_v7labs.jpg") > 127
    low, high = np.percentile(grey, (0.5, 99.5))
    assert m.mean == pytest.approx(float((grey[mask].mean() - low) / (high - low)), abs=0.01)
    text, sections, facts = _caption(m, "X-ray", "lungs", ["chest"])
    assert m.contrast <= -appearance().contrast["clear"]
    assert _says(sections["texture"], "darker", "the surrounding tissue"), sections["texture"]
    assert "two separate parts" in text and not re.search(r"\blungs (is|lies|has|appears)\b", text)
    assert "mm" not in text  # no pixel spacing: no size in mm
    _agrees(sections, m)


def test_ultrasound_vessel_hypoechoic(catalog):
    sl = _slice(catalog, "usgra_nerve_ultrasound", "0020.png")
    vessel = _largest(rois_from_masks(sl), "blood vessel")
    m = measure_roi(vessel.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    grey = _grey(SOURCES / "usgra_nerve_ultrasound/images/0020.png")
    low, high = np.percentile(grey, (0.5, 99.5))
    assert m.mean == pytest.approx(float((grey[vessel.mask].mean() - low) / (high - low)), abs=1e-3)
    text, sections, facts = _caption(m, "Ultrasound", "blood vessel", ["blood vessels"])
    assert _direction(m.contrast) == "darker" and "hypoechoic" in sections["texture"]
    _agrees(sections, m)


def test_histopathology_dark_nuclei_region_darker(catalog):
    sl = _slice(catalog, "stardist_dsb2018", "histo.jpg")
    lum = sl.pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    h, w = lum.shape
    region = np.zeros(lum.shape, bool)
    centre = lum[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    region[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = centre < np.percentile(centre, 20)
    m = measure_roi(region, slice_values(sl.pixels))
    assert m.mean == pytest.approx(float(lum[region].mean()) / 255.0, abs=2e-3)
    text, sections, facts = _caption(m, "Histopathology", "nuclei", ["tissue section"])
    if _direction(m.contrast) == "darker":
        assert _says(sections["texture"], "darker", "the surrounding tissue"), sections["texture"]
    assert m.n_components > 1 and "separate parts" in sections["texture"] and "outline" not in sections["texture"]
    _agrees(sections, m)


def test_fluorescence_nucleus_brighter_than_background_and_counted(catalog):
    sl = _slice(catalog, "stardist_dsb2018", "img2d.tif")
    rois = rois_from_masks(sl)
    union = np.zeros_like(rois[0].mask)
    for r in rois:
        union |= r.mask
    nucleus = _largest(rois)
    m = measure_roi(nucleus.mask, slice_values(sl.pixels, sl.native, sl.native_unit), same_label=union & ~nucleus.mask, label_count=len(rois))
    raw = np.asarray(Image.open(SOURCES / "stardist_dsb2018/img2d.tif"), dtype=np.float64)
    low, high = np.percentile(raw, (0.5, 99.5))
    assert m.mean == pytest.approx(float(((raw[nucleus.mask] - low) / (high - low)).mean()), abs=2e-3)
    text, sections, facts = _caption(m, "Fluorescence microscopy", "nucleus", ["cell nuclei"])
    assert _says(sections["texture"], "brighter", "the surrounding background"), sections["texture"]
    assert f"{len(rois)} nuclei" in sections["roi"] and "#" not in text
    _agrees(sections, m)


def test_dermoscopy_lesion_darker_and_deeper_in_colour_than_skin(catalog):
    sl = _slice(catalog, "ham10000_dermoscopy", "ISIC_0027287.jpg")
    lesion = _largest(rois_from_masks(sl), "skin lesion")
    m = measure_roi(lesion.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    rgb = np.asarray(Image.open(SOURCES / "ham10000_dermoscopy/images/ISIC_0027287.jpg").convert("RGB"), dtype=np.float64)
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    assert m.mean == pytest.approx(float(lum[lesion.mask].mean()) / 255.0, abs=2e-3)
    text, sections, facts = _caption(m, "Dermoscopy", "skin lesion", ["skin"])
    assert _says(sections["texture"], "darker", "the surrounding skin"), sections["texture"]
    if m.saturation_delta >= appearance().colour["saturation"]:
        assert re.search(r"more deeply coloured(?: than the (?:surrounding|adjacent) skin|\.)", sections["texture"]), sections["texture"]
    _agrees(sections, m)
    assert check_caption(text, sections, facts) == []


def test_fundus_vessel_tree_in_parts(catalog):
    sl = _slice(catalog, "chase_db1_fundus", "Image_04L.jpg")
    vessels = rois_from_masks(sl, merge_per_label=True)[0]
    m = measure_roi(vessels.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    text, sections, facts = _caption(m, "Fundus photography", "retinal vessels", ["retina"])
    # the vessel tree is only 1-3% darker than a retina whose illumination varies across the field:
    # a small standardised contrast but a raw difference above similar_max_difference, so neither
    # "similar" nor "darker" is claimed (the wording follows the measurement, not the other way round)
    diff = m.mean - m.ring_mean
    assert diff < 0 and abs(m.contrast) < appearance().contrast["similar"]
    if abs(diff) >= appearance().reliability.similar_max_difference["rgb"]:
        assert not re.search(r"similar|darker|brighter", sections["texture"]), sections["texture"]
    else:
        assert "similar in brightness to the surrounding retina" in sections["texture"]
    if m.n_components > 1:
        assert "separate parts" in sections["texture"] and "outline" not in sections["texture"]
    _agrees(sections, m)


def test_no_appearance_claim_from_unreliable_measurements():
    rng = np.random.default_rng(0)
    noisy = slice_values(rng.integers(0, 255, (60, 60), dtype=np.uint8))
    dot = np.zeros((60, 60), bool)
    dot[30:33, 30:33] = True  # 9 px: below the reliability minimum
    m = measure_roi(dot, noisy)
    _, sections, _ = _caption(m, "MRI", "lesion", ["brain"])
    assert read_claims(sections["texture"]) == {} and re.search(r"\b(?:not|no)\b", sections["texture"], re.I)
    # a capped contrast (tiny pooled spread) or a difference of means below the minimum: no claim
    capped = Measurements(intensity_unit="relative", mean=0.5, ring_mean=0.49, std=0.0, ring_std=0.0, contrast=50.0, area_px=400)
    assert assess(capped).contrast is None
    faint = Measurements(intensity_unit="HU", mean=40.0, ring_mean=36.0, std=2.0, ring_std=2.0, contrast=2.0, area_px=400)
    assert assess(faint).contrast is None
    no_ring = Measurements(intensity_unit="HU", mean=40.0, std=10.0, area_px=400, unmeasured={"ring_mean": "roi_covers_image"})
    text, sections, _ = _caption(no_ring, "CT", "liver", ["abdomen"])
    assert not re.search(r"hypodense|hyperdense|darker|brighter", text) and "about 40 HU" in text


@pytest.mark.parametrize(("mean", "said"), [(-0.4, "about 0 HU"), (0.4, "about 0 HU"), (-0.6, "about -1 HU"), (44.5, "about 44 HU")])
def test_hounsfield_number_is_written_as_a_radiologist_would(mean, said):
    """A pancreas averaging -0.4 HU read "about -0 HU" in the demo: the number is rounded first."""
    m = Measurements(intensity_unit="HU", mean=mean, std=10.0, area_px=400, unmeasured={"ring_mean": "roi_covers_image"})
    text, _, _ = _caption(m, "CT", "pancreas", ["abdomen"])
    assert said in text and "-0 " not in text
    assert claims_agree(read_claims(text), assess(m))


def test_dermoscopy_colour_names_from_the_mean_colours(catalog):
    """ISIC_0024311: the lesion's mean colour (R, G, B about .81, .37, .36: HSV hue 2 deg, saturation
    .56) is red, the skin around it (.91, .55, .56: saturation .40, value .91) pink; the caption names
    both, the check accepts them and rejects other names."""
    import colorsys

    from medtrinity_assets.captions.colour_names import colour_name

    sl = _slice(catalog, "ham10000_dermoscopy", "ISIC_0024311.jpg")
    lesion = _largest(rois_from_masks(sl), "skin lesion")
    m = measure_roi(lesion.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    h, s, v = colorsys.rgb_to_hsv(*m.rgb_mean)
    assert (h * 360 < 12 or h * 360 > 340) and s > 0.45 and v > 0.6  # independent of the name table
    hr, sr, vr = colorsys.rgb_to_hsv(*m.ring_rgb_mean)
    assert (hr * 360 < 20 or hr * 360 > 300) and 0.12 < sr < 0.45 and vr > 0.6
    assert (colour_name(m.rgb_mean), colour_name(m.ring_rgb_mean)) == ("red", "pink")
    text, sections, facts = _caption(m, "Dermoscopy", "skin lesion", ["skin"])
    assert re.search(r"\b(?:red|reddish)\b", sections["texture"]) and re.search(r"\b(?:pink|pinkish)\b", sections["texture"]), sections["texture"]
    _agrees(sections, m)
    assert check_caption(text, sections, facts) == []
    assert "appearance_contradiction" in check_caption(text + " The skin lesion is blue.", sections, facts)
    assert "appearance_contradiction" in check_caption(text + " The skin lesion is red, while the surrounding skin is green.", sections, facts)
    # a compound colour states one colour: it fails only when none of its names fits
    assert check_caption(text + " It is a reddish-brown lesion on pink skin.", sections, facts) == []
    assert "appearance_contradiction" in check_caption(text + " It is a blue-green lesion.", sections, facts)


def test_no_colour_name_for_a_grey_capture_or_a_grey_modality(catalog):
    sl = _slice(catalog, "usgra_nerve_ultrasound", "0100.png")
    vessel = _largest(rois_from_masks(sl), "blood vessel")
    m = measure_roi(vessel.mask, slice_values(sl.pixels, sl.native, sl.native_unit))
    assert m.rgb_mean is not None and assess(m).colour_name is None  # measured, but achromatic: not named
    text, sections, facts = _caption(m, "Ultrasound", "blood vessel", ["peripheral nerve"])
    assert not re.search(r"\b(?:grey|red|pink|colou?r)\b", sections["texture"]), sections["texture"]
    ct = Measurements(intensity_unit="HU", mean=40.0, ring_mean=0.0, std=10.0, ring_std=10.0, contrast=4.0, area_px=400)
    assert assess(ct).colour_name is None


def test_slightly_needs_a_small_visible_difference():
    """The degree follows the standardised contrast, but "slightly" also needs a Michelson contrast of
    the means below appearance.yaml slight_michelson_max: an ultrasound vessel lumen at a third of the
    echo level of a heterogeneous surround is "hypoechoic", and "slightly hypoechoic" fails the check; an 8-bit CT ventricle 11% brighter stays
    "slightly hyperdense"; CT in HU is read by the standardised contrast alone."""
    # usgra 0150.png, the blood vessel of the demo: a lumen at a third of the surround's echo level
    lumen = Measurements(intensity_unit="relative", mean=0.0501, ring_mean=0.1537, std=0.0553, ring_std=0.1031, contrast=-1.252, area_px=7900)
    assert assess(lumen).contrast == "darker" and assess(lumen).degree == "clear"
    ventricle = Measurements(intensity_unit="relative", mean=0.52, ring_mean=0.47, std=0.05, ring_std=0.04, contrast=1.2, area_px=900)
    assert assess(ventricle).degree == "slight"
    liver = Measurements(intensity_unit="HU", mean=58.0, ring_mean=12.0, std=14.0, ring_std=48.0, contrast=1.3, area_px=11990)
    assert assess(liver).degree == "slight"
    facts = CaptionFacts(
        modality="Ultrasound", organs=["peripheral nerve"], roi_label="blood vessel", measurements=lumen,
        coarse_caption="Ultrasound image, blood vessel.", roi_position="upper right", roi_area_frac=0.0116,
    )
    text, sections = compose_caption(facts, seed="v")
    assert "hypoechoic" in text and "slightly" not in text, text
    said = text.replace("hypoechoic", "slightly hypoechoic", 1)
    assert "appearance_contradiction" in check_caption(said, {**sections, "texture": said}, facts)


def test_sets_apart_is_said_of_a_difference_only():
    """"Its brightness sets the X apart: ..." is a wording for a darker or brighter ROI, never for
    one similar to its surroundings (mt-composer-v13)."""
    def facts_for(m: Measurements) -> CaptionFacts:
        return CaptionFacts(modality="CT", organs=["abdomen"], roi_label="inferior_vena_cava", measurements=m,
                            coarse_caption="CT image, inferior vena cava.", roi_position="middle center", roi_area_frac=0.004)

    similar = Measurements(intensity_unit="HU", mean=42.2, ring_mean=40.0, std=12.0, ring_std=20.0, contrast=0.13, area_px=40)
    darker = Measurements(intensity_unit="HU", mean=12.0, ring_mean=45.0, std=12.0, ring_std=20.0, contrast=-2.0, area_px=40)
    assert assess(similar).contrast == "similar" and assess(darker).contrast == "darker"
    alike = [compose_caption(facts_for(similar), seed=i)[0] for i in range(200)]
    apart = [compose_caption(facts_for(darker), seed=i)[0] for i in range(200)]
    assert not any("apart:" in t for t in alike) and any("similar in attenuation" in t or "isodense" in t for t in alike)
    assert any("sets the inferior vena cava apart: it is" in t for t in apart)  # the form itself is kept
