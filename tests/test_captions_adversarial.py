"""The adversarial caption corpus: every wrong caption raises its problem code, no correct caption
(careful free text, and the composer's own output, on the corpus records and on the demo's real
records) raises anything."""

from __future__ import annotations

import re

from pathlib import Path

import pytest

from adversarial_corpus import load_corpus
from medtrinity_assets.captions import check_caption, compose_caption
from medtrinity_assets.captions.checks import PROBLEM_CODES
from medtrinity_assets.captions.vocab import modality_families

REPO = Path(__file__).resolve().parents[1]
RECORDS, CASES = load_corpus()
WRONG = [c for c in CASES if c.expect != "none"]
CORRECT = [c for c in CASES if c.expect == "none"]

ISSUE_13 = {
    "liver_share_60_percent",
    "liver_24_cm_without_spacing",
    "liver_invented_second_lesion",
    "liver_negated_hcc",
    "liver_other_diagnosis",
    "liver_subject_is_spleen",
    "liver_t2_mri_midway",
    "liver_viewers_right",
    "liver_left_hemiabdomen",
    "liver_green_square",
    "liver_ai_model",
    "liver_washout_capsule_calcifications",
    "liver_sentence_repeated_12_times",
    "liver_texture_section_mri",
}


def test_corpus_covers_the_modalities_and_the_issue():
    assert len(WRONG) >= 40
    assert sum(not c.known_miss for c in WRONG) >= 0.95 * len(WRONG)
    families = set().union(*(modality_families(RECORDS[c.record].modality) for c in WRONG))
    assert {"ct", "mri", "xray", "ultrasound", "microscopy"} <= families
    assert ISSUE_13 <= {c.id for c in WRONG}
    assert {c.expect for c in WRONG} <= set(PROBLEM_CODES)
    records_with_correct = {c.record for c in CORRECT}
    assert records_with_correct == set(RECORDS)  # a correct caption (composer and free text) per record
    assert {c.record for c in CORRECT if c.id.startswith("composer_")} == set(RECORDS)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.xfail(reason=c.known_miss, strict=True)) if c.known_miss else c for c in WRONG],
    ids=[c.id for c in WRONG],
)
def test_wrong_caption_is_caught_with_its_code(case):
    problems = check_caption(case.text, case.sections, RECORDS[case.record])
    assert case.expect in problems, problems


@pytest.mark.parametrize("case", CORRECT, ids=[c.id for c in CORRECT])
def test_correct_caption_raises_nothing(case):
    assert check_caption(case.text, case.sections, RECORDS[case.record]) == []


# correct sentences near the edges of the rules (negations, relative sides, structure names with side
# words, generic knowledge, counts of other instances), appended to the composer's caption. The first
# 25 passed on their first run; of the next 16, "the left hemisphere appears unremarkable" (a side
# word in a sentence not about the ROI) and "surrounding oedema" (then a diagnosis, now an imaging
# feature: an unrecorded one is still unsupported_finding, so that sentence is not listed) failed.
TRICKY_CORRECT = {
    "ct_liver_hcc": [
        "No calcification is seen within the liver on this slice.",
        "The right lobe of the liver is the larger part seen here.",
        "The liver lies in the right upper quadrant of the patient.",
        "The liver is not darker than the surrounding fat.",
        "The liver is brighter than the spleen would suggest on a non-contrast study.",
        "The spleen lies on the right side of the image, opposite the liver.",
        "A tumour of this kind, hepatocellular carcinoma, often appears hypodense on delayed phases.",
        "The liver, on the left of the image, is on the patient's right.",
        "Hepatocellular carcinoma is the recorded finding; no second lesion is described.",
    ],
    "micro_nucleus": [
        "About 125 nuclei are visible in the field.",
        "The nucleus touches 2 neighbouring nuclei.",
        "It is one of roughly 120 nuclei in this image.",
        "Many other nuclei surround it.",
    ],
    "ct_kidney_left": [
        "The left kidney lies on the right of the image; the right kidney is on the left of the image.",
        "Both kidneys are visible, the left one on the right side of the image.",
        "The kidney measures about 7 cm along its long axis on this slice.",
        "The cortex is brighter than the medulla, as expected in the corticomedullary phase.",
    ],
    "xray_tb": [
        "Tuberculosis is recorded for this image; TB often causes upper-lobe cavities.",
        "The lungs are darker than the mediastinum and the ribs.",
        "There is no pleural effusion.",
    ],
    "us_vessel": [
        "The vessel lumen is anechoic, typical of flowing blood.",
        "The nerve lies to the left of the vessel.",
        "The vessel is about 62 pixels across.",
    ],
    "derm_nevus": [
        "The lesion is darker and more deeply coloured than the surrounding skin, and paler in colour at its rim.",
        "Melanocytic nevi are benign; melanoma must be considered when the network is atypical, which is not described here.",
    ],
    "mr_brain_glioma": [
        "The tumor is hyperintense on this FLAIR-weighted MRI.",
        "The left hemisphere appears unremarkable apart from the ventricles.",
        "Gliomas may be graded I to IV; the grade is not recorded.",
        "There is no midline shift described in the record.",
    ],
    "mr_aorta": [
        "The aorta shows a flow void, dark on this sequence.",
        "It is about 2 cm across, similar to a normal abdominal aorta.",
        "The inferior vena cava lies to the patient's right of the aorta.",
    ],
    "fundus_vessels": [
        "The vessels branch from the optic disc, which lies left of centre.",
        "Arteries are thinner and brighter than veins.",
        "The vessel tree is seen in six separate segments.",
    ],
    "he_nucleus": [
        "Nuclei are stained purple by haematoxylin, while the cytoplasm is pink from eosin.",
        "The nucleus is round to oval and darker than the cytoplasm around it.",
        "Scale is unknown, so the nucleus size in micrometres is not stated.",
    ],
    "xray_normal": [
        "No finding is recorded for this chest radiograph.",
        "The left hemidiaphragm is slightly higher than usual on frontal views in many patients.",
    ],
}


