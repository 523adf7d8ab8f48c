"""Corpus config, adapters (bundled files + small files written here), chunking and chunk ids."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from medtrinity_assets.knowledge import (
    ChunkingConfig,
    CorpusConfigError,
    Document,
    chunk_document,
    load_chunks,
    load_corpus_config,
    load_documents,
    normalise_concept_id,
    word_windows,
)
from medtrinity_assets.knowledge.config import parse_corpus
from medtrinity_assets.records import RejectError

from helpers import KNOWLEDGE_CORPORA, REPO


@pytest.fixture(scope="module")
def corpora():
    return load_corpus_config(KNOWLEDGE_CORPORA)


def limited(config, n):
    return config.model_copy(update={"max_documents": n})


# ------------------------------------------------------------------ config


def test_bundled_config_declares_four_corpora_with_licence_and_citation(corpora):
    assert set(corpora) == {"disease_ontology", "anatomy", "medquad", "pubmedqa"}
    for name, cfg in corpora.items():
        assert cfg.name == name
        assert cfg.path.is_absolute() and cfg.path.exists()
        assert cfg.licence and cfg.citation
        assert 0 <= cfg.chunking.overlap < cfg.chunking.max_words <= 170


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"chunking": {"max_words": 0, "overlap": 0}}, "chunking.max_words"),
        ({"chunking": {"max_words": 50, "overlap": 50}}, "chunking"),
        ({"adapter": "word_doc"}, "adapter"),
        ({"licence": None}, "licence"),
        ({"max_document": 10}, "max_document"),
        ({"path": "nowhere/at/all.jsonl"}, "path"),
        ({"max_documents": -1}, "max_documents"),
    ],
)
def test_bad_corpora_yaml_names_corpus_and_field(tmp_path, body, field):
    good = {
        "adapter": "jsonl",
        "path": "docs.jsonl",
        "licence": "CC0-1.0",
        "citation": "us",
        "chunking": {"max_words": 50, "overlap": 5},
    }
    (tmp_path / "docs.jsonl").write_text('{"id": "1", "text": "x"}\n')
    entry = {k: v for k, v in {**good, **body}.items() if v is not None}
    yaml_path = tmp_path / "corpora.yaml"
    yaml_path.write_text(json.dumps({"corpora": {"my_corpus": entry}}))  # JSON is valid YAML
    with pytest.raises(CorpusConfigError) as err:
        load_corpus_config(yaml_path)
    assert err.value.reason == "bad_corpus_config"
    assert err.value.corpus == "my_corpus" and err.value.field == field
    assert "my_corpus" in str(err.value) and field in str(err.value)


def test_config_without_corpora_is_rejected(tmp_path):
    path = tmp_path / "corpora.yaml"
    path.write_text("corpora: {}\n")
    with pytest.raises(CorpusConfigError, match="corpora"):
        load_corpus_config(path)


# ------------------------------------------------------------------ adapters on the bundled files


def test_disease_ontology_adapter(corpora):
    docs = load_documents(limited(corpora["disease_ontology"], 400))
    assert len(docs) == 400
    by_id = {d.doc_id: d for d in docs}
    angio = by_id["DOID:0001816"]
    assert angio.title == "angiosarcoma"
    assert angio.text.startswith(
        "angiosarcoma: A vascular cancer that derives from the cells"
    )  # 'derives_from' cleaned
    assert "Also called: hemangiosarcoma." in angio.text  # synonym from the OBO slims
    assert "Is a: vascular cancer." in angio.text
    assert "anatomical structure" not in angio.text  # generic anatomy filtered
    assert {"DOID:0001816", "MESH:D006394", "UMLS:C0018923", "NCI:C3088"} <= set(angio.concept_ids)
    assert angio.metadata["has_definition"] is True and angio.metadata["doid"] == "DOID:0001816"
    for d in docs:
        assert all(isinstance(v, str | int | float | bool) for v in d.metadata.values())


def test_medquad_adapter(corpora):
    docs = load_documents(limited(corpora["medquad"], 300))
    assert len(docs) == 300 and len({d.doc_id for d in docs}) == 300
    first = docs[0]
    assert first.title == "Adult Acute Lymphoblastic Leukemia"
    assert first.text.startswith("What is (are) Adult Acute Lymphoblastic Leukemia? Key Points")
    assert first.concept_ids == ("UMLS:C0751606",)
    assert first.metadata["source"] == "CancerGov" and first.metadata["qtype"] == "information"
    assert first.doc_id.startswith("CancerGov-0000001_1-1-")


def test_medquad_reused_question_ids_become_distinct_documents(corpora):
    # MedQuAD reuses qid 0000013_2-1 for several foci: each must stay its own document
    docs = load_documents(limited(corpora["medquad"], 2000))
    reused = [d for d in docs if d.metadata.get("qid") == "0000013_2-1"]
    assert len(reused) >= 2 and len({d.doc_id for d in reused}) == len(reused)


def test_pubmedqa_adapter(corpora):
    docs = load_documents(limited(corpora["pubmedqa"], 200))
    assert len(docs) == 200
    lace = docs[0]
    assert lace.doc_id == "21645374" and lace.metadata["pmid"] == "21645374"
    assert lace.title.startswith("Do mitochondria play a role")
    assert lace.text.startswith("Background: Programmed cell death")
    assert "Conclusion:" in lace.text
    assert "MESH:Mitochondria" in lace.concept_ids
    assert "Plant Leaves" in lace.metadata["mesh_terms"]


# ------------------------------------------------------------------ adapters on files written here


def corpus_config(tmp_path: Path, adapter: str, path: str, **extra):
    body = {"adapter": adapter, "path": path, "licence": "CC0-1.0", "citation": "test", **extra}
    return parse_corpus("local", body, tmp_path)


def test_jsonl_adapter(tmp_path):
    rows = [
        {
            "id": "a1",
            "title": "Lung nodule",
            "text": "A small rounded opacity in the lung.",
            "metadata": {"source": "atlas", "tags": ["ct", "lung"], "page": 3},
            "concept_ids": ["C0034079", "MESH:D055613"],
        },
        {"id": 2, "text": "No title here.", "metadata": {"concept_ids": "DOID:1324|DOID:3908"}},
    ]
    path = tmp_path / "kb.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = load_documents(corpus_config(tmp_path, "jsonl", "kb.jsonl.gz"))
    assert [d.doc_id for d in docs] == ["a1", "2"]
    assert docs[0].concept_ids == ("UMLS:C0034079", "MESH:D055613")
    assert docs[0].metadata == {"source": "atlas", "tags": "ct; lung", "page": 3}
    assert docs[1].title == "" and docs[1].concept_ids == ("DOID:1324", "DOID:3908")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": "no id"}', "bad_corpus_record"),
        ('{"id": "x", "text": "t"', "bad_corpus_record"),
        ("[1, 2]", "bad_corpus_record"),
    ],
)
def test_jsonl_adapter_rejects_bad_lines(tmp_path, line, reason):
    (tmp_path / "kb.jsonl").write_text('{"id": "ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(RejectError) as err:
        load_documents(corpus_config(tmp_path, "jsonl", "kb.jsonl"))
    assert err.value.reason == reason and "line 2" in err.value.detail


def test_skipped_documents_are_counted_by_reason(tmp_path):
    rows = [
        {"id": "1", "text": "a"},
        {"id": "1", "text": "b"},  # repeated id
        {"id": "2", "text": "   "},  # empty
        {"id": "3", "text": "<p>Markup</p> from a web page"},
        {"id": "4", "text": "p <or = 5 lesions, with>5 lesions is not markup"},
    ]
    (tmp_path / "kb.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    skipped = Counter()
    docs = load_documents(corpus_config(tmp_path, "jsonl", "kb.jsonl"), skipped)
    assert [d.doc_id for d in docs] == ["1", "4"] and docs[0].text == "a"
    assert skipped == {"duplicate_id": 1, "empty_text": 1, "html": 1}


def test_bundled_corpora_report_their_skips():
    configs = load_corpus_config(KNOWLEDGE_CORPORA)
    skipped = Counter()
    docs = load_documents(configs["anatomy"], skipped)
    assert skipped == {"empty_text": 37}  # Uberon terms without a (non-citation) definition stay out
    assert all(d.doc_id.startswith("UBERON:") and d.text.endswith(".") and "[" not in d.text for d in docs)
    assert all(d.text[0].isupper() or not d.text[0].isalpha() for d in docs)
    nerve = next(d for d in docs if d.title == "nerve")
    assert nerve.text.startswith("An enclosed, cable-like bundle of peripheral axons. A portion of tissue")
    liver = next(d for d in docs if d.title == "liver")
    assert liver.doc_id == "UBERON:0002107" and "UMLS:C0023884" in liver.concept_ids


PUBMED_XML = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">
<PubmedArticleSet>
 <PubmedArticle>
  <MedlineCitation Status="MEDLINE" Owner="NLM">
   <PMID Version="1">31234567</PMID>
   <Article PubModel="Print">
    <Journal><JournalIssue><PubDate><Year>2019</Year></PubDate></JournalIssue><Title>Radiology</Title></Journal>
    <ArticleTitle>Ground-glass <i>nodules</i> on CT.</ArticleTitle>
    <Abstract>
     <AbstractText Label="PURPOSE" NlmCategory="OBJECTIVE">To describe ground-glass nodules.</AbstractText>
     <AbstractText Label="RESULTS" NlmCategory="RESULTS">Most persisted at follow-up.</AbstractText>
    </Abstract>
   </Article>
   <MeshHeadingList>
    <MeshHeading><DescriptorName UI="D055613" MajorTopicYN="Y">Multiple Pulmonary Nodules</DescriptorName></MeshHeading>
    <MeshHeading><DescriptorName UI="D014057" MajorTopicYN="N">Tomography, X-Ray Computed</DescriptorName></MeshHeading>
   </MeshHeadingList>
  </MedlineCitation>
 </PubmedArticle>
 <PubmedArticle>
  <MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">31234568</PMID>
   <Article><ArticleTitle>A letter without an abstract.</ArticleTitle></Article></MedlineCitation>
 </PubmedArticle>
</PubmedArticleSet>
"""


