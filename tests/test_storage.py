"""Storage resource on a local root and on a real HTTP S3 endpoint (moto server on 127.0.0.1)."""

from __future__ import annotations

import os

import polars as pl
import pytest

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
    uri = storage.write_bytes("images/a/b.png", b"\x89PNG-bytes")
    assert storage.read_bytes("images/a/b.png") == b"\x89PNG-bytes"
    assert storage.read_uri(uri) == b"\x89PNG-bytes"
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
    storage = MedtrinityStorage(root="s3://mt-test/prefix", endpoint_url=s3_endpoint)
    _exercise(storage)
    assert storage.uri("x/y.png") == "s3://mt-test/prefix/x/y.png"
