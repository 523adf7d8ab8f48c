"""Concepts, the knowledge use policy and the labelled evaluation, on a real chromadb + FTS5 index."""

from __future__ import annotations

import polars as pl
import pytest

from medtrinity_assets.knowledge import build_index, evaluate_policy, load_chunks, load_corpus_config, load_queries, load_vocabulary
from medtrinity_assets.knowledge.policy import KnowledgeRequest, about_sentences, select_passages
from medtrinity_assets.records import ConceptRef
from medtrinity_assets.stages.knowledge import misfit_passages, retrieve_for_shard, unmapped_labels
from medtrinity_resources.embedder import SentenceEmbedder
from medtrinity_resources.knowledge_store import KnowledgeStore

from helpers import KNOWLEDGE_CORPORA, REPO


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary(KNOWLEDGE_CORPORA)


@pytest.fixture(scope="module")
def queries():
    return load_queries(REPO / "data" / "knowledge" / "evaluation" / "queries.jsonl")


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder, queries):
    """Disease Ontology terms the queries name plus 800 others, all anatomy, 400 MedQuAD documents."""
    configs = load_corpus_config(KNOWLEDGE_CORPORA)
    wanted = {c for q in queries for c in [*q["expected"], *q.get("forbidden", [])]}
    do = load_chunks(configs["disease_ontology"])
    do = [c for i, c in enumerate(do) if c.doc_id in wanted or i < 800]
    kb = KnowledgeStore(persist_dir=str(tmp_path_factory.mktemp("kb")))
    build_index(kb, embedder, "disease_ontology", do)
    build_index(kb, embedder, "anatomy", load_chunks(configs["anatomy"]))
    build_index(kb, embedder, "medquad", load_chunks(configs["medquad"].model_copy(update={"max_documents": 400})))
    return kb


@pytest.mark.parametrize(
    ("label", "role", "concept_id", "match_type"),
    [
        ("liver", "roi", "UBERON:0002107", "exact"),
        ("kidney left", "roi", "UBERON:0004538", "normalised"),  # TotalSegmentator order
        ("small bowel", "roi", "UBERON:0002108", "synonym"),
        ("vertebrae_T9", "roi", "UBERON:0002412", "normalised"),
        ("brachial plexus nerve", "roi", "UBERON:0001021", "normalised"),  # head noun
        ("inferior vena cava", "roi", "UBERON:0001072", "alias"),
        ("hip", "roi", "UBERON:0001272", "alias"),  # the alias beats Uberon's exact "hip" (the region around the joint)
        ("hip_left", "roi", "UBERON:0001272", "normalised"),  # TotalSegmentator / SAM-Med2D: the left hip bone
        ("HCC", "finding", "DOID:684", "alias"),
        ("tuberculosis", "finding", "DOID:399", "exact"),
        ("ossifying fibroma", "finding", "DOID:180", "exact"),
        ("non-ossifying fibroma", "finding", "", "none"),  # near miss: never the ossifying one
        ("nucleus", "roi", "", "none"),
        ("skin lesion", "roi", "", "none"),  # a finding word: not shortened to "skin"
    ],
)
def test_labels_map_to_concepts(vocab, label, role, concept_id, match_type):
    ref = vocab.lookup(label, role)
    assert (ref.concept_id, ref.match_type) == (concept_id, match_type)
    if concept_id:
        assert ref.kind == ("anatomy" if concept_id.startswith("UBERON:") else "finding")


def test_catalog_mapping_and_non_findings(vocab):
    assert vocab.lookup("skin lesion", "roi", {"Skin Lesion": "DOID:37"}) == ConceptRef(
        "DOID:37", "finding", "skin disease", matched="skin lesion", match_type="catalog"
    )
    normal = vocab.lookup("No Finding", "finding")
    assert normal.kind == "normal" and normal.concept_id == ""


def test_demo_catalog_concepts_point_at_known_concepts(vocab):
    from medtrinity_assets.catalog import load_catalog

    ids = [cid for s in load_catalog(REPO / "data" / "catalog.yaml").sources for cid in s.concepts.values()]
    assert ids and all(cid in vocab.by_id for cid in ids)


def test_evaluation_set_is_labelled_with_known_concepts(vocab, queries):
    assert len(queries) >= 150 and len({q["id"] for q in queries}) == len(queries)
    categories = {q["category"] for q in queries}
    assert {"finding", "abbreviation", "near_miss", "anatomy", "anatomy_with_finding"} <= categories
    for q in queries:
        assert all(c in vocab.by_id for c in [*q["expected"], *q["forbidden"]]), q["id"]


def test_policy_gives_disease_only_for_recorded_findings(store, embedder, vocab):
    lungs, tb = vocab.lookup("lungs", "roi"), vocab.lookup("tuberculosis", "finding")
    passages = select_passages(store, embedder, vocab, KnowledgeRequest("lungs, tuberculosis, chest, X-ray", lungs, (tb,)))
    about = [p.concept_ids for p in passages]
    assert about[0] == ("UBERON:0002048",) and ("DOID:399",) in about
    assert {c for ids in about for c in ids} == {"UBERON:0002048", "DOID:399"}
    # the same lungs on a normal image: anatomy only
    normal = select_passages(store, embedder, vocab, KnowledgeRequest("lungs, chest, X-ray", lungs, (vocab.lookup("no finding", "finding"),)))
    assert normal and all(p.concept_ids == ("UBERON:0002048",) and p.corpus == "anatomy" for p in normal)
    # a near-miss finding gets nothing rather than its twin
    nof = vocab.lookup("non-ossifying fibroma", "finding")
    assert select_passages(store, embedder, vocab, KnowledgeRequest("non-ossifying fibroma, tibia, X-ray", ConceptRef("", "anatomy", ""), (nof,))) == []
    # identical inputs, identical passages (deterministic ranking)
    again = select_passages(store, embedder, vocab, KnowledgeRequest("lungs, tuberculosis, chest, X-ray", lungs, (tb,)))
    assert again == passages


