"""Storage resource on a local root and on a real HTTP S3 endpoint (moto server on 127.0.0.1, through
dagster-aws's S3Resource); manifests' root-relative references survive moving the root."""

from __future__ import annotations

import os

import polars as pl
import pytest

from dagster_aws.s3 import S3Resource

from medtrinity_resources.storage import MedtrinityStorage, StorageError


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"http://{host}:{port}"
    server.stop()


def _exercise(storage: MedtrinityStorage) -> None:
    ref = storage.write_bytes("images/a/b.png", b"\x89PNG-bytes")
    assert ref == "images/a/b.png"  # what manifests hold: relative to the root
    assert storage.read_bytes("images/a/b.png") == b"\x89PNG-bytes"
    assert storage.read_uri(ref) == b"\x89PNG-bytes"
    assert storage.read_uri(storage.uri(ref)) == b"\x89PNG-bytes"  # absolute under this root, as older manifests hold
    assert storage.exists("images/a/b.png") and not storage.exists("images/a/c.png")
    df = pl.DataFrame({"x": [1, 2, 3], "s": ["a", "b", None]})
    storage.write_parquet("manifests/t/p.parquet", df)
    assert storage.read_parquet("manifests/t/p.parquet").equals(df)
    storage.write_bytes("images/a/b.png", b"second")  # overwrite is whole
    assert storage.read_bytes("images/a/b.png") == b"second"
    assert storage.list_keys("images/") == ["images/a/b.png"]
    with pytest.raises(StorageError):
        storage.read_bytes("nope/missing.bin")
    storage.delete("images/a/b.png")
    assert not storage.exists("images/a/b.png")


def test_local_storage(tmp_path):
    storage = MedtrinityStorage(root=str(tmp_path / "root"))
    _exercise(storage)
    # no temp files left behind by atomic writes
    assert not [p for p in (tmp_path / "root").rglob("*") if p.name.endswith(".tmp")]
    with pytest.raises(StorageError, match="escapes"):
        storage.write_bytes("../outside.bin", b"x")


def test_s3_storage_over_http(s3_endpoint):
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="mt-test")
    storage = MedtrinityStorage(root="s3://mt-test/prefix", s3=S3Resource(endpoint_url=s3_endpoint, region_name="us-east-1"))
    _exercise(storage)
    assert storage.uri("x/y.png") == "s3://mt-test/prefix/x/y.png"
    with pytest.raises(StorageError, match="outside this storage root"):
        storage.read_uri("s3://other-bucket/prefix/images/a/b.png")
    with pytest.raises(StorageError, match="needs an S3 resource"):
        MedtrinityStorage(root="s3://mt-test/prefix").read_bytes("x")


def test_moved_root_reads_relative_references_and_names_old_absolute_ones(tmp_path):
    old = MedtrinityStorage(root=str(tmp_path / "old"))
    ref = old.write_bytes("images/src/x.png", b"png")
    legacy = old.uri(ref)  # an absolute path, as manifests held before
    (tmp_path / "old").rename(tmp_path / "moved")
    moved = MedtrinityStorage(root=str(tmp_path / "moved"))
    assert moved.read_uri(ref) == b"png" and moved.key_of(ref) == "images/src/x.png"
    with pytest.raises(StorageError, match=r"absolute location outside this storage root .*rebuild them"):
        moved.read_uri(legacy)


def test_rejects_are_gathered_per_source(tmp_path):
    from medtrinity_assets.defs.rejects import per_source_tables
    from medtrinity_assets.schema import REJECTS_SCHEMA
    from medtrinity_assets.stages.common import rejects_key
    from medtrinity_assets.stages.rejects import collect_rejects, rejects_by_source

    storage = MedtrinityStorage(root=str(tmp_path))
    row = {"dataset": "a", "shard": "01", "stage": "images", "item_id": "x", "source_file": "x.png", "reason": "corrupt_file", "detail": "truncated"}
    storage.write_parquet(rejects_key("images", "a", "01"), pl.DataFrame([row], schema=REJECTS_SCHEMA))
    storage.write_parquet(rejects_key("images", "b", "00"), pl.DataFrame(schema=REJECTS_SCHEMA))  # a clean shard
    storage.write_parquet(rejects_key("images", "gone", "00"), pl.DataFrame([{**row, "dataset": "gone"}], schema=REJECTS_SCHEMA))
    rejects = collect_rejects(storage, ["a", "b"], ["00", "01"])
    assert rejects.height == 1 and rejects_by_source(rejects, ["a", "b"]) == {"a": 1, "b": 0}  # sources no longer in the catalog left out
    table = per_source_tables(rejects)
    assert table.startswith("### a (1)") and "corrupt_file" in table and "### b" not in table
    assert collect_rejects(MedtrinityStorage(root=str(tmp_path / "empty")), ["a"], ["00"]).is_empty()
