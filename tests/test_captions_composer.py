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
from medtrinity_assets.captions.labels import image_place
from medtrinity_assets.records import Passage
from medtrinity_assets.grid import position_grid

FORBIDDEN = re.compile(r"bounding box|caption|annotation|mask", re.I)

POSITION_VOCABULARY = position_grid().vocabulary()


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
    assert any(image_place(0, 0, k) in text for k in range(3))  # one of the cell's equivalent phrasings
    assert image_place(0, 0) == "the upper left part of the image"
    assert "on the patient's right, anteriorly" in sections["roi"]
    assert "about 18%" in text
    assert "99 mm" in text  # equivalent diameter from mask and pixel spacing
    assert "hepatocellular carcinoma" in text.lower()
    assert re.search(r"\b(?:borders|abuts|is in contact with) the spleen\b", sections["relations"])  # equivalent phrasings
    assert re.search(r"\b(?:anterior to|in front of) and to the patient's right of the aorta", sections["relations"])  # equivalent phrasings
    assert "hyperdense" in sections["texture"] and "58 HU" in sections["texture"]
    assert re.search(r"soft-tissue range|range of soft tissue", sections["texture"]) and "homogeneous" in sections["texture"]
    assert sections["modality"] == "Computed tomography (CT)"


def test_composer_writes_no_artefacts():
    for name, make in EXAMPLES.items():
        for seed in range(20):
            text, _ = compose_caption(make(), seed=seed)
            assert not re.search(r"#\d|\(image side\)|[+_]|\bIs a:", text), (name, text)


def test_composer_counts_instead_of_numbering():
    text, sections = compose_caption(microscopy_nucleus(), seed="x")
    assert re.search(r"\b(?:one of|Of the) 125 nuclei\b", sections["roi"])
    assert "neighbouring nucleus" in sections["relations"]


def test_composer_quotes_whole_sentences_of_passages_about_the_concept():
    text, _ = compose_caption(xray_lungs(), seed="x")
    assert "Tuberculosis is a disease caused by bacteria called Mycobacterium tuberculosis." in text  # aside "(TB)" removed
    assert "kidney" not in text and "brain" not in text  # later passage sentences are not used
    # the DO definition is a noun phrase whose genus ("A liver carcinoma that ...") is itself a
    # disease the image is not recorded with: it is never written, glued or not
    text, _ = compose_caption(ct_liver(), seed="x")
    assert "liver carcinoma" not in text.lower() and "and located in" not in text


def test_definitions_are_glued_only_to_their_own_concept():
    from medtrinity_assets.captions.background import definition_sentence
    from medtrinity_assets.captions.examples import HCC_DO
    from medtrinity_assets.records import ConceptRef

    facts = ct_liver()
    assert definition_sentence(HCC_DO, facts) is None  # its genus "liver carcinoma" is an unrecorded disease
    recorded = dataclasses.replace(facts, image_labels=["hepatocellular carcinoma", "liver carcinoma"])
    assert definition_sentence(HCC_DO, recorded) == "Hepatocellular carcinoma is a liver carcinoma that arises from undifferentiated hepatocytes."
    other = dataclasses.replace(recorded, finding_concepts=[ConceptRef("DOID:3070", "finding", "malignant glioma")])
    assert definition_sentence(HCC_DO, other) is None  # the finding is not the passage's concept
    spleen = Passage("anatomy:UBERON:0002106:0", "anatomy", "spleen", "The organ that functions to filter blood and to store red corpuscles and platelets.", 0.9, ("UBERON:0002106",))
    lobe = dataclasses.replace(facts, roi_label="spleen", roi_concept=ConceptRef("UBERON:0002106", "anatomy", "spleen", "spleen", "exact"), organs=["abdomen"])
    assert definition_sentence(spleen, lobe) == "The spleen is the organ that functions to filter blood."
    broader = dataclasses.replace(lobe, roi_label="spleen lower pole", roi_concept=ConceptRef("UBERON:0002106", "anatomy", "spleen", "spleen lower pole", "normalised"))
    assert definition_sentence(spleen, broader) is None  # a part mapped to its organ gets no definition of the organ


