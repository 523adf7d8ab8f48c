"""The spinal level of an axial slice: from the numbered vertebra labels on it, in the composer's
description and the model prompt, and checked in any caption (``level_contradiction``)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from medtrinity_assets.captions import check_caption, compose_caption
from medtrinity_assets.captions.checks.judge import fact_lines
from medtrinity_assets.captions.facts_text import position_text
from medtrinity_assets.captions.labels import slice_levels, vertebral_levels

_LEVEL_SENTENCE = re.compile(r"(?:level of|passes through) the ([CTLS]\d+(?: and [CTLS]\d+)*) vertebrae?\.")


@pytest.fixture(scope="module")
def totalsegmentator(tmp_path_factory):
    """The real TotalSegmentator CT and MR demo records, through the production stages."""
    from demo_records import demo_facts

    return [(rid, f) for _, rid, f in demo_facts(["totalsegmentator_example"], workdir=str(tmp_path_factory.mktemp("ts")))]


def test_levels_come_from_numbered_vertebra_labels_only():
    labels = ["vertebrae_L2", "liver", "vertebrae_T12", "vertebrae", "intervertebral_discs", "rib_left_9", "vertebrae_C7"]
    assert vertebral_levels(labels) == ["C7", "T12", "L2"]  # cranial to caudal
    assert vertebral_levels(["vertebrae", "spinal_cord"]) == []


def test_axial_ct_slices_state_the_level_their_vertebra_labels_give(totalsegmentator):
    """Each CT slice names its level (the L2, L1 or T12 label on it) in the level sentence or, where
    the overview already lists that vertebra, there; MR slices (one unnumbered "vertebrae" label)
    state none; every caption passes the checks."""
    stated = 0
    for rid, facts in totalsegmentator:
        text, sections = compose_caption(facts, seed=rid)
        levels = slice_levels(facts)
        said = _LEVEL_SENTENCE.findall(text)
        if facts.modality == "MRI":
            assert not levels and not said, text
            continue
        assert len(levels) == 1 and f"{levels[0]} vertebra" in text, text
        if facts.roi_label and f"vertebrae_{levels[0]}" == facts.roi_label:
            assert not said, text  # the ROI is that vertebra: no level sentence
        assert said in ([], [levels[0]]), text
        stated += bool(said)
        assert f"passes through the {levels[0]} vertebra" in position_text(facts)  # the model is told too
        assert f"spinal level of this axial slice: {levels[0]} " in "\n".join(fact_lines(facts))  # and the judge
        assert check_caption(text, sections, facts) == [], text
    assert stated >= 20


def test_a_wrong_or_non_axial_level_is_a_contradiction(totalsegmentator):
    rid, facts = next((r, f) for r, f in totalsegmentator if f.roi_label == "aorta" and slice_levels(f) == ["L2"])
    text, sections = compose_caption(facts, seed=rid)
    right = text + " The slice is at the level of the L2 vertebra."
    assert check_caption(right, sections, facts) == []
    for wrong in ("The slice is at the level of L4.", "It lies at the T12-L1 level.", "The L3 vertebra is posterior to it."):
        assert "level_contradiction" in check_caption(f"{text} {wrong}", sections, facts), wrong
    coronal = dataclasses.replace(facts, frame=dataclasses.replace(facts.frame, plane="coronal"))
    assert "level_contradiction" in check_caption(right, sections, coronal)  # a coronal slice has no one level
    assert slice_levels(coronal) == [] and not _LEVEL_SENTENCE.search(compose_caption(coronal, seed=rid)[0])


def test_sequence_names_are_not_levels(totalsegmentator):
    """"T1-weighted" or "T2 signal" name MR sequences, not the T1 or T2 vertebra."""
    rid, facts = next((r, f) for r, f in totalsegmentator if f.modality == "MRI" and f.roi_label == "aorta")
    text, sections = compose_caption(facts, seed=rid)
    said = text + " On this T1-weighted image the T2 signal is not shown."
    assert "level_contradiction" not in check_caption(said, sections, facts)
