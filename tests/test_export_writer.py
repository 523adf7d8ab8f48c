"""Release writer: checksums file, stale-file removal, and world-readable modes under any umask."""

from __future__ import annotations

import os
import stat

import pytest

from medtrinity_assets.export.writer import CHECKSUMS_FILE, ReleaseWriter, parse_checksum_lines, sha256_hex
from medtrinity_resources.storage import MedtrinityStorage


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o000])
def test_release_files_644_and_folders_755_whatever_the_umask(tmp_path, umask):
    storage = MedtrinityStorage(root=str(tmp_path / "store"))
    old = os.umask(umask)
    try:
        writer = ReleaseWriter(storage, "releases/r/")
        writer.write("data/full/train.parquet", b"pq")
        writer.write_text("webdataset/train-00000.tar", "tar")
        writer.write_json("release.json", {"a": 1})
        storage.write_bytes("releases/r/stale.txt", b"old")  # a previous build's file
        stale = writer.finish()
    finally:
        os.umask(old)
    root = tmp_path / "store" / "releases" / "r"
    assert stale == ["stale.txt"] and not (root / "stale.txt").exists()
    files = [p for p in root.rglob("*") if p.is_file()]
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert {p.relative_to(root).as_posix() for p in files} == {"data/full/train.parquet", "webdataset/train-00000.tar", "release.json", CHECKSUMS_FILE}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o644)}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs} == {oct(0o755)}
    listed = parse_checksum_lines((root / CHECKSUMS_FILE).read_text())
    assert listed == {p: sha256_hex((root / p).read_bytes()) for p in ("data/full/train.parquet", "webdataset/train-00000.tar", "release.json")}
