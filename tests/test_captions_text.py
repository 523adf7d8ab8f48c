"""Coarse caption, prompt, prompt hash, section parsing and the position vocabulary."""

from __future__ import annotations

import dataclasses
import re

import pytest

from medtrinity_assets.captions import (
    PROMPT_VERSION,
    SECTION_KEYS,
    build_prompt,
    coarse_caption,
    format_sections,
    parse_output,
    parse_sections,
    prompt_hash,
    retry_prompt,
)
from medtrinity_assets.captions.examples import ct_liver, mri_brain_whole
from medtrinity_assets.captions.labels import image_place
from medtrinity_assets.captions.vocab import (
    label_text,
    modality_families,
    parse_position_words,
)
from medtrinity_assets.records import GridPosition, Passage
from medtrinity_assets.grid import position_grid

POSITION_VOCABULARY = position_grid().vocabulary()

# ----------------------------------------------------------------------------- coarse caption


def test_coarse_caption_full():
    text = coarse_caption("CT", ["abdomen"], ["hepatocellular carcinoma"], ["liver", "spleen", "liver", "aorta"])
    assert text == "CT image of the abdomen showing liver, spleen and aorta, with findings: hepatocellular carcinoma."


def test_coarse_caption_spells_out_codes_and_labels():
    assert coarse_caption("MR", ["brain"], [], ["heart_atrium_left"]).startswith(
        "MRI image of the brain showing left heart atrium"
    )
    assert coarse_caption("DX", ["chest"], ["pneumonia"], []) == "X-ray image of the chest, with findings: pneumonia."
    assert coarse_caption("microscopy", [], [], ["nucleus"]) == "Microscopy image showing nucleus."


def test_coarse_caption_without_labels_or_organs():
    assert coarse_caption("CT", [], [], []) == "CT image, no findings or structures listed."
    assert coarse_caption("", [], [], []) == "Medical image, no findings or structures listed."


# ----------------------------------------------------------------------------- prompt


def test_prompt_leaves_out_definitions_judged_wrong():
    """A definition in wording.yaml definition_skip (the pancreas's 'blood glucose regulating enzymes')
    is given to no model; other passages about the same concept are."""
    import dataclasses

    from medtrinity_assets.records import Passage

    wrong = Passage("anatomy:UBERON:0001264:0", "anatomy", "pancreas", "An endoderm derived structure that produces precursors of digestive enzymes and blood glucose regulating enzymes.", 1.0, ("UBERON:0001264",))
    other = Passage("medquad:0001:0", "medquad", "Pancreatitis", "The pancreas is a large gland behind the stomach.", 0.5, ("UBERON:0001264",))
    prompt = build_prompt(dataclasses.replace(ct_liver(), knowledge=[wrong, other]))
    assert "glucose regulating enzymes" not in prompt and "[anatomy:UBERON:0001264:0]" not in prompt
    assert "[medquad:0001:0] Pancreatitis: The pancreas is a large gland behind the stomach." in prompt


def test_prompt_has_header_fields_questions_and_instruction():
    facts = ct_liver()
    prompt = build_prompt(facts)
    assert PROMPT_VERSION == "mt-prompt-v9"
    assert f"Coarse caption: {facts.coarse_caption}" in prompt
    assert "Specific position: in the upper left part of the image" in prompt
    assert "18.3% of the image area" in prompt
    assert "patient frame: on the patient's right, anteriorly" in prompt
    assert "it borders the spleen" in prompt and "#" not in prompt
    assert "touches" not in prompt  # contacts not recorded: nothing said about them
    touching = build_prompt(dataclasses.replace(facts, contacts=["spleen", "inferior_vena_cava"]))
    assert "it touches the spleen and the inferior vena cava, and no other marked structure" in touching
    assert "it touches no other marked structure" in build_prompt(dataclasses.replace(facts, contacts=[]))
    plural = build_prompt(dataclasses.replace(facts, roi_label="portal_vein_and_splenic_vein", contacts=["spleen"]))  # agreement
    assert "they cover about" in plural and "they border the spleen; they lie anterior" in plural and "they touch the spleen" in plural
    assert not re.search(r"\bit (?:lie|border|touch|cover)\b", plural)
    # the measurements, with the reading the composer gives them
    assert "Measured appearance of the region of interest" in prompt
    assert "mean 58.2 HU" in prompt and "slightly brighter than the surrounding tissue" in prompt
    assert "-> homogeneous" in prompt and "-> oval" in prompt and "-> well defined" in prompt
    assert "about 99 mm across" in prompt
    assert "Medical annotation: region of interest: liver; image-level findings: hepatocellular carcinoma" in prompt
    assert "inferior vena cava" in prompt
    assert "Medical knowledge:" in prompt
    for passage in facts.knowledge:
        assert f"[{passage.chunk_id}]" in prompt
    # the three questions
    assert "1. Describe the whole image in detail" in prompt
    assert "2. Describe the region of interest: where it is located in the image, its position relative to" in prompt
    assert "as measured above" in prompt and "make no appearance claim the measurements do not support" in prompt
    assert "3. Describe the relationship between the region of interest and the surrounding" in prompt
    # integrate, without mentioning the marking or the inputs
    assert "integrate the answers into one coherent description" in prompt
    assert "do not mention the outline, any box or mask, the coarse caption, the annotation" in prompt
    # output format: five labelled sections, then the description
    format_part = prompt.split("Answer in exactly this format:")[1]
    headers = [line.split(":")[0] for line in format_part.strip().splitlines()]
    assert headers == [
        "Modality",
        "Organs and tissues",
        "Region of interest",
        "Colour and texture",
        "Relationships",
        "Description",
    ]


