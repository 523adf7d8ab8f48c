"""Caption quality figures: claims read from text, agreement with measurements, diversity, artefacts."""

from __future__ import annotations

import pytest

from medtrinity_assets.captions import compose_caption
from medtrinity_assets.captions.appearance import assess
from medtrinity_assets.captions.examples import EXAMPLES, ct_liver
from medtrinity_assets.captions.quality import caption_quality, claims_agree, distinct_n, distinct_n_sampled, read_claims
from medtrinity_assets.records import Measurements

LIVER = ct_liver().measurements  # 58 HU, contrast +1.21, std 14 HU, oval, sharp margin


def test_claims_are_read_and_checked_against_measurements():
    good = "The liver is slightly hyperdense relative to the surrounding tissue. Its mean attenuation is about 58 HU. It is homogeneous. Its outline is oval with well defined margins."
    claims = read_claims(good)
    assert claims == {"contrast": {"brighter"}, "texture": {"homogeneous"}, "shape": {"oval"}, "margin": {"well"}, "hu": {58}}
    assert claims_agree(claims, assess(LIVER))
    for wrong in (
        good.replace("hyperdense", "hypodense"),
        good.replace("58 HU", "75 HU"),
        good.replace("homogeneous", "heterogeneous"),
        good.replace("oval", "round"),
        good.replace("well defined", "ill defined"),
    ):
        assert not claims_agree(read_claims(wrong), assess(LIVER)), wrong
    # a claim where the measurement gives none (no ring) disagrees
    no_ring = Measurements(intensity_unit="HU", mean=58.0, std=14.0, area_px=400)
    assert not claims_agree(read_claims("It is darker than the surrounding tissue."), assess(no_ring))
    assert read_claims("The liver lies in the upper left part of the image.") == {}


def test_figures_over_composed_captions_and_artefacts():
    records = []
    for make in EXAMPLES.values():
        for seed in range(5):
            facts = make()
            text, sections = compose_caption(facts, seed=seed)
            records.append((text, sections["texture"], facts.measurements))
    figures = caption_quality(records)
    assert figures["captions"] == 20
    assert figures["claims_agreeing_share"] == 1.0 and figures["appearance_claim_share"] == pytest.approx(0.75)
    assert all(figures[k] == 0 for k in figures if k.startswith("artefacts_"))
    legacy = [("The nucleus #12 lies left (image side) of the heart_ventricle_left and the ventricle left.", "", None)]
    old = caption_quality(legacy)
    assert old["artefacts_instance_number"] == old["artefacts_image_side_parenthetical"] == old["artefacts_parenthetical"] == 1
    assert old["artefacts_plus_or_underscore"] == old["artefacts_reversed_label"] == 1
    assert old["max_sentence_share"] == 1.0


def test_distinct_2():
    assert distinct_n(["a b c", "a b c"], 2) == pytest.approx(2 / 4)
    assert distinct_n(["a b c d"], 2) == 1.0 and distinct_n([], 2) == 0.0


def test_merged_contrast_and_colour_sentences_are_read_as_both_claims():
    from medtrinity_assets.captions.data_files import wording

    values = {"name": "skin lesion", "is": "is", "appears": "appears", "Subj": "It", "surround": "the surrounding skin"}
    variants = wording().variants("intensity_colour")
    assert len(variants) >= 3
    for template in variants:
        for short, colour, want in (("darker", "more deeply coloured", ("darker", "deeper")), ("slightly brighter", "paler in colour", ("brighter", "paler"))):
            text = template.format(**values, contrast_short=short, colour=colour)
            claims = read_claims(text)
            assert claims.get("contrast") == {want[0]} and claims.get("colour") == {want[1]}, text


def test_size_matched_distinct_2_compares_corpora_of_different_sizes():
    varied = [f"word{i} word{i + 1} word{i + 2}" for i in range(0, 300, 3)]  # every bigram new
    repeated = ["the liver is homogeneous"] * 100
    assert distinct_n(varied) == 1.0 and distinct_n_sampled(varied, size=10) == 1.0
    assert distinct_n_sampled(repeated, size=10) == pytest.approx(3 / 30)
    few = varied[:5]
    assert distinct_n_sampled(few, size=10) == distinct_n(few)  # fewer texts than a sample: all of them
    mixed = varied[:50] + repeated[:50]
    assert distinct_n_sampled(mixed, size=20, seed=1) != distinct_n_sampled(mixed, size=20, seed=2)
