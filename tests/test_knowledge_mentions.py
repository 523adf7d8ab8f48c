"""Disease mentions in written text (the knowledge policy's caption figure) on the real vocabulary."""

from __future__ import annotations

import pytest

from medtrinity_assets.captions.quality import caption_quality
from medtrinity_assets.knowledge.mentions import disease_mentions, unrecorded_diseases
from medtrinity_assets.knowledge.vocabulary import load_vocabulary


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary()


def test_names_and_synonyms_are_found_longest_first(vocabulary):
    hcc = vocabulary.lookup("hepatocellular carcinoma", role="finding").concept_id
    assert hcc.startswith("DOID:")
    assert disease_mentions("A mass consistent with hepatocellular carcinoma in the right lobe.", vocabulary) == {hcc}
    ossifying = vocabulary.lookup("ossifying fibroma", role="finding").concept_id
    non_ossifying = disease_mentions("A non-ossifying fibroma of the distal femur.", vocabulary)
    assert ossifying not in non_ossifying  # a near-miss name is never counted as the other disease


def test_anatomy_generic_words_and_measurements_name_no_disease(vocabulary):
    text = (
        "On this CT image of the abdomen the left kidney lies posterior to the liver. It is homogeneous, "
        "about 45 HU, slightly darker than the surrounding tissue; no lesion or disease is described."
    )
    assert disease_mentions(text, vocabulary) == set()


def test_unrecorded_diseases_and_the_caption_figure(vocabulary):
    recorded = ["hepatocellular carcinoma"]
    assert unrecorded_diseases("Hepatocellular carcinoma of the liver.", recorded, vocabulary) == set()
    extra = unrecorded_diseases("Hepatocellular carcinoma; spinal cord meningioma is also seen.", recorded, vocabulary)
    assert extra == {vocabulary.lookup("meningioma", role="finding").concept_id}
    figures = caption_quality(
        [("Hepatocellular carcinoma of the liver.", "", None), ("The spleen. Is a: lymphoid organ.", "", None)], [recorded, []]
    )
    assert figures["unrecorded_disease_share"] == 0.0 and figures["ontology_fragments"] == 1
    figures = caption_quality([("The normal spinal cord. Meningioma is a tumour of the meninges.", "", None)], [[]])
    assert figures["unrecorded_disease_share"] == 1.0
