"""Burned-in text on real bundled images: detection recall on planted names, dates, IDs and times;
no flags on the clean images; masking leaves nothing readable; the policies; DICOM
BurnedInAnnotation and header names in pixels. The real PP-OCRv4 engine runs in every test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from phi_corpus import REAL_TEXT, bundled_slices, clean_bundled, one_per_source, write_dicom

from medtrinity_assets.phi import KEPT, MASKED, NO_TEXT, QUARANTINED, PhiPolicy, TextRegion, judge, screen_pixels
from medtrinity_assets.phi.ocr import get_engine
from medtrinity_assets.phi.patterns import normalise
from medtrinity_assets.phi.pixels import find_text, padded
from phi_synthetic import build_corpus, coverage


@pytest.fixture(scope="module")
def engine():
    return get_engine()


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(one_per_source(), variants=2, per_image=3, seed=1)


def test_corpus_varies_fonts_sizes_contrasts_and_positions(corpus):
    planted = [p for im in corpus for p in im.planted]
    assert len(planted) >= 40
    assert {p.kind for p in planted} == {"name", "date", "id", "time"}
    assert len({p.font for p in planted}) >= 4 and len({p.size for p in planted}) >= 4
    assert len({p.contrast for p in planted}) >= 4 and len({p.position for p in planted}) >= 5
    # text is really in the pixels: every planted box differs from its base image
    bases = dict(one_per_source())
    for im in corpus:
        for p in im.planted:
            x0, y0, x1, y1 = p.box
            assert not np.array_equal(im.pixels[y0 : y1 + 1, x0 : x1 + 1], bases[im.base][y0 : y1 + 1, x0 : x1 + 1])


def test_planted_text_is_detected_and_flagged(corpus, engine):
    detected = flagged = total = 0
    for im in corpus:
        regions = find_text(im.pixels, engine)
        for p in im.planted:
            total += 1
            detected += coverage(p.box, [r.box for r in regions]) >= 0.5
            flagged += any(r.kinds for r in regions if coverage(r.box, [p.box]) > 0)
    assert detected / total >= 0.9, (detected, total)
    assert flagged / total >= 0.85, (flagged, total)


def test_clean_bundled_images_are_not_flagged(engine):
    clean = clean_bundled()
    flagged = [name for name, pixels in clean if any(r.kinds for r in find_text(pixels, engine))]
    assert len(flagged) <= 0.05 * len(clean), flagged
    # the one bundled image with real burned-in annotations (institution, time) is flagged
    us1 = dict(bundled_slices())[REAL_TEXT[0]]
    kinds = {k for r in find_text(us1, engine) for k in r.kinds}
    assert {"name", "time"} <= kinds


def _read_back(pixels, engine) -> str:
    return " ".join(normalise(r.text) for r in engine.read(pixels))


def test_masking_leaves_no_planted_string_readable(corpus, engine):
    masked_any = 0
    for im in corpus:
        pixels = im.pixels.copy()
        verdict = screen_pixels(pixels, PhiPolicy(pixels="mask"), False, engine)
        if verdict.action == QUARANTINED:  # mask_incomplete: the record would never be released
            assert verdict.reasons == ["phi_pixels:mask_incomplete"]
            continue
        assert verdict.action in (MASKED, NO_TEXT)  # NO_TEXT: nothing detected (a recall miss)
        masked_any += verdict.action == MASKED
        text = f" {_read_back(pixels, engine)} "
        for p in im.planted:
            for token in normalise(p.text).split():
                if len(token) >= 3 and token not in {"mrn", "acc"}:
                    assert f" {token} " not in text and token not in text.replace(" ", ""), (im.name, p.kind)
        # outside the padded regions, nothing changed
        keep = np.ones(pixels.shape[:2], dtype=bool)
        for r in verdict.regions:
            x0, y0, x1, y1 = padded(r.box, pixels.shape[1], pixels.shape[0], engine.settings)
            keep[y0 : y1 + 1, x0 : x1 + 1] = False
        assert np.array_equal(pixels[keep], im.pixels[keep])
    assert masked_any >= len(corpus) - 2


@pytest.mark.parametrize(
    ("policy", "kinds", "burned_in", "action", "reasons"),
    [
        ("auto", [], False, NO_TEXT, []),
        ("auto", [()], False, KEPT, []),
        ("auto", [("date",)], False, QUARANTINED, ["phi_pixels:date"]),
        ("auto", [], True, QUARANTINED, ["phi_pixels:burned_in_annotation"]),
        ("mask", [("name",), ()], True, MASKED, []),
        ("mask", [], True, QUARANTINED, ["phi_pixels:burned_in_unlocated"]),
        ("mask", [], False, NO_TEXT, []),
        ("quarantine", [()], False, QUARANTINED, ["phi_pixels:text"]),
        ("quarantine", [("id",)], False, QUARANTINED, ["phi_pixels:id"]),
        ("allow", [("date",)], True, KEPT, []),
        ("allow", [("header_name", "name")], False, QUARANTINED, ["phi_pixels:header_name"]),
    ],
)
def test_policy_decisions(policy, kinds, burned_in, action, reasons):
    regions = [TextRegion((10 * i, 0, 10 * i + 8, 6), tuple(k)) for i, k in enumerate(kinds)]
    verdict = judge(PhiPolicy(pixels=policy), regions, burned_in)
    assert (verdict.action, verdict.reasons) == (action, reasons)


def _dicom_item(tmp_path, pixels, **header):
    from helpers import file_item

    path = write_dicom(tmp_path / "scan.dcm", pixels, **header)
    return file_item(path, "dicom", "X-ray", root=tmp_path, dataset="planted")


def _draw(pixels: np.ndarray, text: str, xy=(12, 12), size=22) -> np.ndarray:
    from PIL import Image, ImageDraw

    from phi_synthetic import font_names, load_font

    img = Image.fromarray(pixels)
    ImageDraw.Draw(img).text(xy, text, font=load_font(font_names()[-1], size), fill=255)
    return np.asarray(img).copy()


def _cxr() -> np.ndarray:
    return dict(bundled_slices())["torchxrayvision_cxr/images/h0001.png@None"]


def test_dicom_flagged_burned_in_with_text_is_quarantined(tmp_path):
    from medtrinity_assets.ingest import IngestPolicy, load_item
    from medtrinity_assets.phi import screen_item

    pixels = _draw(_draw(_cxr(), "RIVERA^ISABEL"), "MRN 5839201", xy=(12, 460))
    item = _dicom_item(tmp_path, pixels, patient_name="Rivera^Isabel", patient_id="5839201", burned_in="YES")
    slices = load_item(item, IngestPolicy())
    [cols] = screen_item(item, slices, PhiPolicy(), "MEDTRINITY_PATIENT_SALT")
    assert cols["phi_action"] == QUARANTINED and cols["phi_text_regions"] >= 2
    assert {"phi_pixels:burned_in_annotation", "phi_pixels:header_name", "phi_pixels:name", "phi_pixels:id"} <= set(cols["phi_reasons"])
    assert cols["phi_header_hashes"] and all(len(h) == 24 for h in cols["phi_header_hashes"])
    dumped = json.dumps(cols).lower()
    for value in ("rivera", "isabel", "5839201"):
        assert value not in dumped


def test_flag_yes_without_detectable_text_is_quarantined_under_mask(tmp_path):
    from medtrinity_assets.ingest import IngestPolicy, load_item
    from medtrinity_assets.phi import screen_item

    item = _dicom_item(tmp_path, _cxr(), patient_name="Moreau^Claire", patient_id="PX-88", burned_in="YES")
    slices = load_item(item, IngestPolicy())
    [cols] = screen_item(item, slices, PhiPolicy(pixels="mask"), "MEDTRINITY_PATIENT_SALT")
    assert cols["phi_action"] == QUARANTINED and cols["phi_reasons"] == ["phi_pixels:burned_in_unlocated"]


def test_header_name_in_pixels_is_quarantined_even_when_allowed(tmp_path):
    from medtrinity_assets.ingest import IngestPolicy, load_item
    from medtrinity_assets.phi import screen_item

    pixels = _draw(_cxr(), "Haruto Nakamura")
    item = _dicom_item(tmp_path, pixels, patient_name="NAKAMURA^HARUTO", patient_id="Q77120", burned_in=None)
    slices = load_item(item, IngestPolicy())
    [cols] = screen_item(item, slices, PhiPolicy(pixels="allow"), "MEDTRINITY_PATIENT_SALT")
    assert cols["phi_action"] == QUARANTINED and cols["phi_reasons"] == ["phi_pixels:header_name"]


def test_mask_policy_fills_the_slice_before_it_is_written(tmp_path):
    from medtrinity_assets.ingest import IngestPolicy, load_item
    from medtrinity_assets.phi import screen_item

    pixels = _draw(_cxr(), "12/04/1961", xy=(300, 470))
    item = _dicom_item(tmp_path, pixels, patient_name="Dlamini^Sipho", patient_id="ZA1100", burned_in="YES")
    [sl] = load_item(item, IngestPolicy())
    before = sl.pixels.copy()
    [cols] = screen_item(item, [sl], PhiPolicy(pixels="mask"), "MEDTRINITY_PATIENT_SALT")
    assert cols["phi_action"] == MASKED and cols["phi_kinds"] == ["date"] and cols["phi_reasons"] == []
    x0, y0, x1, y1 = cols["phi_text_boxes"][0]
    assert x0 >= 290 and y0 >= 455
    assert (sl.pixels[y0 : y1 + 1, x0 : x1 + 1] == 0).all() and not np.array_equal(before, sl.pixels)
    assert not any(r.kinds for r in find_text(sl.pixels, get_engine()))
