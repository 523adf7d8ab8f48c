"""One structure cut into pieces by the slice is one structure (catalog ``rois.components: parts``):
the real TotalSegmentator liver in two parts is never "two livers", while separate objects
(ultrasound nerves and vessels, instances) keep their counts; a caption that counts the parts as
structures is a count contradiction."""

from __future__ import annotations

import re

import pytest

from helpers import needs_bundled_sources
from medtrinity_assets.captions import check_caption, compose_caption

pytestmark = needs_bundled_sources


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from demo_records import demo_facts

    return demo_facts(sources=["totalsegmentator_example", "usgra_nerve_ultrasound"], workdir=str(tmp_path_factory.mktemp("parts")))


def _liver_parts(records):
    return [(rid, f) for ds, rid, f in records if ds == "totalsegmentator_example" and f.roi_label == "liver" and f.measurements.label_count == 2]


def test_a_liver_in_two_parts_is_one_liver(records):
    parts = _liver_parts(records)
    assert len(parts) >= 2  # CT axial 5 and MR axial 16 cut the liver into two pieces
    for rid, facts in parts:
        assert facts.measurements.count_kind == "parts"
        for seed in (rid, 1, 2, 3):
            text, sections = compose_caption(facts, seed=seed)
            assert "livers" not in text and re.search(r"\btwo separate parts\b", text), text
            assert not re.search(r"\b[Tt]he part of the liver\b", " ".join([text, *sections.values()])), text  # "this part of the liver"
            assert check_caption(text, sections, facts) == [], text
    rid, facts = parts[0]
    text, sections = compose_caption(facts, seed=rid)
    wrong = re.sub(r"^[^.]*\.", "This axial image shows the two livers and the stomach.", text, count=1)
    assert "count_contradiction" in check_caption(wrong, sections, facts), wrong


def test_separate_objects_keep_their_count(records):
    many = [(rid, f) for ds, rid, f in records if ds == "usgra_nerve_ultrasound" and (f.measurements.label_count or 1) > 1]
    assert many
    for rid, facts in many:
        assert facts.measurements.count_kind == "instances"
        text = compose_caption(facts, seed=rid)[0]
        assert "separate parts" not in text and re.search(r"\b(?:two|three|four|five) (?:nerves|blood vessels)\b", text), text


def test_the_prompt_and_the_judge_say_parts_not_structures(records):
    from medtrinity_assets.captions import build_prompt
    from medtrinity_assets.captions.checks.judge import fact_lines

    _, facts = _liver_parts(records)[0]
    assert "one of two separate parts of one liver on this slice" in build_prompt(facts)
    assert any("separate parts of this one structure on the image 2" in line for line in fact_lines(facts))