def test_prompt_without_roi_describes_whole_image():
    prompt = build_prompt(mri_brain_whole())
    assert "Specific position: none (no region of interest is marked; describe the whole image)" in prompt
    assert "region of interest: none" in prompt
    assert "2. Describe the most salient structures" in prompt
    assert "outlined" not in prompt.split("\n")[0]
    # blank label counts as no ROI
    blank = dataclasses.replace(mri_brain_whole(), roi_label="  ")
    assert build_prompt(blank) == prompt


def test_prompt_truncates_passages_and_limits_their_number():
    long_text = "word " * 400
    passages = [Passage(f"c{i}", "corpus", f"title {i}", long_text, 1.0 - i / 10) for i in range(8)]
    prompt = build_prompt(dataclasses.replace(ct_liver(), knowledge=passages), max_passages=3, passage_chars=120)
    assert "[c2]" in prompt and "[c3]" not in prompt
    line = next(ln for ln in prompt.splitlines() if ln.startswith("- [c0]"))
    assert line.endswith("...") and len(line) < 120 + 40


def test_prompt_without_knowledge_says_none():
    prompt = build_prompt(dataclasses.replace(ct_liver(), knowledge=[]))
    assert "Medical knowledge:\n- none retrieved" in prompt


def test_prompt_hash_is_stable_and_content_sensitive():
    facts = ct_liver()
    h = prompt_hash(build_prompt(facts))
    assert h == prompt_hash(build_prompt(ct_liver()))
    assert len(h) == 16 and int(h, 16) >= 0
    assert prompt_hash(build_prompt(dataclasses.replace(facts, position=GridPosition(4, 4)))) != h
    assert prompt_hash(build_prompt(dataclasses.replace(facts, measurements=None))) != h
    assert prompt_hash(build_prompt(dataclasses.replace(facts, knowledge=facts.knowledge[:1]))) != h


def test_retry_prompt_explains_problems_deterministically():
    base = build_prompt(ct_liver())
    again = retry_prompt(base, ["refusal", "missing_section:roi", "side_contradiction"])
    assert again.startswith(base) and "previous answer could not be used" in again
    assert "declined" in again and "labelled section" in again
    assert again == retry_prompt(base, ["refusal", "missing_section:roi", "side_contradiction"])
    assert retry_prompt(base, ["side_contradiction"]) == base


# ----------------------------------------------------------------------------- sections


def test_parse_sections_plain_format_round_trip():
    sections = {k: f"text for {k}." for k in SECTION_KEYS}
    description, parsed = parse_output(format_sections(sections, "The integrated description."))
    assert parsed == sections
    assert description == "The integrated description."


def test_parse_sections_markdown_numbering_and_aliases():
    raw = """Here is my analysis.

**1. Modality:** Computed tomography (CT)
## Organs / Tissues
- liver
- spleen
3) ROI location and description: The liver lies in the upper left part of the image.
**Texture/colour**: homogeneous attenuation
4. Spatial relations - borders the spleen
### Final Description
A CT image of the abdomen showing the liver.
It borders the spleen."""
    sections = parse_sections(raw)
    assert sections == {
        "modality": "Computed tomography (CT)",
        "organs": "liver; spleen",
        "roi": "The liver lies in the upper left part of the image.",
        "texture": "homogeneous attenuation",
        "relations": "borders the spleen",
    }
    description, _ = parse_output(raw)
    assert description == "A CT image of the abdomen showing the liver. It borders the spleen."


