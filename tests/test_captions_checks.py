"""check_caption catches planted contradictions and leaves correct wording alone."""

from __future__ import annotations

import re

import dataclasses

import pytest

from medtrinity_assets.captions import CaptionCheckConfig, check_caption, compose_caption
from medtrinity_assets.captions.checks import image_sides, patient_sides
from medtrinity_assets.captions.examples import ct_liver, microscopy_nucleus, mri_brain_whole, xray_lungs


@pytest.fixture
def liver():
    facts = ct_liver()
    text, sections = compose_caption(facts, seed="fixed")
    assert check_caption(text, sections, facts) == []
    return facts, text, sections


GOOD_XRAY = (
    "This frontal chest radiograph shows both lungs occupying the central part of the image. The lung fields show "
    "patchy opacities consistent with the recorded tuberculosis, with the heart and mediastinum between them. "
    "Dense bone is radiopaque while the aerated lungs are radiolucent."
)
GOOD_XRAY_SECTIONS = {
    "modality": "X-ray (chest radiograph)",
    "organs": "lungs, heart, ribs",
    "roi": "Both lungs, in the central part of the image.",
    "texture": "Patchy opacities.",
    "relations": "The heart lies between the lungs.",
}


def test_free_text_answer_passes():
    assert check_caption(GOOD_XRAY, GOOD_XRAY_SECTIONS, xray_lungs()) == []


def test_wrong_side_is_caught(liver):
    facts, text, sections = liver
    swapped = re.sub(r"\bupper left\b", "lower right", text)  # any of the equivalent phrasings of the cell
    assert swapped != text and "side_contradiction" in check_caption(swapped, sections, facts)
    roi = dict(sections, roi="The liver is in the lower left.")
    assert "side_contradiction" in check_caption(text, roi, facts)
    roi = dict(sections, roi="The liver is seen on the right side of the image.")
    assert "side_contradiction" in check_caption(text, roi, facts)


def test_patient_side_contradiction_is_caught(liver):
    facts, text, sections = liver
    roi = dict(sections, roi=sections["roi"].replace("patient's right", "patient's left"))
    assert "side_contradiction" in check_caption(text, roi, facts)
    quadrant = dict(sections, roi="The liver fills the left upper quadrant.")
    assert "side_contradiction" in check_caption(text, quadrant, facts)


@pytest.mark.parametrize(
    "sentence",
    [
        "The liver lies to the right of the spleen.",  # relative to a structure
        "It sits on the right side of the spleen.",
        "The inferior vena cava lies near the right kidney.",  # anatomical names
        "The left atrium is not in view.",
        "It lies to the patient's right of the aorta.",
        "The liver fills the right upper quadrant.",  # patient quadrant, agrees (radiological)
    ],
)
def test_names_and_relative_positions_are_not_sides(liver, sentence):
    facts, text, sections = liver
    roi = dict(sections, roi=sections["roi"] + " " + sentence)
    assert "side_contradiction" not in check_caption(text + " " + sentence, roi, facts)


def test_centre_facts_contradict_nothing():
    facts = xray_lungs()
    text = GOOD_XRAY + " The right lung is larger, and more opacity lies in the left lower part of the image."
    assert "side_contradiction" not in check_caption(text, GOOD_XRAY_SECTIONS, facts)


def test_side_readers():
    assert image_sides("in the upper left part of the image") == {"upper", "left"}
    assert image_sides("on the left side of the spleen") == set()
    assert image_sides("upper-right of the image") == {"upper", "right"}
    assert image_sides("left of centre") == {"left"}
    assert image_sides("the left lung") == set()
    assert patient_sides("in the patient's left lower region") == {"left"}
    assert patient_sides("to the patient's left of the aorta") == set()


def test_wrong_modality_is_caught(liver):
    facts, text, sections = liver
    mri = text.replace("CT", "MRI")
    problems = check_caption(mri, sections, facts)
    assert "wrong_modality" in problems and "missing_modality" in problems
    bad_section = dict(sections, modality="Magnetic resonance imaging")
    # the modality section also disagrees with the description's CT
    assert check_caption(text, bad_section, facts) == ["wrong_modality", "section_contradiction"]
    # naming another modality in passing (not as the image's) is fine
    assert check_caption(text + " Unlike MRI, it needs no magnet.", sections, facts) == []


def test_modality_synonyms_count():
    facts = xray_lungs()
    for phrase in ("chest radiograph", "X-ray", "radiography", "plain film"):
        text = f"This {phrase} shows both lungs in the central part of the image. " + GOOD_XRAY.split(". ", 1)[1]
        assert "missing_modality" not in check_caption(text, GOOD_XRAY_SECTIONS, facts), phrase
    text = "This image shows both lungs in the central part of the image. " + GOOD_XRAY.split(". ", 1)[1]
    text = text.replace("radiopaque", "bright").replace("radiolucent", "dark")
    assert "missing_modality" in check_caption(text, GOOD_XRAY_SECTIONS, facts)


def test_forbidden_phrases_are_caught(liver):
    facts, text, sections = liver
    for phrase in (
        "The bounding box marks the liver.",
        "The caption says liver.",
        "Per the annotation, liver.",
        "The mask covers the liver.",
        "The highlighted region is the liver.",
        "According to the provided knowledge, it is a tumour.",
    ):
        assert "forbidden_phrase" in check_caption(text + " " + phrase, sections, facts), phrase
    assert "forbidden_phrase" in check_caption(text, dict(sections, roi="Inside the red box."), facts)


