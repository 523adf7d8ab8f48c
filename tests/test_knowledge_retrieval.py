"""Incremental index (real chromadb + FTS5 in tmp dirs), hybrid retrieval, filters, evaluation."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from medtrinity_assets.knowledge import (
    build_index,
    evaluate_retrieval,
    fts_match_expression,
    knowledge_query,
    load_chunks,
    load_corpus_config,
    reciprocal_rank_fusion,
    retrieve,
    retrieve_many,
)
from medtrinity_assets.knowledge.chunking import content_hash
from medtrinity_assets.records import RejectError
from medtrinity_resources.embedder import SentenceEmbedder
from medtrinity_resources.knowledge_store import KnowledgeStore

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"disease_ontology": 160, "medquad": 12, "pubmedqa": 10}
PTERYGIUM = "disease_ontology:DOID:0002116:0"


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()


@pytest.fixture(scope="module")
def corpus_chunks():
    configs = load_corpus_config(REPO / "data" / "knowledge" / "corpora.yaml")
    return {name: load_chunks(configs[name].model_copy(update={"max_documents": n})) for name, n in LIMITS.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder, corpus_chunks):
    kb = KnowledgeStore(persist_dir=str(tmp_path_factory.mktemp("kb")))
    for name, chunks in corpus_chunks.items():
        result = build_index(kb, embedder, name, chunks)
        assert result["n_embedded"] == result["n_chunks"] == len(chunks)
    return kb


def edited(chunk, text):
    return dataclasses.replace(
        chunk, text=text, content_hash=content_hash(chunk.title, text, chunk.concept_ids, chunk.metadata)
    )


# ------------------------------------------------------------------ incremental build


def test_incremental_rebuild_embeds_only_changes_and_deletes_removed(tmp_path, embedder, corpus_chunks):
    chunks = corpus_chunks["disease_ontology"][:24]
    kb = KnowledgeStore(persist_dir=str(tmp_path / "kb"))
    first = build_index(kb, embedder, "disease_ontology", chunks)
    assert (first["n_chunks"], first["n_embedded"], first["n_deleted"]) == (24, 24, 0)
    second = build_index(kb, embedder, "disease_ontology", chunks)
    assert (second["n_embedded"], second["n_deleted"]) == (0, 0)

    changed = [*chunks[:9], edited(chunks[9], chunks[9].text + " Extra sentence."), *chunks[10:19]]
    third = build_index(kb, embedder, "disease_ontology", changed)
    assert (third["n_embedded"], third["n_deleted"]) == (1, 5)
    indexed, held = kb.index_state("disease_ontology")
    assert held == set(indexed) == {c.chunk_id for c in changed}
    assert indexed[chunks[9].chunk_id] == changed[9].content_hash != chunks[9].content_hash
    assert kb.counts() == {"disease_ontology": {"dense": 19, "keyword": 19}}
    assert not kb.fetch([c.chunk_id for c in chunks[19:]])
    assert kb.name_query([chunks[20].title], 5) == []  # name lookup rows go with the chunk
    assert kb.name_query([chunks[5].title], 5) == [chunks[5].chunk_id]
    assert kb.fetch([chunks[9].chunk_id])[chunks[9].chunk_id].text.endswith("Extra sentence.")


def test_chunk_held_by_one_side_only_is_repaired(tmp_path, embedder, corpus_chunks):
    chunks = corpus_chunks["disease_ontology"][:10]
    kb = KnowledgeStore(persist_dir=str(tmp_path / "kb"))
    build_index(kb, embedder, "disease_ontology", chunks)
    with sqlite3.connect(kb.root() / "keyword.sqlite") as db:  # an interrupted build: keyword row lost
        db.execute("DELETE FROM chunks WHERE chunk_id = ?", (chunks[3].chunk_id,))
    assert build_index(kb, embedder, "disease_ontology", chunks)["n_embedded"] == 1
    assert kb.counts()["disease_ontology"] == {"dense": 10, "keyword": 10}
    # and an orphan present on one side only, not in the corpus any more, is deleted
    with sqlite3.connect(kb.root() / "keyword.sqlite") as db:
        db.execute("DELETE FROM chunks WHERE chunk_id = ?", (chunks[9].chunk_id,))
    result = build_index(kb, embedder, "disease_ontology", chunks[:9])
    assert (result["n_embedded"], result["n_deleted"]) == (0, 1)
    assert kb.counts()["disease_ontology"] == {"dense": 9, "keyword": 9}


def test_keyword_database_upgrade_backfills_name_lookup(tmp_path, embedder, corpus_chunks):
    from medtrinity_resources import knowledge_store

    chunks = corpus_chunks["disease_ontology"][:5]
    kb = KnowledgeStore(persist_dir=str(tmp_path / "kb"))
    build_index(kb, embedder, "disease_ontology", chunks)
    path = kb.root() / "keyword.sqlite"
    with sqlite3.connect(path) as db:  # a database written before the name table existed
        db.execute("DELETE FROM chunk_names")
        db.execute("PRAGMA user_version = 1")
    knowledge_store._SCHEMA_READY.discard(str(path))  # as a fresh process would open it
    knowledge_store._CONNECTIONS.by_path.pop(str(path))[2].close()
    assert kb.name_query([chunks[2].title], 5) == [chunks[2].chunk_id]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == knowledge_store.SCHEMA_VERSION


def test_keyword_connection_is_reused_per_thread_and_reopened_for_a_replaced_file(tmp_path, embedder, corpus_chunks):
    from medtrinity_resources.knowledge_store import keyword_connection

    chunks = corpus_chunks["disease_ontology"][:3]
    kb = KnowledgeStore(persist_dir=str(tmp_path / "kb"))
    build_index(kb, embedder, "disease_ontology", chunks)
    path = kb.root() / "keyword.sqlite"
    first = keyword_connection(path)
    assert keyword_connection(path) is first
    other: list = []
    thread = threading.Thread(target=lambda: other.append(keyword_connection(path)))
    thread.start()
    thread.join()
    assert other[0] is not first  # sqlite3 connections stay in their thread
    shutil.rmtree(kb.root() / "chroma")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    fresh = KnowledgeStore(persist_dir=kb.persist_dir)
    assert fresh.corpora() == [] and keyword_connection(path) is not first  # a new, empty index


def test_changing_embedder_rebuilds_the_corpus(tmp_path, embedder, corpus_chunks):
    chunks = corpus_chunks["disease_ontology"][:8]
    kb = KnowledgeStore(persist_dir=str(tmp_path / "kb"))
    build_index(kb, embedder, "disease_ontology", chunks)
    other = SentenceEmbedder(backend="sentence_transformers")  # another model -> another model_id
    assert other.model_id != embedder.model_id
    result = build_index(kb, other, "disease_ontology", chunks)
    assert (result["n_embedded"], result["n_deleted"]) == (8, 8)
    assert kb.embedder_of("disease_ontology") == other.model_id
    with pytest.raises(RejectError) as err:  # querying with the old embedder is refused, not silently wrong
        retrieve(kb, embedder, "pterygium")
    assert err.value.reason == "embedder_mismatch"


def test_duplicate_chunk_ids_are_rejected(tmp_path, embedder, corpus_chunks):
    chunks = corpus_chunks["disease_ontology"][:3]
    with pytest.raises(RejectError) as err:
        build_index(KnowledgeStore(persist_dir=str(tmp_path)), embedder, "disease_ontology", [*chunks, chunks[0]])
    assert err.value.reason == "duplicate_chunk_id"


# ------------------------------------------------------------------ retrieval


def test_hybrid_retrieval_finds_known_definition(store, embedder):
    by_name = retrieve(store, embedder, "pterygium", top_k=5)
    assert by_name[0].chunk_id == PTERYGIUM and by_name[0].corpus == "disease_ontology"
    assert by_name[0].title == "pterygium" and "cornea" in by_name[0].text
    assert all(a.score >= b.score for a, b in zip(by_name, by_name[1:], strict=False))
    # a paraphrase with no exact title match is found through the dense side
    paraphrase = retrieve(store, embedder, "triangular fibrovascular tissue growing onto the cornea", top_k=5)
    assert PTERYGIUM in [p.chunk_id for p in paraphrase]


def test_exact_name_and_synonym_lookup(store, embedder):
    angio = "disease_ontology:DOID:0001816:0"
    assert store.name_query(["Hemangiosarcoma"], 5) == [angio]  # synonym from the OBO slims, any case
    assert store.name_query(["hemangio-sarcoma"], 5) == []  # exact names only, not fuzzy
    assert retrieve(store, embedder, "hemangiosarcoma", top_k=3)[0].chunk_id == angio
    # a record query: the label part is looked up as a name
    query = knowledge_query("photograph", ["eye"], ["pterygium"], None)
    assert query == "pterygium, eye, photograph"
    assert retrieve(store, embedder, query, top_k=3)[0].chunk_id == PTERYGIUM
    with_names = retrieve(store, embedder, "hemangiosarcoma", top_k=3)
    assert with_names[0].score > 2 / 61  # dense, bm25 and name lists all rank it
    without = retrieve(store, embedder, "hemangiosarcoma", top_k=3, name_match=False)
    assert all(p.score <= 2 / 61 + 1e-12 for p in without)  # two lists at most


def test_retrieval_can_be_limited_to_corpora(store, embedder):
    passages = retrieve(store, embedder, "acute lymphoblastic leukemia", top_k=5, corpora=["medquad"])
    assert passages and {p.corpus for p in passages} == {"medquad"}
    with pytest.raises(RejectError) as err:
        retrieve(store, embedder, "leukemia", corpora=["no_such_corpus"])
    assert err.value.reason == "unknown_corpus"


def test_concept_id_filter(store, embedder):
    cui = retrieve(store, embedder, "leukemia symptoms", top_k=5, concept_ids=["C0751606"])  # bare CUI accepted
    assert cui
    held = store.fetch([p.chunk_id for p in cui])
    assert all("UMLS:C0751606" in held[p.chunk_id].concept_ids for p in cui)
    doid = retrieve(store, embedder, "eye disease", top_k=5, concept_ids=["doid:0002116"])  # case-insensitive
    assert [p.chunk_id for p in doid] == [PTERYGIUM]
    mesh = retrieve(store, embedder, "cell death", top_k=5, concept_ids=["MESH:Plant Leaves"])
    assert mesh and {p.corpus for p in mesh} == {"pubmedqa"}
    assert retrieve(store, embedder, "pterygium", concept_ids=["DOID:999999999"]) == []


@pytest.mark.parametrize(
    "query",
    ['lung "nodule', "(brain) AND NOT tumour*", "non-small-cell lung-cancer", "NEAR(a b)", 'col:"x" ^ - + {}', "''"],
)
def test_keyword_query_is_sanitised(store, embedder, query):
    expression = fts_match_expression(query)
    if expression:
        assert isinstance(store.keyword_query(expression, 5), list)  # FTS5 raises on bad MATCH syntax
    assert isinstance(retrieve(store, embedder, query, top_k=3), list)


def test_fts_match_expression_quotes_every_word():
    assert (
        fts_match_expression('lung "nodule" (CT) non-small-cell')
        == '"lung" OR "nodule" OR "ct" OR "non" OR "small" OR "cell"'
    )
    assert fts_match_expression("NOT AND OR") == '"not"'  # operators become quoted words; stop words dropped
    assert fts_match_expression("of the and") == '"of" OR "the" OR "and"'  # only stop words: kept
    assert fts_match_expression("the liver of a patient") == '"liver" OR "patient"'
    assert fts_match_expression("  ") == ""


def test_keyword_side_ranks_exact_title(store):
    hits = store.keyword_query(fts_match_expression("pterygium"), 5)
    assert hits[0].chunk_id == PTERYGIUM


def test_retrieve_many_dedups_and_keeps_order(store, embedder):
    queries = ["pterygium", "angiosarcoma", "pterygium", "   ", "angiosarcoma"]
    results = retrieve_many(store, embedder, queries, top_k=3)
    assert len(results) == 5 and results[3] == []
    assert results[0] == results[2] and results[1] == results[4]
    assert results[0] == retrieve(store, embedder, "pterygium", top_k=3)
    assert results[1][0].chunk_id == "disease_ontology:DOID:0001816:0"


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)
    assert [i for i, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_knowledge_query_prefers_findings_then_organ_then_modality():
    assert knowledge_query("MRI", ["brain"], ["glioma"], "enhancing_tumor") == "enhancing tumor, glioma, brain, MRI"
    assert knowledge_query("CT", ["liver"], [], "liver tumor") == "liver tumor, CT"  # organ named in the finding
    assert knowledge_query("X-ray", ["chest"], ["No Finding"], None) == "chest, X-ray"
    assert knowledge_query("CT", ["Lung", "lung"], ["Nodule", "nodule"], "nodule") == "nodule, Lung, CT"
    assert knowledge_query("", [], [], None) == ""


def test_evaluate_retrieval_on_small_index(store, embedder):
    result = evaluate_retrieval(store, embedder, n=40, seed=0, top_k=5)
    assert result["n"] == 40 and result["k"] == 5
    assert result["recall_at_k"] >= 0.9, result["misses"]
    assert result["recall_at_k"] == 1 - len(result["misses"]) / 40
    assert evaluate_retrieval(store, embedder, n=40, seed=0)["misses"] == result["misses"]  # deterministic
    synonyms = evaluate_retrieval(store, embedder, n=40, seed=0, query_field="synonym")
    assert 0 < synonyms["n"] <= 40


# ------------------------------------------------------------------ chroma server (url) mode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_chroma_server_url_mode(tmp_path, embedder, corpus_chunks):
    chroma_cli = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    server = subprocess.Popen(
        [chroma_cli, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kb = KnowledgeStore(persist_dir=str(tmp_path / "keyword"), url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                kb.client().heartbeat()
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        chunks = corpus_chunks["disease_ontology"][:12]
        assert build_index(kb, embedder, "disease_ontology", chunks)["n_embedded"] == 12
        assert build_index(kb, embedder, "disease_ontology", chunks[:10])["n_deleted"] == 2
        assert kb.counts() == {"disease_ontology": {"dense": 10, "keyword": 10}}
        assert not (tmp_path / "keyword" / "chroma").exists()  # dense side lives on the server
        assert retrieve(kb, embedder, "pterygium", top_k=3)[0].chunk_id == PTERYGIUM
    finally:
        server.terminate()
        server.wait(timeout=30)