@pytest.mark.parametrize("record,sentence", [(r, s) for r, ss in TRICKY_CORRECT.items() for s in ss])
def test_correct_sentences_near_the_rules_raise_nothing(record, sentence):
    facts = RECORDS[record]
    text, sections = compose_caption(facts, seed="t")
    assert check_caption(text + " " + sentence, sections, facts) == []


# wrong sentences in phrasings the corpus does not use, appended to the composer's caption (first run:
# 17 of 20 caught; negation through a finding's equivalents, "exclude" and round-vs-elongation 0.46
# were then added)
TRICKY_WRONG = [
    ("ct_liver_hcc", "side_contradiction", "The liver is seen on the right-hand side of the image."),
    ("ct_liver_hcc", "side_contradiction", "The liver lies to the right of the midline on the image."),
    ("ct_liver_hcc", "size_contradiction", "The liver occupies nearly two thirds of the image."),
    ("ct_liver_hcc", "unsupported_size", "A 2.5 cm focus is present in segment VIII."),
    ("ct_liver_hcc", "negated_finding", "The findings exclude malignancy."),
    ("ct_liver_hcc", "negated_finding", "There is no tumour in the liver."),
    ("ct_liver_hcc", "wrong_finding", "The appearance is typical of liver metastases."),
    ("ct_liver_hcc", "count_contradiction", "Two separate tumours are present in the liver."),
    ("ct_liver_hcc", "wrong_modality", "This contrast-enhanced MR image shows the liver."),
    ("ct_liver_hcc", "ai_self_reference", "As an AI, I can only describe what the image suggests."),
    ("ct_liver_hcc", "wrong_subject", "This image focuses on the spleen."),
    ("ct_aorta", "size_contradiction", "The aorta measures 5 mm in diameter."),
    ("ct_aorta", "appearance_contradiction", "The aorta is hypodense compared with the surrounding fat."),
    ("micro_nucleus", "count_contradiction", "Only three nuclei are present in the image."),
    ("micro_nucleus", "side_contradiction", "The nucleus is at the bottom of the image."),
    ("us_vessel", "appearance_contradiction", "The blood vessel appears bright, hyperechoic relative to the surrounding soft tissue."),
    ("us_vessel", "shape_contradiction", "The blood vessel appears perfectly round and circular."),
    ("derm_nevus", "appearance_contradiction", "The skin lesion is lighter than the surrounding skin."),
    ("xray_tb", "negated_finding", "The lungs show no signs of tuberculosis."),
    ("xray_normal", "wrong_finding", "Findings are consistent with pneumonia in the left lower lobe."),
]