def test_refusals_are_caught(liver):
    facts, text, sections = liver
    for phrase in (
        "I'm sorry, but I cannot help with that.",
        "As an AI, I cannot view images.",
        "I am unable to analyze the image.",
    ):
        assert "refusal" in check_caption(phrase + " " + text, sections, facts), phrase
    # cautious clinical language is not a refusal
    assert check_caption(text + " Malignancy cannot be excluded.", sections, facts) == []


def test_wrong_and_missing_organs(liver):
    facts, text, sections = liver
    assert "wrong_organ" in check_caption(text + " The brain appears normal.", sections, facts)
    # neighbouring regions are allowed (lung bases on an abdominal slice)
    assert "wrong_organ" not in check_caption(text + " The lung bases are clear.", sections, facts)
    stripped = "This CT image shows soft tissue in the upper left part of the image. " * 4
    problems = check_caption(stripped, sections, facts)
    assert "missing_organ" in problems and "missing_roi_label" in problems


def test_organ_region_check_uses_regions():
    facts = xray_lungs()
    assert "wrong_organ" in check_caption(GOOD_XRAY + " The prostate is unremarkable.", GOOD_XRAY_SECTIONS, facts)
    assert "wrong_organ" not in check_caption(GOOD_XRAY + " The liver dome is visible.", GOOD_XRAY_SECTIONS, facts)
    # no region known (microscopy): nothing to compare
    nucleus = microscopy_nucleus()
    text, sections = compose_caption(nucleus, seed="s")
    assert "wrong_organ" not in check_caption(text + " The brain is not shown.", sections, nucleus)
    off = CaptionCheckConfig(check_organ_region=False)
    assert "wrong_organ" not in check_caption(GOOD_XRAY + " The prostate.", GOOD_XRAY_SECTIONS, facts, off)


def test_missing_sections_and_lengths(liver):
    facts, text, sections = liver
    problems = check_caption(text, dict(sections, texture="", relations="  "), facts)
    assert problems == ["missing_section:texture", "missing_section:relations"]
    assert check_caption(text, {}, facts, CaptionCheckConfig(require_sections=False)) == []
    assert "too_short" in check_caption("CT of the liver.", sections, facts)
    assert "too_long" in check_caption(text + " More words here." * 200, sections, facts)
    assert "too_long" in check_caption(text, sections, facts, CaptionCheckConfig(max_words=30))
    assert "too_short" not in check_caption(
        "CT liver upper left part of the image.", sections, facts, CaptionCheckConfig(min_words=5)
    )


def test_whole_image_facts_skip_roi_checks():
    facts = mri_brain_whole()
    text, sections = compose_caption(facts, seed="z")
    assert check_caption(text + " Lower left part of the image is darker.", sections, facts) == []
    assert "wrong_modality" in check_caption(text.replace("MRI", "CT"), sections, facts)


def test_unknown_modality_requires_literal_name():
    facts = dataclasses.replace(mri_brain_whole(), modality="thermography")
    text, sections = compose_caption(facts, seed="z")
    assert "thermography" in text
    assert check_caption(text, sections, facts) == []
    assert "missing_modality" in check_caption(text.replace("thermography", "scan"), sections, facts)


def test_claims_in_other_phrasings(liver):
    facts = dataclasses.replace(liver[0], spacing_mm=None, frame=None, measurements=None)  # no pixel spacing known
    text, sections = compose_caption(facts, seed="fixed")
    for sentence, code in [
        ("The liver lies on the viewer's right.", "side_contradiction"),
        ("The liver fills the left hemiabdomen.", "side_contradiction"),
        ("The liver is left-sided.", "side_contradiction"),
        ("The structure of interest is the spleen.", "wrong_subject"),
        ("There is no evidence of hepatocellular carcinoma.", "negated_finding"),
        ("A second lesion is seen in the spleen.", "count_contradiction"),
        ("The liver measures 24 cm.", "unsupported_size"),
        ("On this T2-weighted MRI the liver is bright.", "wrong_modality"),
    ]:
        assert code in check_caption(text + " " + sentence, sections, facts), sentence


def test_correct_phrasings_raise_nothing(liver):
    facts, text, sections = liver
    for sentence in [
        "The liver shows higher X-ray attenuation than the surrounding fat.",  # CT is X-ray physics
        "No second lesion is seen on this slice.",
        "Hepatocellular carcinoma typically shows wash-out on dynamic imaging.",  # generic knowledge
        "The liver lies to the right of the spleen.",  # relative to a structure
        "Unlike MRI, CT needs no magnet.",
    ]:
        assert check_caption(text + " " + sentence, sections, facts) == [], sentence


def test_patient_side_from_the_display_frame():
    from medtrinity_assets.records import DisplayFrame, GridPosition

    facts = dataclasses.replace(
        ct_liver(),
        extra={},
        position=GridPosition(row=1, col=0),  # image left, no patient side recorded
        frame=DisplayFrame(plane="axial", lateral="radiological", up="anterior"),
    )
    text, sections = compose_caption(facts, seed="fixed")
    assert "side_contradiction" in check_caption(text + " It lies in the patient's left upper abdomen.", sections, facts)
    neuro = dataclasses.replace(facts, frame=DisplayFrame(plane="axial", lateral="neurological", up="anterior"))
    assert "side_contradiction" not in check_caption(text + " It lies on the patient's left.", sections, neuro)
