"""Brightness comparisons between the ROI and another structure of the image: the measured means
(`CaptionFacts.other_intensities`), the composer's sentence, the prompt's lines and the check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medtrinity_assets.captions import check_caption, compose_caption
from medtrinity_assets.captions.appearance import comparable, compared_to, comparison_candidates, standardised_difference
from medtrinity_assets.captions.checks.judge import fact_lines
from medtrinity_assets.captions.data_files import appearance
from medtrinity_assets.captions.labels import structure_name
from medtrinity_assets.captions.prompt import build_prompt

TS = Path(__file__).resolve().parents[1] / "data" / "sources" / "totalsegmentator_example"
_SWAP = {"hypo": "hyper", "hyper": "hypo", "lower": "higher", "higher": "lower", "darker": "brighter", "brighter": "darker"}
_COMPARED = re.compile(r"\b(hypo|hyper)(?:dense|intense|echoic) (?:relative )?to the|\b(lower|higher) in (?:attenuation|signal) than the|\b(darker|brighter) than the")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The real demo records (every bundled source) through the production stages."""
    from demo_records import demo_facts

    return demo_facts(workdir=str(tmp_path_factory.mktemp("compare")))


def test_other_structures_means_match_an_independent_computation(records):
    """The CT left kidney and spleen means on a TotalSegmentator slice, recomputed from the NIfTI
    volumes with SimpleITK (the masks' voxels in HU), and the reading that follows: the kidney
    (about 13 HU) is darker than the spleen (about 30 HU)."""
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(TS / "example_ct_sm.nii.gz"))).astype(np.float64)
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(TS / "example_seg.nii.gz")))
    ids = {name: int(k) for k, name in json.loads((TS / "example_seg_labels.json").read_text())["labels_present"].items()}
    means = {z: {n: ct[z][seg[z] == ids[n]].mean() for n in ("kidney_left", "spleen") if (seg[z] == ids[n]).any()} for z in range(ct.shape[0])}
    kidneys = [f for _, _, f in records if f.modality == "CT" and f.roi_label == "kidney_left" and any(i.label == "spleen" for i in f.other_intensities)]
    assert kidneys
    for facts in kidneys:
        spleen = next(i for i in facts.other_intensities if i.label == "spleen")
        z = [z for z, v in means.items() if len(v) == 2 and abs(v["kidney_left"] - facts.measurements.mean) < 0.1 and abs(v["spleen"] - spleen.mean) < 0.1]
        assert len(z) == 1, (facts.measurements.mean, spleen.mean)
        assert compared_to(facts.measurements, spleen) == "darker"
        assert "darker than the spleen" in build_prompt(facts)  # the model is given the reading
        assert any(line.endswith("-> darker than the spleen") for line in fact_lines(facts))  # and the judge
    text, sections = compose_caption(kidneys[0], seed="k")
    assert re.search(r"(?:hypodense (?:relative )?to|lower in attenuation than) the spleen", sections["relations"]), sections["relations"]


def test_every_swapped_comparison_in_demo_captions_is_caught(records):
    """The composer's comparison of each real demo record with darker and brighter swapped
    ("hyperdense relative to the spleen" for a kidney darker than it) is an appearance
    contradiction; the captions as written pass, and compare alike tissues only."""
    swapped = missed = 0
    limit = appearance().compare_max_contrast
    for _, roi_id, facts in records:
        text, sections = compose_caption(facts, seed=roi_id)
        assert check_caption(text, sections, facts) == [], text
        said = sections["relations"].split(". ")[-1]
        m = _COMPARED.search(said)
        if not m:
            continue
        other = next(i for i in facts.other_intensities if said[m.end() :].startswith(" " + structure_name(i.label).text))
        assert abs(standardised_difference(facts.measurements, other)) < limit, said  # alike tissues only
        assert comparable(facts.roi_label, other.label), said  # of one comparison class
        word = next(g for g in m.groups() if g)
        wrong = said[: m.start()] + m.group(0).replace(word, _SWAP[word], 1) + said[m.end() :]
        swapped += 1
        missed += "appearance_contradiction" not in check_caption(text.replace(said, wrong), {**sections, "relations": sections["relations"].replace(said, wrong)}, facts)
    assert swapped >= 30 and missed == 0, (swapped, missed)


def test_comparisons_read_either_way_round_and_after_a_lead(records):
    facts = next(f for _, _, f in records if f.modality == "CT" and f.roi_label == "kidney_left" and any(i.label == "spleen" for i in f.other_intensities))
    text, sections = compose_caption(facts, seed="k")
    right = ["The spleen is brighter than the left kidney.", "Compared with the spleen, the left kidney is hypodense.", "It is lower in attenuation than that of the spleen."]
    wrong = ["The spleen is darker than the left kidney.", "Compared with the spleen, the left kidney is hyperdense.", "It is higher in attenuation than that of the spleen."]
    for said in right:
        assert check_caption(f"{text} {said}", sections, facts) == [], said
    for said in wrong:
        assert "appearance_contradiction" in check_caption(f"{text} {said}", sections, facts), said
    # a lead naming the surroundings is the ring's claim: the kidney is brighter than the fat around it
    assert check_caption(f"{text} Compared with the surrounding tissue, the left kidney is hyperdense.", sections, facts) == []


