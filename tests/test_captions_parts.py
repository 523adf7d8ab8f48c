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


def test_a_plural_label_in_pieces_is_its_members(records):
    """A label that names several structures ("costal cartilages") cut into pieces by the slice
    gives separate members, not parts of one: "one of two costal cartilages", and "the two costal
    cartilages" is no count contradiction. One connected piece of "vertebrae" or "intervertebral
    discs" on an axial slice is one vertebra, one disc, in the overview as in the ROI sentences."""
    pieces = [(rid, f) for ds, rid, f in records if f.roi_label == "costal_cartilages" and f.measurements.count_kind == "parts" and f.measurements.label_count == 2]
    assert pieces  # the CT slice through T12 shows a left and a right costal cartilage
    for rid, facts in pieces:
        text, sections = compose_caption(facts, seed=rid)
        assert "one of two costal cartilages" in text and "part of the costal cartilage" not in text, text
        assert check_caption(text, sections, facts) == []
        said = re.sub(r"^[^.]*\.", "This axial image shows the two costal cartilages and the liver.", text, count=1)
        assert "count_contradiction" not in check_caption(said, sections, facts), said
    singles = [(rid, f) for ds, rid, f in records if f.roi_label in ("vertebrae", "intervertebral_discs") and f.measurements.n_components == 1]
    assert {f.roi_label for _, f in singles} == {"vertebrae", "intervertebral_discs"}  # the MR slices
    for rid, facts in singles:
        text, sections = compose_caption(facts, seed=rid)
        one, many = ("vertebra", "vertebrae") if facts.roi_label == "vertebrae" else ("intervertebral disc", "intervertebral discs")
        assert f"the {one}," in text.split(".")[0] and f"the {many}" not in text.lower(), text
        assert check_caption(text, sections, facts) == [], text