def test_definitions_of_real_anatomy_terms_become_short_true_sentences():
    """Uberon definitions as bundled: a long verb list is cut at its first comma, a label named by a
    synonym keeps its own wording, a sided label whose core is the concept gets it, prose "located in"
    is not rewritten as a relation, and a part mapped to its organ still gets nothing."""
    from medtrinity_assets.captions.background import clean_passage, definition_sentence
    from medtrinity_assets.records import ConceptRef

    base = dataclasses.replace(ct_liver(), organs=["abdomen"], other_rois=[], image_labels=[], finding_concepts=[])

    def about(label, concept, name, match, title, text, others=()):
        passage = Passage(f"anatomy:{concept}:0", "anatomy", title, text, 0.9, (concept,))
        facts = dataclasses.replace(base, roi_label=label, roi_concept=ConceptRef(concept, "anatomy", name, label, match), other_rois=list(others))
        return definition_sentence(passage, facts)

    liver = (
        "An exocrine gland which secretes bile and functions in metabolism of protein and carbohydrate and fat, synthesizes "
        "substances involved in the clotting of the blood, synthesizes vitamin A, detoxifies poisonous substances, stores "
        "glycogen, and breaks down worn-out erythrocytes."
    )
    assert about("liver", "UBERON:0002107", "liver", "exact", "liver", liver) == (
        "The liver is an exocrine gland which secretes bile and functions in metabolism of protein and carbohydrate and fat."
    )
    gall = "An organ that aids digestion and stores bile produced by the liver."
    assert about("gallbladder", "UBERON:0002110", "gall bladder", "synonym", "gall bladder", gall, ["liver"]) == (
        "The gallbladder is an organ that aids digestion and stores bile produced by the liver."
    )
    assert about("gallbladder", "UBERON:0002110", "gall bladder", "synonym", "gall bladder", gall) is None  # no liver on the image
    atrium = "Cardiac chamber in which blood enters the heart."
    assert about("heart atrium left", "UBERON:0002081", "cardiac atrium", "normalised", "cardiac atrium", atrium) == (
        "The atrium is a cardiac chamber in which blood enters the heart."
    )
    kidney = Passage("anatomy:UBERON:0002113:0", "anatomy", "kidney", "A paired organ of the urinary tract which has the production of urine as its primary function.", 0.9, ("UBERON:0002113",))
    left = dataclasses.replace(base, roi_label="kidney_left", roi_concept=ConceptRef("UBERON:0004538", "anatomy", "left kidney", "kidney left", "normalised"))
    assert definition_sentence(kidney, left) == "The kidney is a paired organ of the urinary tract which has the production of urine as its primary function."
    text, _ = compose_caption(dataclasses.replace(left, knowledge=[kidney]), seed="k")
    assert "the kidney is a paired organ" in text  # the composer takes it: the left kidney is a kind of kidney
    lobe = dataclasses.replace(base, roi_label="lung lower lobe left", roi_concept=ConceptRef("UBERON:0002048", "anatomy", "lung", "lung lower lobe left", "normalised"))
    assert definition_sentence(dataclasses.replace(kidney, title="lung", concept_ids=("UBERON:0002048",)), lobe) is None
    pancreas = "An endoderm derived structure that produces precursors of digestive enzymes and blood glucose regulating enzymes."
    assert about("pancreas", "UBERON:0001264", "pancreas", "exact", "pancreas", pancreas) is None  # definition_skip: hormones are not enzymes
    lung = "Respiration organ that has the exchange of gases as its function."
    assert about("lung lower lobe left", "UBERON:0002048", "lung", "normalised", "lung", lung) is None
    assert "system located in the vertebral canal" in clean_passage("Part of the central nervous system located in the vertebral canal.")
    assert "that is located in the uvea" in clean_passage("A cancer that is located_in the uvea.")
    assert "which are transmitted by mosquitoes" in clean_passage("Viruses, which are transmitted_by mosquitoes.")
    assert clean_passage("The walls of the thorax..").endswith("thorax.")


def test_composer_ignores_knowledge_without_a_matching_concept():
    facts = mri_brain_whole()
    text, sections = compose_caption(facts, seed="x")
    assert GLIOMA_DO.title not in text.lower() and "glioma" not in text.lower()
    for word in ("tumou?r", "lesion", "carcinoma", "abnormal", "mass", "haemorrhage", "hemorrhage"):
        assert not re.search(word, text, re.I), word
    assert "whole" in text
    # a passage about tuberculosis is not background for a pneumothorax record
    lungs = dataclasses.replace(xray_lungs(), image_labels=["pneumothorax"], finding_concepts=[], knowledge=[TB_MQ])
    text, _ = compose_caption(lungs, seed="x")
    assert "Mycobacterium" not in text
    # the same passage without concept ids is not used either (no matching by words)
    untagged = dataclasses.replace(TB_MQ, concept_ids=())
    text, _ = compose_caption(dataclasses.replace(xray_lungs(), knowledge=[untagged]), seed="x")
    assert "Mycobacterium" not in text


