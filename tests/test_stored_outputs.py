"""What `medtrinity demo` and `medtrinity backfill` count as missing beside Dagster's staleness:
a FRESH partition whose output storage no longer holds (medtrinity_assets.stored). Real local
storage and a real knowledge store (embedded chromadb + keyword index)."""

from __future__ import annotations

import polars as pl

from medtrinity_assets.stored import StoredOutputs, with_storage
from medtrinity_resources.knowledge_store import KnowledgeStore
from medtrinity_resources.storage import MedtrinityStorage


def test_manifests_releases_and_corpora_are_found_where_the_assets_write_them(tmp_path):
    storage = MedtrinityStorage(root=str(tmp_path / "dataset"))
    stored = StoredOutputs(storage, tmp_path / "knowledge")
    frame = pl.DataFrame({"x": [1]})
    assert not stored.holds("triplets", "src|00")
    storage.write_parquet("manifests/triplets/src/00.parquet", frame)
    assert stored.holds("triplets", "src|00") and not stored.holds("triplets", "src|01") and not stored.holds("images", "src|00")
    assert not stored.holds("image_duplicates", None)
    storage.write_parquet("manifests/image_duplicates/all.parquet", frame)
    assert stored.holds("image_duplicates", None)
    assert not stored.holds("dataset_release", "demo")
    storage.write_bytes("releases/demo/checksums.sha256", b"")
    assert stored.holds("dataset_release", "demo") and not stored.holds("dataset_release", "other")
    # knowledge: the manifest alone is not enough, the store must hold the corpus
    storage.write_parquet("manifests/knowledge_index/medquad.parquet", frame)
    assert stored.corpora() == set() and not stored.holds("knowledge_index", "medquad")
    KnowledgeStore(persist_dir=str(tmp_path / "knowledge")).ensure_corpus("medquad", "static-test", 8)
    assert stored.corpora() == {"medquad"} and stored.holds("knowledge_index", "medquad")
    assert not stored.holds("knowledge_index", "pubmedqa")


def test_only_fresh_partitions_lacking_their_output_turn_missing():
    status = {"a|00": "FRESH", "a|01": "FRESH", "a|02": "STALE", "a|03": "MISSING"}
    held = {("triplets", "a|00"), ("triplets", "a|02")}
    out = with_storage("triplets", status, lambda asset, p: (asset, p) in held)
    assert out == {"a|00": "FRESH", "a|01": "MISSING", "a|02": "STALE", "a|03": "MISSING"}
    assert with_storage("triplets", status, None) == status