@pytest.mark.parametrize("record,code,sentence", TRICKY_WRONG)
def test_wrong_sentences_in_other_phrasings_are_caught(record, code, sentence):
    facts = RECORDS[record]
    text, sections = compose_caption(facts, seed="t")
    assert code in check_caption(text + " " + sentence, sections, facts)


def test_every_problem_code_is_documented():
    doc = (REPO / "docs" / "record_schema.md").read_text(encoding="utf-8")
    for code in PROBLEM_CODES:
        assert f"`{code.split(':')[0]}" in doc, code


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory):
    from demo_records import demo_facts

    return demo_facts(workdir=str(tmp_path_factory.mktemp("demo-records")))


_FLIP = {
    "anterior": "posterior", "posterior": "anterior", "in front of": "behind", "behind": "in front of",
    "superior to": "inferior to", "inferior to": "superior to", "cranial to": "caudal to", "caudal to": "cranial to",
    "patient's left": "patient's right", "patient's right": "patient's left", "above": "below", "below": "above",
}
_FLIPPABLE = re.compile(r"\b(?:anterior|posterior|in front of|behind|(?:superior|inferior|cranial|caudal) to|above|below)\b|patient's left|patient's right")


@pytest.mark.slow
def test_every_flipped_direction_in_demo_captions_is_a_relation_contradiction(demo_records):
    """The composer's relations sentence of each real demo record with its directions reversed
    ("posterior to the liver" for a ROI recorded anterior to it) is caught."""
    flipped = missed = alternate = 0
    for _, roi_id, facts in demo_records:
        text, sections = compose_caption(facts, seed=roi_id)
        said = sections["relations"]
        alternate += bool(re.search(r"\b(?:in front of|behind|cranial to|caudal to)\b", said))
        if not facts.relations or not re.search(r"(?:anterior|posterior|superior|inferior|cranial|caudal) to|\bin front of\b|\bbehind\b|patient's (?:left|right) of|\babove\b|\bbelow\b", said):
            continue
        wrong = _FLIPPABLE.sub(lambda m: _FLIP[m.group(0)], said)
        flipped += 1
        missed += "relation_contradiction" not in check_caption(text.replace(said, wrong), {**sections, "relations": wrong}, facts)
    assert flipped >= 50 and alternate >= 10 and missed == 0, (flipped, alternate, missed)


@pytest.mark.slow
def test_composer_captions_of_the_demo_records_raise_nothing(demo_records):
    records = demo_records
    assert {d for d, _, _ in records} >= {"totalsegmentator_example", "usgra_nerve_ultrasound", "stardist_dsb2018"}
    flagged = []
    for dataset, roi_id, facts in records:
        for seed in (roi_id, 7):
            text, sections = compose_caption(facts, seed=seed)
            problems = check_caption(text, sections, facts)
            if problems:
                flagged.append((dataset, roi_id, problems))
    assert not flagged, flagged[:5]


@pytest.mark.slow
def test_every_contact_claim_moved_to_a_structure_not_touched_is_a_contact_contradiction(demo_records):
    """Each real demo record whose relations sentence names a structure it touches, with that name
    swapped for a structure of the image the ROI does not touch ("abuts the stomach" for a ROI
    recorded touching only the liver), is caught; so is "not in contact with" a touched one."""
    from medtrinity_assets.captions.labels import structure_name

    moved = missed = denied = missed_denied = 0
    for _, roi_id, facts in demo_records:
        if not facts.contacts or not facts.roi_label:
            continue
        text, sections = compose_caption(facts, seed=roi_id)
        said = sections["relations"]
        names = {structure_name(c).text: c for c in facts.contacts if c != facts.roi_label}
        far = [o for o in facts.other_rois if o not in facts.contacts and o != facts.roi_label]
        touched = next((n for n in sorted(names, key=len, reverse=True) if f"the {n}" in said), None)
        if touched is None:
            continue
        if far:
            stranger = structure_name(far[0]).text
            if stranger not in said and not any(stranger in n for n in names):
                wrong = said.replace(f"the {touched}", f"the {stranger}")
                moved += 1
                missed += "contact_contradiction" not in check_caption(text.replace(said, wrong), {**sections, "relations": wrong}, facts)
        negated = f"{text} It is not in contact with the {touched}."
        denied += 1
        missed_denied += "contact_contradiction" not in check_caption(negated, sections, facts)
    assert moved >= 20 and missed == 0, (moved, missed)
    assert denied >= 30 and missed_denied == 0, (denied, missed_denied)