def test_composer_skips_unusable_sentences():
    bad = Passage(
        "c1",
        "medquad",
        "Tuberculosis",
        "What is tuberculosis? You should see your doctor if tuberculosis "
        "is suspected. Tuberculosis usually affects the right upper lobe on CT scans. Is a: infection.",
        1.0,
        concept_ids=("DOID:399",),
    )
    text, _ = compose_caption(dataclasses.replace(xray_lungs(), knowledge=[bad]), seed="x")
    assert "doctor" not in text and "upper lobe" not in text and "CT" not in text and "Is a" not in text
    nested = dataclasses.replace(bad, text="Tuberculosis (an infection (of the lungs) by bacteria) is a disease caused by bacteria.")
    assert "(" not in compose_caption(dataclasses.replace(xray_lungs(), knowledge=[nested]), seed="x")[0]


def test_composer_is_deterministic_and_varies_with_seed():
    facts = ct_liver()
    assert compose_caption(facts, seed="roi-7") == compose_caption(ct_liver(), seed="roi-7")
    texts = {compose_caption(facts, seed=f"roi-{i}")[0] for i in range(30)}
    assert len(texts) >= 10
    # default seed comes from the facts
    assert compose_caption(facts) == compose_caption(ct_liver())


@pytest.mark.parametrize("phrase", POSITION_VOCABULARY["phrases"])
def test_composer_position_wording_agrees_with_every_phrase(phrase):
    from medtrinity_assets.records import GridPosition

    vertical, horizontal = phrase.split()
    cell = GridPosition(POSITION_VOCABULARY["vertical"].index(vertical), POSITION_VOCABULARY["horizontal"].index(horizontal))
    facts = dataclasses.replace(ct_liver(), roi_position=phrase, position=cell, extra={})
    text, sections = compose_caption(facts, seed=phrase)
    assert check_caption(text, sections, facts) == []


def test_composer_grammar_for_plural_structures():
    for seed in range(20):
        text, _ = compose_caption(xray_lungs(), seed=seed)
        assert not re.search(r"\blungs (lies|occupies|is|covers|takes|appears|has|measures)\b", text), text
        assert not re.search(r"\b[Ii]ts\b", text.split("Tuberculosis (TB)")[0]), text


def test_one_mask_of_two_named_veins_is_plural():
    """TotalSegmentator's "portal_vein_and_splenic_vein" is two veins in one mask (labels.yaml plural: true)."""
    from medtrinity_assets.captions.labels import structure_name

    name = structure_name("portal_vein_and_splenic_vein")
    assert (name.text, name.plural) == ("portal and splenic veins", True)
    facts = dataclasses.replace(ct_liver(), roi_label="portal_vein_and_splenic_vein")
    for seed in range(12):
        text, _ = compose_caption(facts, seed=seed)
        assert "portal and splenic veins" in text and not re.search(r"veins (lies|occupies|is|covers|appears|has|measures)|[Ii]ts", text), text


def test_composer_names_one_lung_mask_a_lung_field():
    from medtrinity_assets.records import Measurements

    one = Measurements(intensity_unit="relative", area_px=90000, n_components=1, label_count=2)
    facts = dataclasses.replace(xray_lungs(), measurements=one)
    text, _ = compose_caption(facts, seed="x")
    assert "lung field" in text and re.search(r"\b(?:one of|Of) the two lung fields|one of two lung fields", text) and "lungs lie" not in text


def test_heart_labels_are_worded_as_a_radiologist_writes_them():
    """SAM-Med2D's "heart myocardium" / "heart ventricle left" read "the myocardium" / "the left
    ventricle" (labels.yaml), as a report names them, and the caption still passes its checks."""
    facts = dataclasses.replace(
        ct_liver(), organs=["thorax"], roi_label="heart myocardium", other_rois=["heart ventricle left"], relations=[], image_labels=[]
    )
    text, sections = compose_caption(facts, seed="x")
    assert "myocardium" in text and "heart myocardium" not in text and "heart ventricle" not in text
    assert check_caption(text, sections, facts) == []


def test_composer_with_sparse_facts():
    facts = dataclasses.replace(
        microscopy_nucleus(), relations=[], other_rois=[], roi_position=None, position=None, roi_area_frac=None
    )
    text, sections = compose_caption(facts, seed="x")
    assert check_caption(text, sections, facts) == []
    assert "nucleus" in sections["relations"] and "#" not in sections["relations"]


def test_overview_does_not_repeat_structures_the_region_names():
    from medtrinity_assets.records import Measurements

    us = dataclasses.replace(
        ct_liver(), modality="US", organs=["peripheral nerve and blood vessels"], roi_label="nerve",
        other_rois=["blood vessel"], image_labels=[], knowledge=[], relations=[],
        measurements=Measurements(label_count=3, area_px=400),
    )
    for seed in range(12):
        first = compose_caption(us, seed=seed)[0].split(". ")[0]
        assert "peripheral nerve and blood vessels" in first and "three nerves" not in first, first