def test_a_structure_cut_into_parts_is_compared_as_one(records):
    """The CT liver the slice cuts in two (two ROIs of one structure, ``parts``) has one mean and
    standard deviation: its union's, pooled from the parts' and equal to SimpleITK's over the whole
    liver mask of that slice; separate instances of a label (the ultrasound's three nerves) have none,
    and a comparison with them is neither written nor checked."""
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(TS / "example_ct_sm.nii.gz"))).astype(np.float64)
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(TS / "example_seg.nii.gz")))
    liver_id = next(int(k) for k, n in json.loads((TS / "example_seg_labels.json").read_text())["labels_present"].items() if n == "liver")
    parts = [f.measurements for _, _, f in records if f.modality == "CT" and f.roi_label == "liver" and f.measurements.count_kind == "parts"]
    assert len(parts) == 2  # one slice cuts the liver in two
    area = sum(p.area_px for p in parts)
    pooled = {i for _, _, f in records if f.modality == "CT" and f.roi_label != "liver" for i in f.other_intensities if i.label == "liver" and i.area_px == area}
    assert len(pooled) == 1
    liver = pooled.pop()
    voxels = next(ct[z][seg[z] == liver_id] for z in range(ct.shape[0]) if int((seg[z] == liver_id).sum()) == area)
    assert abs(liver.mean - voxels.mean()) < 0.1 and abs(liver.std - voxels.std()) < 0.1  # the parts' stored means are rounded to 0.1 HU
    vessel = next(f for _, _, f in records if f.roi_label == "blood vessel" and "nerve" in f.other_rois)
    assert "nerve" not in {i.label for i in vessel.other_intensities}
    text, sections = compose_caption(vessel, seed="v")
    assert "than the nerve" not in text and "to the nerve" not in text
    assert "appearance_contradiction" not in check_caption(f"{text} It is brighter than the nerve.", sections, vessel)


def test_like_is_compared_with_like(records):
    """Comparisons pair structures of one class (data/appearance.yaml compare_classes): the CT
    liver, which has no relation with the spleen, is read against it ("higher in attenuation than
    the spleen"), as SimpleITK's means of the two masks on that slice confirm; the colon is never
    read against a lung lobe, nor the aorta against a vertebra, though they are neighbours."""
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(TS / "example_ct_sm.nii.gz"))).astype(np.float64)
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(TS / "example_seg.nii.gz")))
    ids = {name: int(k) for k, name in json.loads((TS / "example_seg_labels.json").read_text())["labels_present"].items()}
    livers = [f for _, _, f in records if f.measurements and f.measurements.intensity_unit == "HU" and f.roi_label == "liver" and f.measurements.count_kind != "parts"
              and "spleen" not in {r.other for r in f.relations} | set(f.contacts or []) and any(i.label == "spleen" for i in f.other_intensities)]
    assert livers
    for facts in livers:
        assert "spleen" in [i.label for i in comparison_candidates(facts)]  # by class, not by relation
        spleen = next(i for i in facts.other_intensities if i.label == "spleen")
        slices = [z for z in range(ct.shape[0]) if (seg[z] == ids["liver"]).any() and (seg[z] == ids["spleen"]).any()
                  and abs(ct[z][seg[z] == ids["liver"]].mean() - facts.measurements.mean) < 0.1 and abs(ct[z][seg[z] == ids["spleen"]].mean() - spleen.mean) < 0.1]
        assert len(slices) == 1
        liver_hu, spleen_hu = ct[slices[0]][seg[slices[0]] == ids["liver"]].mean(), ct[slices[0]][seg[slices[0]] == ids["spleen"]].mean()
        assert liver_hu > spleen_hu + 8
        text, sections = compose_caption(facts, seed="l")
        assert re.search(r"(?:hyperdense (?:relative )?to|higher in attenuation than) the spleen", sections["relations"]), sections["relations"]
    unlike = [("colon", "lung"), ("aorta", "vertebra"), ("autochthon", "kidney"), ("aorta", "disc")]
    for _, roi_id, facts in records:
        text, sections = compose_caption(facts, seed=roi_id)
        said = sections["relations"].split(". ")[-1]
        for a, b in unlike:
            if a in (facts.roi_label or "") and _COMPARED.search(said):
                assert b not in said[_COMPARED.search(said).end() :], said


def test_the_other_structures_hu_is_stated_and_held_to_its_mean(records):
    """On CT the comparison gives the other structure's mean ("..., which measures about 30 HU"):
    the check reads that number as the other structure's (checks/hu.py), so the composer's is
    true and a wrong one is caught, even where it would pass for the ROI's own mean."""
    from medtrinity_assets.captions.checks import DEFAULT_CONFIG
    from medtrinity_assets.captions.checks.base import CaptionView
    from medtrinity_assets.captions.checks.hu import stated_hu

    stated = 0
    for _, roi_id, facts in records:
        text, sections = compose_caption(facts, seed=roi_id)
        said = sections["relations"].split(". ")[-1]
        m = re.search(r"(?:which|whose)[a-z ]* about (-?\d+) HU\.?$", said)
        if not m:
            continue
        other = next(i for i in facts.other_intensities if " the " + structure_name(i.label).text + "," in said)
        assert int(m.group(1)) == round(other.mean) and other.unit == "HU", said
        view = CaptionView(text, sections, facts, DEFAULT_CONFIG)
        assert [owner for owner, _ in stated_hu(view, said)] == [other.label], said
        wrong = said.replace(f"about {m.group(1)} HU", f"about {round(other.mean + max(100, abs(other.mean)))} HU")
        assert "appearance_contradiction" in check_caption(text.replace(said, wrong), {**sections, "relations": sections["relations"].replace(said, wrong)}, facts), wrong
        stated += 1
    assert stated >= 20
