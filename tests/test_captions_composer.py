"""The grounded composer writes only from the facts, and its captions pass the checks."""

from __future__ import annotations

import dataclasses
import re

import pytest

from medtrinity_assets.captions import SECTION_KEYS, check_caption, compose_caption
from medtrinity_assets.captions.examples import (
    EXAMPLES,
    GLIOMA_DO,
    TB_MQ,
    ct_liver,
    microscopy_nucleus,
    mri_brain_whole,
    xray_lungs,
)
from medtrinity_assets.records import Passage
from medtrinity_assets.rois.position import POSITION_VOCABULARY

FORBIDDEN = re.compile(r"bounding box|caption|annotation|mask", re.I)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("seed", ["roi-1", "roi-2", "roi-3", "a/b/c:17"])
def test_composer_captions_pass_checks(name, seed):
    facts = EXAMPLES[name]()
    text, sections = compose_caption(facts, seed=seed)
    assert check_caption(text, sections, facts) == []
    assert set(sections) == set(SECTION_KEYS) and all(sections.values())
    assert not FORBIDDEN.search(text)
    assert not any(FORBIDDEN.search(v) for v in sections.values())


def test_composer_states_the_facts():
    text, sections = compose_caption(ct_liver(), seed="x")
    assert "CT" in text and "abdomen" in text and "liver" in text
    assert "upper left part of the image" in text
    assert "patient's right anterior region" in sections["roi"]
    assert "about 18%" in text
    assert "hepatocellular carcinoma" in text
    assert "borders the spleen" in sections["relations"]
    assert "attenuation" in sections["texture"]
    assert sections["modality"] == "Computed tomography (CT)"


def test_composer_quotes_relevant_knowledge_cautiously():
    text, sections = compose_caption(ct_liver(), seed="x")
    # the DO definition, cleaned (title prefix dropped, relation words made readable, subject restored)
    assert "Hepatocellular carcinoma is a liver carcinoma that arises from undifferentiated hepatocytes" in text
    # appearance terms from the passage, stated as what references describe, not as a finding
    assert re.search(
        r"(Reference|Published) descriptions of hepatocellular carcinoma mention necrosis and haemorrhage", text
    )
    assert "may alter" in text or "can change" in text
    text, _ = compose_caption(xray_lungs(), seed="x")
    assert "Tuberculosis (TB) is a disease caused by bacteria called Mycobacterium tuberculosis." in text
    assert "kidney" not in text and "brain" not in text  # later passage sentences are not used


def test_composer_ignores_off_topic_knowledge_and_invents_no_finding():
    facts = mri_brain_whole()
    text, sections = compose_caption(facts, seed="x")
    assert GLIOMA_DO.title not in text.lower() and "glioma" not in text.lower()
    for word in ("tumou?r", "lesion", "carcinoma", "abnormal", "mass", "haemorrhage", "hemorrhage"):
        assert not re.search(word, text, re.I), word
    assert "whole image" in text
    # knowledge about another finding than the facts' is not quoted either
    lungs = dataclasses.replace(xray_lungs(), image_labels=["pneumothorax"], knowledge=[TB_MQ])
    text, _ = compose_caption(lungs, seed="x")
    assert "Mycobacterium" not in text
    # passages about a disease of an anatomical ROI are not background for that anatomy
    liver_only = dataclasses.replace(ct_liver(), image_labels=[])
    text, _ = compose_caption(liver_only, seed="x")
    assert "carcinoma" not in text and "cancer" not in text


def test_composer_skips_unusable_sentences():
    bad = Passage(
        "c1",
        "medquad",
        "Tuberculosis",
        "What is tuberculosis? You should see your doctor if tuberculosis "
        "is suspected. Tuberculosis usually affects the right upper lobe on CT scans.",
        1.0,
    )
    text, _ = compose_caption(dataclasses.replace(xray_lungs(), knowledge=[bad]), seed="x")
    assert "doctor" not in text and "upper lobe" not in text and "CT" not in text


def test_composer_is_deterministic_and_varies_with_seed():
    facts = ct_liver()
    assert compose_caption(facts, seed="roi-7") == compose_caption(ct_liver(), seed="roi-7")
    texts = {compose_caption(facts, seed=f"roi-{i}")[0] for i in range(30)}
    assert len(texts) >= 10
    # default seed comes from the facts
    assert compose_caption(facts) == compose_caption(ct_liver())


@pytest.mark.parametrize("phrase", POSITION_VOCABULARY["phrases"])
def test_composer_position_wording_agrees_with_every_phrase(phrase):
    facts = dataclasses.replace(ct_liver(), roi_position=phrase, extra={})
    text, sections = compose_caption(facts, seed=phrase)
    assert check_caption(text, sections, facts) == []


def test_composer_grammar_for_plural_structures():
    text, _ = compose_caption(xray_lungs(), seed="roi-2")
    assert not re.search(r"\blungs (lies|occupies|is|covers|takes)\b", text)


def test_composer_with_sparse_facts():
    facts = dataclasses.replace(
        microscopy_nucleus(), roi_relations=[], other_rois=[], roi_position=None, roi_area_frac=None
    )
    text, sections = compose_caption(facts, seed="x")
    assert check_caption(text, sections, facts) == []
    assert "No neighbouring structure" in sections["relations"]
