"""The whole asset graph on S3: moto's S3 server on 127.0.0.1 over real HTTP, behind a proxy that
injects transient failures (HTTP 503 SlowDown) which the storage resource's retries must absorb.

The same partitions are materialised on local storage (`local` resource set) and on S3 (`s3`
resource set: dagster-aws's S3Resource, botocore's retries) by the `medtrinity` code location in a
subprocess, configured only by environment; their manifests must be identical (references are
relative to the storage root; any absolute root left in a column is normalised), and every binary
object byte-identical.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import polars as pl
import pytest

from dagster_aws.s3 import S3Resource

from medtrinity_resources.storage import MedtrinityStorage, StorageError

REPO = Path(__file__).resolve().parents[1]
BUCKET = "medtrinity-e2e"
PREFIX = "runs/dataset"
PARTITIONS = [("sam_med2d_demo", "00"), ("pydicom_dicom", "00")]
from medtrinity_assets.defs.names import DATASET_ASSETS
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>injected</RequestId></Error>"
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "expect"}

FaultRule = Callable[[str, str, int], bool]  # (method, path with query, ordinal of this method) -> fail?


class FlakyS3Proxy:
    """HTTP proxy on 127.0.0.1 in front of an S3 endpoint; answers 503 SlowDown where `rule` says so."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.rule: FaultRule = lambda method, path, n: False
        self.counts: dict[str, int] = {}
        self.injected: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def arm(self, rule: FaultRule) -> None:
        with self.lock:
            self.rule, self.counts, self.injected = rule, {}, []

    def _decide(self, method: str, path: str) -> bool:
        with self.lock:
            n = self.counts.get(method, 0) + 1
            self.counts[method] = n
            fail = self.rule(method, path, n)
            if fail:
                self.injected.append((method, path))
            return fail

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and `Expect: 100-continue` answered by the base class

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                if proxy._decide(self.command, self.path):
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(SLOW_DOWN)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(SLOW_DOWN)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                            conn.putheader(k, v)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        return Handler

    def start(self) -> "FlakyS3Proxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto S3 server on 127.0.0.1 with the bucket created, and a flaky proxy in front of it."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    proxy = FlakyS3Proxy(endpoint).start()
    yield endpoint, proxy
    proxy.stop()
    server.stop()


DRIVER = """
import sys
from dagster import DagsterInstance
from medtrinity_assets.services import ensure_dagster_home
from medtrinity_assets.definitions import defs
from medtrinity_assets.partitions import dataset_shard_key

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ensure_dagster_home()
instance = DagsterInstance.get()
pairs = [p.split("|") for p in sys.argv[1:]]
for source, shard in pairs:
    r = defs.resolve_job_def("dataset_shard_job").execute_in_process(instance=instance, partition_key=dataset_shard_key(source, shard), run_config=QUIET_CONSOLE, raise_on_error=False)
    print("dataset_shard_job", source, shard, r.success, flush=True)
    assert r.success, (source, shard)
"""