def test_whole_image_description_does_not_narrate_what_was_not_measured():
    whole = dataclasses.replace(ct_liver(), roi_label=None, roi_position=None, roi_area_frac=None, position=None, measurements=None, relations=[], other_rois=[], knowledge=[])
    for seed in range(12):
        text, sections = compose_caption(whole, seed=seed)
        assert not re.search(r"\b(?:measur\w*|delineated|brightness|texture)\b", text, re.I), text
        assert "abdomen" in text and sections["texture"]


def test_directions_without_a_display_frame_are_said_to_be_as_displayed():
    """No display frame (an 8-bit export): "to the left of" is the image's left, and the relations
    sentence says so once; with a patient frame it does not."""
    from medtrinity_assets.captions.data_files import wording
    from medtrinity_assets.records import Relation

    forms = wording().relations.image_frame
    image = dataclasses.replace(ct_liver(), frame=None, relations=[Relation("borders", "spleen"), Relation("direction", "aorta", "left"), Relation("direction", "aorta", "above")])
    for seed in range(8):
        said = compose_caption(image, seed=seed)[1]["relations"]
        assert "to the left of and above the aorta" in said and sum(said.count(" " + f) for f in forms) == 1, said
        assert said.rstrip(".").endswith(forms), said
    patient = compose_caption(ct_liver(), seed="x")[1]["relations"]
    assert not any(" " + f in patient for f in forms), patient


def test_overview_verb_agrees_with_the_structures_it_lists():
    """"Visible on this dermoscopy image of the skin is the skin lesion", never "are the skin lesion"."""
    from medtrinity_assets.records import CaptionFacts, GridPosition

    facts = CaptionFacts(modality="Dermoscopy", organs=["skin"], coarse_caption="", roi_label="skin lesion", roi_position="middle center", roi_area_frac=0.2, position=GridPosition(2, 2))
    firsts = {compose_caption(facts, seed=s)[0].split(". ")[0] for s in range(40)}
    assert any(re.search(r"\b(?:is|appears)\b", f) for f in firsts)
    assert not [f for f in firsts if re.search(r"\bare the skin lesion\b|\bskin lesion (?:are|appear)\b", f)], firsts


def test_a_bordering_structure_with_a_direction_is_named_once():
    """Contact and direction to one structure make one clause ("lies anterior to the aorta, in contact
    with it"), in the bordering clause's place, never "abuts the aorta, lies anterior to the aorta";
    the relation check still reads its direction."""
    from medtrinity_assets.captions.data_files import wording
    from medtrinity_assets.records import Relation

    tails = [t.format(it="it") for t in wording().relations.in_contact]
    frames = wording().relations.image_frame
    rels = [Relation("borders", "aorta"), Relation("borders", "spleen"), Relation("direction", "aorta", "anterior"), Relation("direction", "stomach", "posterior")]
    for frame, words in ((ct_liver().frame, ("anterior to the aorta", "in front of the aorta")), (None, ("to the left of the aorta",))):
        typed = rels if frame else [*rels[:2], Relation("direction", "aorta", "left"), Relation("direction", "stomach", "below")]
        facts = dataclasses.replace(ct_liver(), frame=frame, relations=typed)
        for seed in range(12):
            text, sections = compose_caption(facts, seed=seed)
            said = sections["relations"]
            assert said.count("aorta") == 1 and any(w in said for w in words), said
            assert sum(said.count(t) for t in tails) == 1 and said.index("aorta") < said.index("stomach"), said
            assert not ("abuts" in said and "abutting" in said) and said.count("in contact with") < 2, said  # no echo
            assert sum(said.count(" " + f) for f in frames) == (0 if frame else 1), said
            assert check_caption(text, sections, facts) == [], text
            w = next(w for w in words if w in said)
            flipped = text.replace(w, w.replace("anterior to", "posterior to").replace("in front of", "behind").replace("left", "right"))
            assert "relation_contradiction" in check_caption(flipped, {**sections, "relations": ""}, facts), flipped


def test_articles_agree_with_the_appearance_word():
    """'an inhomogeneous texture', 'a uniform texture', 'an oval outline' (by sound)."""
    from medtrinity_assets.captions.look_text import with_article

    assert [with_article(w) for w in ("inhomogeneous", "uniform", "oval", "round", "heterogeneous", "")] == [
        "an inhomogeneous", "a uniform", "an oval", "a round", "a heterogeneous", ""
    ]
    for name in sorted(EXAMPLES):
        for seed in range(40):
            text = compose_caption(EXAMPLES[name](), seed=seed)[0]
            assert not re.search(r"\ba [aeio]\w*|\ban (?:uni|[^aeiou\s])", text), text
