"""Storage resource: where images, masks, overlays, manifests and exports live.

`root` is a local directory (default) or ``s3://bucket/prefix``; S3 goes through dagster-aws's
`S3Resource` (`s3`), whose boto3 client retries transient failures (HTTP 500/502/503/504,
throttling, dropped connections) in botocore's "standard" mode with exponential backoff; its
`max_attempts` is botocore's retry count (0 = a single attempt). A custom `endpoint_url` on the
S3 resource (MinIO, moto) is addressed path-style. Keys are always '/'-separated and relative to
the root.

Manifests hold *root-relative* references: `write_bytes` returns the key (``images/…``) and
`read_uri` accepts it, so a storage folder can be moved or synced to S3 and read from there.
Absolute URIs written by older versions are read while they lie under this root; outside it
they fail with a message saying how to rebuild them.

Writes are atomic from a reader's point of view: locally a temp file is renamed into place; on S3
an object only becomes visible under its key once the PUT completes, and a large object is
uploaded in parts that become visible together when the multipart upload completes (a failed
multipart upload is aborted, so no part is ever readable).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import polars as pl
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr


class StorageError(RuntimeError):
    pass


class _LocalBackend:
    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents and p != self.root:
            raise StorageError(f"key escapes the storage root: {key}")
        return p

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def upload_file(self, key: str, local_path: str) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, open(local_path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no object at {self.uri(key)}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        base = self.path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        out = []
        for p in base.rglob("*"):
            if p.is_file() and not p.name.endswith(".tmp"):
                out.append(p.relative_to(self.root).as_posix())
        return sorted(out)

    def delete(self, key: str) -> None:
        p = self.path(key)
        if p.is_file():
            p.unlink()


class _S3Backend:
    def __init__(self, root: str, client: Any, multipart_threshold: int, multipart_chunksize: int) -> None:
        rest = root[len("s3://") :]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise StorageError(f"s3 root needs a bucket: {root}")
        self.prefix = prefix.strip("/")
        self.client = client
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.key(key)}"

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold, multipart_chunksize=self.multipart_chunksize, use_threads=False
        )

    def _upload(self, key: str, fileobj: Any) -> None:
        """Multipart upload through s3transfer: parts are retried one by one; on failure the
        upload is aborted (AbortMultipartUpload), so nothing appears under the key."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_fileobj(fileobj, self.bucket, self.key(key), Config=self._transfer_config())
        except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
            raise StorageError(f"upload to {self.uri(key)} failed: {exc}") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        if len(data) >= self.multipart_threshold:
            self._upload(key, io.BytesIO(data))
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.key(key), Body=data)

    def upload_file(self, key: str, local_path: str) -> None:
        with open(local_path, "rb") as fh:
            self._upload(key, fh)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise StorageError(f"no object at {self.uri(key)}") from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(key))
            return True
        except Exception as exc:  # botocore ClientError 404
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list_keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        full = self.key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            out.extend(o["Key"][strip:] for o in page.get("Contents", []))
        return sorted(out)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(key))


class MedtrinityStorage(ConfigurableResource):
    """Local directory or S3 prefix holding every binary artefact and manifest."""

    root: str = "output/dataset"
    s3: Optional[S3Resource] = None  # dagster-aws S3 resource; required when root is s3://
    multipart_threshold_mb: int = 64  # objects at least this large are uploaded in parts
    multipart_chunksize_mb: int = 16  # part size (S3's minimum is 5 MiB)

    _backend: Any = PrivateAttr(default=None)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def _get(self) -> _LocalBackend | _S3Backend:
        if self._backend is None:
            if self.is_s3:
                if self.s3 is None:
                    raise StorageError(f"storage root {self.root} needs an S3 resource (MEDTRINITY_DEPLOYMENT=s3 or gpu)")
                self._backend = _S3Backend(
                    self.root, self.s3.get_client(), self.multipart_threshold_mb << 20, self.multipart_chunksize_mb << 20
                )
            else:
                self._backend = _LocalBackend(self.root)
        return self._backend

    # -- bytes -------------------------------------------------------------------------
    def uri(self, key: str) -> str:
        """Where `key` is now (a path or s3:// URI): for people to read, not for manifests."""
        return self._get().uri(key)

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write `data` under `key`; returns the root-relative reference to store (the key)."""
        self._get().write_bytes(key, data)
        return key

    def upload_file(self, key: str, local_path: str) -> str:
        """Copy a local file (e.g. a large export shard) under `key` without reading it into memory;
        atomic like `write_bytes` (temp file + rename locally, multipart upload on S3). Returns the key."""
        self._get().upload_file(key, local_path)
        return key

    def read_bytes(self, key: str) -> bytes:
        return self._get().read_bytes(key)

    def read_uri(self, uri: str) -> bytes:
        """Read an object by the reference a manifest holds (a root-relative key, or an absolute
        URI under this root as older versions wrote)."""
        return self.read_bytes(self.key_of(uri))

    def key_of(self, uri: str) -> str:
        """The key of a manifest reference; an absolute URI must lie under this root."""
        b = self._get()
        if isinstance(b, _S3Backend):
            prefix = f"s3://{b.bucket}/" + (f"{b.prefix}/" if b.prefix else "")
            absolute = "://" in uri
        else:
            prefix = str(b.root) + os.sep
            absolute = "://" in uri or os.path.isabs(uri)
        if not absolute:
            return uri.replace(os.sep, "/")
        if uri.startswith(prefix):
            return uri[len(prefix) :].replace(os.sep, "/")
        raise StorageError(
            f"{uri} is an absolute location outside this storage root {self.root}: manifests written before "
            "references became root-relative cannot move; rebuild them here (`medtrinity demo` re-runs the "
            "partitions whose code changed) or point MEDTRINITY_STORAGE at the folder they were written in"
        )

    def exists(self, key: str) -> bool:
        return self._get().exists(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        return self._get().list_keys(prefix)

    def delete(self, key: str) -> None:
        self._get().delete(key)

    # -- tables ------------------------------------------------------------------------
    def write_parquet(self, key: str, df: pl.DataFrame) -> str:
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True)
        return self.write_bytes(key, buf.getvalue())

    def read_parquet(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read_bytes(key)))

    @property
    def description(self) -> str:
        return f"{'S3' if self.is_s3 else 'local'} storage at {self.root}"