def materialise(home: Path, storage_env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the code location's jobs for PARTITIONS in a fresh process configured by environment only."""
    env = {
        **os.environ,
        "MEDTRINITY_HOME": str(home),
        "MEDTRINITY_KNOWLEDGE_DIR": str(home / "knowledge"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        **storage_env,
    }
    if "MEDTRINITY_STORAGE" not in storage_env:
        env.pop("MEDTRINITY_STORAGE", None)
        env.pop("MEDTRINITY_S3_ENDPOINT_URL", None)
        env.pop("MEDTRINITY_DEPLOYMENT", None)
    args = [f"{s}|{k}" for s, k in PARTITIONS]
    return subprocess.run([sys.executable, "-c", DRIVER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def manifest_keys() -> list[str]:
    return [f"manifests/{a}/{s}/{k}.parquet" for a in DATASET_ASSETS for s, k in PARTITIONS]


def s3_client(endpoint: str, attempts: int = 6):
    """dagster-aws's client (botocore standard retries: `max_attempts` retries after the first try)."""
    return S3Resource(endpoint_url=endpoint, region_name="us-east-1", max_attempts=attempts - 1).get_client()


def s3_storage(root: str, endpoint: str, attempts: int = 6, **kwargs) -> MedtrinityStorage:
    return MedtrinityStorage(root=root, s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1", max_attempts=attempts - 1), **kwargs)


def normalised(df: pl.DataFrame, root_uri: str) -> pl.DataFrame:
    """Replace the storage root in every string column (URIs, JSON) by a placeholder."""
    root = root_uri.rstrip("/") + "/"

    def fix(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
        if dtype == pl.String:
            return col.str.replace_all(root, "<root>/", literal=True)
        if isinstance(dtype, pl.List) and dtype.inner == pl.String:
            return col.list.eval(pl.element().str.replace_all(root, "<root>/", literal=True))
        return col

    return df.with_columns([fix(pl.col(name), dtype).alias(name) for name, dtype in df.schema.items()])


@pytest.fixture(scope="module")
def local_and_s3(s3, tmp_path_factory):
    endpoint, proxy = s3
    local_home = tmp_path_factory.mktemp("local_home")
    s3_home = tmp_path_factory.mktemp("s3_home")
    local = materialise(local_home, {})
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-4000:]

    # Transient failures while the graph writes and reads: the 1st and 2nd PUT (the same object
    # twice in a row), then every 12th PUT, and every 25th GET.
    proxy.arm(lambda method, path, n: (method == "PUT" and (n <= 2 or n % 12 == 0)) or (method == "GET" and n % 25 == 0))
    remote = materialise(
        s3_home, {"MEDTRINITY_DEPLOYMENT": "s3", "MEDTRINITY_STORAGE": f"s3://{BUCKET}/{PREFIX}", "MEDTRINITY_S3_ENDPOINT_URL": proxy.url}
    )
    injected, counts = list(proxy.injected), dict(proxy.counts)
    proxy.arm(lambda method, path, n: False)
    assert remote.returncode == 0, remote.stdout[-2000:] + remote.stderr[-4000:]
    local_storage = MedtrinityStorage(root=str(local_home / "dataset"))
    return local_storage, s3_storage(f"s3://{BUCKET}/{PREFIX}", endpoint), injected, counts


def test_transient_s3_failures_were_injected_and_retried(local_and_s3):
    _, s3_storage, injected, counts = local_and_s3
    puts = [path for method, path in injected if method == "PUT"]
    assert len(puts) >= 3 and counts["PUT"] > len(puts), (counts, injected)
    assert any(method == "GET" for method, _ in injected), counts
    # every object whose PUT was refused is there after all (its retry succeeded)
    for path in puts:
        key = path.split("?")[0].removeprefix(f"/{BUCKET}/{PREFIX}/")
        assert s3_storage.exists(key), key


def test_same_partitions_give_identical_manifests_on_local_and_s3(local_and_s3):
    local, remote, _, _ = local_and_s3
    keys = manifest_keys()
    compared = 0
    for key in keys:
        a = normalised(local.read_parquet(key), local.uri(""))
        b = normalised(remote.read_parquet(key), remote.uri(""))
        assert a.schema == b.schema, key
        assert a.equals(b), (key, a.head(3), b.head(3))
        compared += a.height
    assert compared > 0
    triplets = pl.concat([remote.read_parquet(k) for k in keys if k.startswith("manifests/triplets/")])
    assert triplets.height > 0 and set(triplets["dataset"]) == {s for s, _ in PARTITIONS}
    assert triplets["image_uri"].str.starts_with("images/").all()  # relative to the storage root
    assert remote.read_uri(triplets["image_uri"][0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert remote.read_uri(remote.uri(triplets["image_uri"][0])) == remote.read_uri(triplets["image_uri"][0])


def test_same_binary_objects_on_local_and_s3(local_and_s3):
    local, remote, _, _ = local_and_s3
    local_keys = [k for k in local.list_keys("") if not k.startswith("manifests/")]
    assert local_keys == [k for k in remote.list_keys("") if not k.startswith("manifests/")]
    assert any(k.startswith("images/") for k in local_keys) and any(k.startswith("overlays/") or "overlay" in k for k in local_keys)
    for key in local_keys:
        if key.endswith(".parquet"):  # rejects tables hold URIs/paths: compare contents
            assert normalised(local.read_parquet(key), local.uri("")).equals(normalised(remote.read_parquet(key), remote.uri(""))), key
        else:
            assert local.read_bytes(key) == remote.read_bytes(key), key


def test_injected_failure_is_a_real_failure_without_retries(s3):
    """The proxy's 503 is what a client sees: with a single attempt the write fails."""
    _, proxy = s3
    once = s3_storage(f"s3://{BUCKET}/noretry", proxy.url, attempts=1)
    retried = s3_storage(f"s3://{BUCKET}/noretry", proxy.url, attempts=3)
    proxy.arm(lambda method, path, n: method == "PUT" and n == 1)
    with pytest.raises(Exception, match="SlowDown"):
        once.write_bytes("a.bin", b"a")
    assert not once.exists("a.bin")
    proxy.arm(lambda method, path, n: method == "PUT" and n == 1)
    retried.write_bytes("a.bin", b"a")
    assert retried.read_bytes("a.bin") == b"a" and len(proxy.injected) == 1
    proxy.arm(lambda method, path, n: False)


def test_multipart_upload_retries_parts_and_aborts_on_failure(s3, tmp_path):
    """A large object goes up in parts; a refused part is retried; an upload that keeps failing is
    aborted, leaving the previous object under the key intact and no pending upload."""
    endpoint, proxy = s3
    storage = s3_storage(f"s3://{BUCKET}/multipart", proxy.url, attempts=3, multipart_threshold_mb=5, multipart_chunksize_mb=5)
    big = tmp_path / "export.bin"
    payload = os.urandom(12 << 20)  # 3 parts: 5 + 5 + 2 MiB
    big.write_bytes(payload)

    proxy.arm(lambda method, path, n: method == "PUT" and "partNumber=2" in path and n <= 3)
    ref = storage.upload_file("exports/shard-000.bin", str(big))
    assert ref == "exports/shard-000.bin" and storage.uri(ref) == f"s3://{BUCKET}/multipart/exports/shard-000.bin"
    assert any("partNumber=2" in p for _, p in proxy.injected)
    assert storage.read_bytes("exports/shard-000.bin") == payload
    assert storage.write_bytes("exports/bytes.bin", payload[: 6 << 20]) and storage.read_bytes("exports/bytes.bin") == payload[: 6 << 20]

    # a part that is refused on every attempt: the upload fails and is aborted
    proxy.arm(lambda method, path, n: method == "PUT" and "partNumber=3" in path)
    big.write_bytes(os.urandom(12 << 20))
    with pytest.raises(StorageError, match="upload to s3://"):
        storage.upload_file("exports/shard-000.bin", str(big))
    proxy.arm(lambda method, path, n: False)
    assert storage.read_bytes("exports/shard-000.bin") == payload  # the old object, whole
    pending = s3_client(endpoint).list_multipart_uploads(Bucket=BUCKET, Prefix="multipart/")
    assert not pending.get("Uploads"), pending.get("Uploads")


def test_local_upload_file_is_atomic(tmp_path):
    storage = MedtrinityStorage(root=str(tmp_path / "root"))
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * (3 << 20))
    ref = storage.upload_file("exports/a.bin", str(src))
    assert Path(storage.uri(ref)).read_bytes() == src.read_bytes()
    assert not [p for p in (tmp_path / "root").rglob("*.tmp")]
    with pytest.raises(FileNotFoundError):
        storage.upload_file("exports/b.bin", str(tmp_path / "missing.bin"))
    assert not storage.exists("exports/b.bin") and not [p for p in (tmp_path / "root").rglob("*.tmp")]
