"""Writes a release's files under ``releases/<name>/`` in storage, keeping a SHA-256 of each.

`finish` writes ``checksums.sha256`` (``sha256sum -c`` format, every file of the release),
removes files a previous build left that this build did not write, and on local storage sets
every file of the release to mode 644 and every folder to 755 (the storage writes through
temporary files, which are created 600, and the process umask may be anything): a release is
meant to be read by others. S3 objects have no modes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from medtrinity_resources.storage import MedtrinityStorage

CHECKSUMS_FILE = "checksums.sha256"
FILE_MODE = 0o644
DIR_MODE = 0o755


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def release_prefix(name: str) -> str:
    """Storage prefix of a release."""
    return f"releases/{name}/"


def checksum_lines(files: dict[str, str]) -> str:
    """``<sha256>  <path>`` lines, sorted by path."""
    return "".join(f"{files[p]}  {p}\n" for p in sorted(files))


def parse_checksum_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, path = line.partition("  ")
        if len(digest) != 64 or not path:
            raise ValueError(f"not a sha256sum line: {line!r}")
        out[path] = digest
    return out


class ReleaseWriter:
    """Files of one release, written through the storage resource (local or S3)."""

    def __init__(self, storage: MedtrinityStorage, prefix: str) -> None:
        self.storage = storage
        self.prefix = prefix.rstrip("/") + "/"
        self.files: dict[str, str] = {}  # relative path -> sha256
        self.sizes: dict[str, int] = {}

    def key(self, rel: str) -> str:
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"release paths are relative and stay inside the release: {rel!r}")
        return self.prefix + rel

    def uri(self, rel: str = "") -> str:
        return self.storage.uri(self.prefix + rel)

    def write(self, rel: str, data: bytes) -> str:
        """Write one file; returns its sha256."""
        self.storage.write_bytes(self.key(rel), data)
        digest = sha256_hex(data)
        self.files[rel] = digest
        self.sizes[rel] = len(data)
        return digest

    def write_text(self, rel: str, text: str) -> str:
        return self.write(rel, text.encode("utf-8"))

    def write_json(self, rel: str, obj: Any, indent: int | None = 1) -> str:
        return self.write_text(rel, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False) + "\n")

    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    def finish(self, keep_prefixes: tuple[str, ...] = ()) -> list[str]:
        """Write the checksums file, delete stale files; returns the deleted relative paths."""
        self.write_text(CHECKSUMS_FILE, checksum_lines({p: d for p, d in self.files.items() if p != CHECKSUMS_FILE}))
        stale = []
        for key in self.storage.list_keys(self.prefix):
            rel = key[len(self.prefix) :]
            if rel not in self.files and not rel.startswith(keep_prefixes):
                self.storage.delete(key)
                stale.append(rel)
        self.set_modes()
        return stale

    def set_modes(self) -> None:
        """Files 644, folders 755 under the release (local storage only)."""
        if str(self.storage.root).startswith("s3://"):
            return
        set_tree_modes(Path(self.storage.uri(self.prefix)))


def set_tree_modes(root: Path) -> None:
    """chmod every file under `root` to `FILE_MODE` and every folder (root included) to `DIR_MODE`."""
    if not root.is_dir():
        return
    os.chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for names, mode in ((dirnames, DIR_MODE), (filenames, FILE_MODE)):
            for name in names:
                try:
                    os.chmod(os.path.join(dirpath, name), mode)
                except FileNotFoundError:  # a temporary file renamed away meanwhile
                    pass