def test_pubmed_xml_adapter_reads_gz_folder(tmp_path):
    folder = tmp_path / "baseline"
    folder.mkdir()
    with gzip.open(folder / "pubmed25n0001.xml.gz", "wt", encoding="utf-8") as fh:
        fh.write(PUBMED_XML)
    docs = load_documents(corpus_config(tmp_path, "pubmed_xml", "baseline"))
    assert len(docs) == 1  # the article without an abstract carries no knowledge
    doc = docs[0]
    assert doc.doc_id == "31234567" and doc.title == "Ground-glass nodules on CT."
    assert doc.text == "Purpose: To describe ground-glass nodules. Results: Most persisted at follow-up."
    assert {"MESH:D055613", "MESH:D014057", "MESH:Multiple Pulmonary Nodules"} <= set(doc.concept_ids)
    assert doc.metadata["year"] == "2019" and doc.metadata["journal"] == "Radiology"


def test_pubmed_xml_adapter_rejects_broken_xml(tmp_path):
    (tmp_path / "broken.xml").write_text(PUBMED_XML[:600])
    with pytest.raises(RejectError) as err:
        load_documents(corpus_config(tmp_path, "pubmed_xml", "broken.xml"))
    assert err.value.reason == "bad_corpus_file"


# ------------------------------------------------------------------ chunking


