"""Code versions hash the data files beside the code an asset runs: editing caption wording
(captions/data, a folder without __init__.py) or the position grid (grid/grid.yaml) in a copy of
the packages moves the versions of the assets that read them, and only those."""

from __future__ import annotations

import shutil

import pytest

from medtrinity_assets.defs import versions

CACHED = (versions.module_path, versions.project_imports, versions.module_closure, versions.file_digest, versions.data_files)


def _clear() -> None:
    for f in CACHED:
        f.cache_clear()


@pytest.fixture
def packages_copy(tmp_path, monkeypatch):
    """A copy of both project packages that `versions` reads instead of the checkout."""
    for package in versions.PROJECT_PACKAGES:
        shutil.copytree(versions.PACKAGE_PARENT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(versions, "PACKAGE_PARENT", tmp_path)
    _clear()
    yield tmp_path
    _clear()


def _by_asset() -> dict[str, str]:
    from medtrinity_assets.definitions import ASSETS, build_resources, versioned

    _clear()
    return {spec.key.to_user_string(): spec.code_version for a in versioned(ASSETS, build_resources()) for spec in getattr(a, "specs", [])}


def _changed_by_edit(root, relative: str) -> set[str]:
    before = _by_asset()
    path = root / relative
    original = path.read_text(encoding="utf-8")
    path.write_text(original + "\n# edited\n", encoding="utf-8")
    try:
        after = _by_asset()
    finally:
        path.write_text(original, encoding="utf-8")
    assert _by_asset() == before  # restored content, restored versions
    return {name for name in before if before[name] != after[name]}


def test_the_copy_versions_like_the_checkout(packages_copy, monkeypatch):
    in_copy = _by_asset()
    monkeypatch.undo()
    assert _by_asset() == in_copy  # names are relative: the location of the packages does not count


def test_editing_caption_wording_moves_caption_assets_only(packages_copy):
    changed = _changed_by_edit(packages_copy, "medtrinity_assets/captions/data/wording.yaml")
    assert changed >= {"coarse_captions", "caption_batches", "seed_captions", "triplets", "vqa_pairs", "dataset_release"}
    assert not changed & {"source_manifest", "images", "roi_masks", "knowledge_index", "retrieved_knowledge"}


def test_editing_the_grid_moves_position_readers_only(packages_copy):
    changed = _changed_by_edit(packages_copy, "medtrinity_assets/grid/grid.yaml")
    assert changed >= {"roi_masks", "coarse_captions", "caption_batches", "triplets", "vqa_pairs", "dataset_release"}
    assert not changed & {"source_manifest", "knowledge_index", "retrieved_knowledge", "source_rejects"}


def test_editing_the_caption_checks_lexicon_moves_caption_batches(packages_copy):
    changed = _changed_by_edit(packages_copy, "medtrinity_assets/captions/checks/lexicon.yaml")
    assert {"caption_batches", "seed_captions"} <= changed and "roi_masks" not in changed