def test_a_sided_structure_without_its_own_definition_gets_its_structures(store, embedder, vocab):
    """"left kidney" is label-only in the bundled Uberon subset and is a kind of kidney: it gets the
    kidney's definition, tagged with the kidney's id, and the asset check accepts it; a part (a lung
    lobe) or an unsided structure gets no broader concept."""
    assert vocab.unsided("UBERON:0004538").name == "kidney" and vocab.unsided("UBERON:0002167").name == "lung"
    assert vocab.unsided("UBERON:0002113") is None and vocab.unsided("DOID:684") is None
    left = vocab.lookup("kidney_left", "roi")
    passages = select_passages(store, embedder, vocab, KnowledgeRequest("kidney left, abdomen, CT", left, ()))
    assert passages and passages[0].chunk_id == "anatomy:UBERON:0002113:0"
    assert {p.concept_ids for p in passages} == {("UBERON:0002113",)}
    # a sided structure with passages of its own keeps them (the right lung has its own definition)
    right_lung = select_passages(store, embedder, vocab, KnowledgeRequest("right lung", vocab.lookup("right lung"), ()))
    assert right_lung and right_lung[0].concept_ids == ("UBERON:0002167",)
    coarse = pl.DataFrame(
        {"roi_id": ["k"], "dataset": ["ts"], "shard": ["0"], "knowledge_query": ["kidney left, abdomen, CT"], "roi_label": ["kidney_left"], "image_labels": [[]]}
    )
    df = retrieve_for_shard(coarse, store, embedder, vocab)
    assert df["passage_ids"][0].to_list()[0] == "anatomy:UBERON:0002113:0"
    assert misfit_passages(df, vocab) == []
    assert [m["roi_id"] for m in misfit_passages(df)] == ["k"]  # without the vocabulary the kidney is not the left kidney's


def test_passages_are_whole_sentences_about_the_concept(store, embedder, vocab):
    ref = vocab.lookup("tuberculosis", "finding")
    passages = select_passages(store, embedder, vocab, KnowledgeRequest("tuberculosis", ConceptRef("", "anatomy", ""), (ref,)))
    own = next(p for p in passages if p.chunk_id == "disease_ontology:DOID:399:0")
    assert own.text.startswith("A primary bacterial infectious disease") and own.text.endswith(".")
    for fragment in ("Is a:", "Anatomy:", "Symptoms:", "Also called:", "tuberculosis:"):
        assert fragment not in own.text
    stored = store.fetch(["disease_ontology:DOID:180:0"])["disease_ontology:DOID:180:0"]
    assert "Is a:" in stored.text  # the index keeps the full chunk; only the passage is trimmed
    trimmed = about_sentences(stored, vocab.by_id["DOID:180"])
    assert trimmed.startswith("A bone benign neoplasm") and "Is a:" not in trimmed


def test_retrieved_knowledge_stage_records_concepts(store, embedder, vocab):
    coarse = pl.DataFrame(
        {
            "roi_id": ["r1", "r2", "r3"],
            "dataset": ["demo", "demo", "derm"],
            "shard": ["0", "0", "0"],
            "knowledge_query": ["lungs, tuberculosis, chest, X-ray", "nucleus, cell nuclei, Microscopy", "skin lesion, skin"],
            "roi_label": ["lungs", "nucleus", "skin lesion"],
            "image_labels": [["tuberculosis"], [], []],
        }
    )
    df = retrieve_for_shard(coarse, store, embedder, vocab, {"derm": {"skin lesion": "DOID:37"}})
    rows = {r["roi_id"]: r for r in df.iter_rows(named=True)}
    assert rows["r1"]["roi_concept"]["concept_id"] == "UBERON:0002048"
    assert rows["r1"]["finding_concepts"][0] == {
        "concept_id": "DOID:399", "kind": "finding", "name": "tuberculosis", "matched": "tuberculosis", "match_type": "exact"
    }
    assert ["UBERON:0002048"] in rows["r1"]["passage_concepts"] and ["DOID:399"] in rows["r1"]["passage_concepts"]
    assert rows["r2"]["passage_ids"] == [] and rows["r2"]["roi_concept"]["match_type"] == "none"
    assert rows["r3"]["roi_concept"]["match_type"] == "catalog"
    assert unmapped_labels(df) == ["nucleus"]
    assert misfit_passages(df) == []
    # a passage about a disease the image does not record is what the asset check reports
    bad = df.with_columns(pl.when(pl.col("roi_id") == "r1").then(pl.col("passage_concepts").list.eval(pl.lit(["DOID:180"]))).otherwise(pl.col("passage_concepts")).alias("passage_concepts"))
    assert {m["roi_id"] for m in misfit_passages(bad)} == {"r1"}


def test_labelled_evaluation_meets_its_goals_and_can_fail(store, embedder, vocab, queries):
    result = evaluate_policy(store, embedder, vocab, queries)
    assert result["finding_precision_at_1"] >= 0.9
    assert result["anatomy_disease_passage_share"] == 0.0 and result["queries_with_wrong_disease"] == 0
    assert result["mapping_accuracy"] == 1.0
    # the retrieval before the policy fails the same set: the evaluation is not true by construction
    base = result["baseline"]
    assert base["finding_precision_at_1"] < 0.9 and base["anatomy_disease_passage_share"] > 0.5