@pytest.mark.parametrize(
    ("n", "max_words", "overlap", "expected"),
    [
        (0, 10, 2, []),
        (5, 10, 2, [(0, 5)]),
        (10, 10, 2, [(0, 10)]),
        (11, 10, 2, [(0, 10), (8, 11)]),
        (25, 10, 3, [(0, 10), (7, 17), (14, 24), (21, 25)]),
    ],
)
def test_word_windows(n, max_words, overlap, expected):
    assert word_windows(n, max_words, overlap) == expected


def test_word_windows_rejects_overlap_not_below_window():
    with pytest.raises(ValueError):
        word_windows(10, 5, 5)


def test_chunks_carry_ids_hashes_and_scalar_metadata():
    doc = Document("D1", "Title", " ".join(f"w{i}" for i in range(25)), ("DOID:1",), {"source": "x"})
    chunks = chunk_document(doc, "demo", ChunkingConfig(max_words=10, overlap=3))
    assert [c.chunk_id for c in chunks] == ["demo:D1:0", "demo:D1:1", "demo:D1:2", "demo:D1:3"]
    assert chunks[1].text.split()[:3] == ["w7", "w8", "w9"]  # 3 words of overlap
    assert len({c.content_hash for c in chunks}) == 4
    assert all(c.concept_ids == ("DOID:1",) and c.metadata["source"] == "x" for c in chunks)
    assert chunks[1].embedding_text.startswith("Title: w7")
    changed = chunk_document(
        Document("D1", "Title", doc.text.replace("w20", "WW"), ("DOID:1",), {"source": "x"}),
        "demo",
        ChunkingConfig(max_words=10, overlap=3),
    )
    assert [c.content_hash for c in changed[:2]] == [c.content_hash for c in chunks[:2]]
    assert changed[2].content_hash != chunks[2].content_hash  # only the windows holding the edit change


def test_chunk_ids_are_stable_across_loads_and_document_limits(corpora):
    do = corpora["disease_ontology"]
    small, again, larger = load_chunks(limited(do, 200)), load_chunks(limited(do, 200)), load_chunks(limited(do, 300))
    pairs = [(c.chunk_id, c.content_hash) for c in small]
    assert pairs == [(c.chunk_id, c.content_hash) for c in again]
    assert pairs == [(c.chunk_id, c.content_hash) for c in larger[: len(small)]]
    assert all(c.chunk_id.startswith("disease_ontology:DOID:") for c in small)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("UMLS_CUI:C0029581", "UMLS:C0029581"),
        ("C0751606", "UMLS:C0751606"),
        ("mesh:D009202", "MESH:D009202"),
        ("NCIT:C3088", "NCI:C3088"),
        ("DOID:1324", "DOID:1324"),
        ("  ", ""),
    ],
)
def test_normalise_concept_id(raw, normalised):
    assert normalise_concept_id(raw) == normalised
