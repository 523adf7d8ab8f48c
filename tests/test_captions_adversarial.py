"""The adversarial caption corpus: every wrong caption raises its problem code, no correct caption
(careful free text, and the composer's own output, on the corpus records and on the demo's real
records) raises anything."""

from __future__ import annotations

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


def test_every_problem_code_is_documented():
    doc = (REPO / "docs" / "record_schema.md").read_text(encoding="utf-8")
    for code in PROBLEM_CODES:
        assert f"`{code.split(':')[0]}" in doc, code


@pytest.mark.slow
def test_composer_captions_of_the_demo_records_raise_nothing(tmp_path):
    from demo_records import demo_facts

    records = demo_facts(workdir=str(tmp_path))
    assert {d for d, _, _ in records} >= {"totalsegmentator_example", "usgra_nerve_ultrasound", "stardist_dsb2018"}
    flagged = []
    for dataset, roi_id, facts in records:
        for seed in (roi_id, 7):
            text, sections = compose_caption(facts, seed=seed)
            problems = check_caption(text, sections, facts)
            if problems:
                flagged.append((dataset, roi_id, problems))
    assert not flagged, flagged[:5]