def test_parse_sections_missing_sections_and_plain_paragraph():
    sections = parse_sections("Modality: MRI\nRegion of interest: none")
    assert sections["modality"] == "MRI" and sections["roi"] == "none"
    assert sections["organs"] == sections["texture"] == sections["relations"] == ""
    description, sections = parse_output("Just one paragraph about a CT image of the liver.")
    assert description == "Just one paragraph about a CT image of the liver."
    assert all(v == "" for v in sections.values())
    # without a Description block the sections are joined
    description, _ = parse_output("Modality: CT\nOrgans and tissues: liver")
    assert description == "CT liver"


def test_parse_sections_ignores_ordinary_colon_lines():
    raw = "Region of interest: The liver.\nNote: the liver is enlarged.\nDescription: A CT."
    sections = parse_sections(raw)
    assert sections["roi"] == "The liver. Note: the liver is enlarged."


# ----------------------------------------------------------------------------- vocabularies


@pytest.mark.parametrize("phrase", POSITION_VOCABULARY["phrases"])
def test_every_roi_stage_phrase_is_read(phrase):
    vertical, horizontal = phrase.split(" ")
    words = parse_position_words(phrase)
    assert (
        words.vertical
        == {"upper": "upper", "upper-middle": "upper", "middle": "middle", "lower-middle": "lower", "lower": "lower"}[
            vertical
        ]
    )
    assert (
        words.horizontal
        == {"left": "left", "left-center": "left", "center": "center", "right-center": "right", "right": "right"}[
            horizontal
        ]
    )
    cell = (POSITION_VOCABULARY["vertical"].index(vertical), POSITION_VOCABULARY["horizontal"].index(horizontal))
    text = image_place(*cell)  # the typed grid cell worded as the composer words it
    assert parse_position_words(text) == words or text == "the centre of the image", (phrase, text)
    for side in ("upper", "lower", "left", "right"):
        assert (side in text.split()[:6] or f"{side} of centre" in text or f"{side} side" in text) == (
            side in (words.vertical, words.horizontal)
        ), (phrase, text)


@pytest.mark.parametrize(
    "phrase,expected",
    [
        ("upper-left-center", ("upper", "left")),
        ("left-center", ("middle", "left")),
        ("center", ("middle", "center")),
        ("lower-middle", ("lower", "center")),
        ("Top Right", ("upper", "right")),
        ("", (None, None)),
    ],
)
def test_position_words_tolerant_forms(phrase, expected):
    words = parse_position_words(phrase)
    assert (words.vertical, words.horizontal) == expected


def test_modality_families_and_label_text():
    assert modality_families("CT") == {"ct"}
    assert modality_families("MR") == {"mri"}
    assert modality_families("DX") == {"xray"}
    assert modality_families("PET/CT") == {"pet", "ct"}
    assert modality_families("H&E histopathology") == {"microscopy"}
    assert modality_families("hyperspectral thing") == set()
    assert label_text("lung_upper_lobe_left") == "left lung upper lobe"
    assert label_text("vertebrae_T9") == "vertebrae T9"


def test_prompt_gives_the_mean_colours_and_their_names_for_a_colour_source():
    from medtrinity_assets.records import Measurements

    m = Measurements(intensity_unit="rgb", mean=0.45, ring_mean=0.65, std=0.08, ring_std=0.04, contrast=-2.3,
                     hue_delta=4.0, saturation_delta=0.17, rgb_mean=(0.81, 0.37, 0.36), ring_rgb_mean=(0.91, 0.55, 0.56), area_px=5000)
    facts = dataclasses.replace(ct_liver(), modality="Dermoscopy", organs=["skin"], roi_label="skin lesion", measurements=m)
    lines = [line for line in build_prompt(facts).splitlines() if line.startswith("- mean colour")]
    assert lines == ["- mean colour (R, G, B 0..1): 0.81, 0.37, 0.36 -> red; surrounding ring 0.91, 0.55, 0.56 -> pink"]
    grey = dataclasses.replace(m, unmeasured={"saturation_delta": "achromatic"}, saturation_delta=None, hue_delta=None)
    assert "- mean colour" not in build_prompt(dataclasses.replace(facts, measurements=grey))
