"""Release definitions: the bundled file loads; a wrong field fails naming the release and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medtrinity_assets.catalog import load_catalog
from medtrinity_assets.export.config import ReleaseConfigError, load_releases, parse_releases

REPO = Path(__file__).resolve().parents[1]
RELEASES = REPO / "data" / "releases.yaml"


def _raw() -> dict:
    return yaml.safe_load(RELEASES.read_text())


def test_bundled_releases_load_and_name_catalog_sources():
    releases = load_releases(RELEASES)
    assert {"demo", "demo_internal"} <= set(releases)
    demo = releases["demo"]
    assert demo.redistributable_only and demo.decontamination == "drop"
    assert demo.splits.as_dict() == {"train": 0.8, "validation": 0.1, "test": 0.1}
    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    assert demo.source_names(catalog) == catalog.names
    assert not releases["demo_internal"].redistributable_only


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["releases"][0]["splits"].update(train=0.9), r"release 'demo': field 'splits': .*must be 1"),
        (lambda r: r["releases"][0].update(decontamination="delete"), r"release 'demo': field 'decontamination'"),
        (lambda r: r["releases"][0]["group_patterns"].update(sam_med2d_demo=r"^images/(.+)_\d+"), r"release 'demo': field 'group_patterns'.*named group"),
        (lambda r: r["releases"][0].update(phash_max_distance=99), r"release 'demo': field 'phash_max_distance'"),
        (lambda r: r["releases"][1].update(name="demo"), r"duplicate release name 'demo'"),
        (lambda r: r["releases"][0].update(colour="blue"), r"release 'demo': field 'colour'"),
        (lambda r: r["releases"][0].update(sources=[]), r"release 'demo': field 'sources'"),
    ],
)
def test_wrong_field_names_release_and_field(change, message):
    raw = _raw()
    change(raw)
    with pytest.raises(ReleaseConfigError, match=message):
        parse_releases(raw)


def test_unknown_source_and_missing_benchmark_folder_are_named(tmp_path):
    raw = _raw()
    raw["releases"][0]["sources"] = ["sam_med2d_demo", "no_such_source"]
    raw["releases"][0]["benchmark_dirs"] = {"vqa_rad": "benchmarks/vqa_rad"}
    release = parse_releases(raw, base_dir=str(tmp_path))["demo"]
    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    with pytest.raises(ReleaseConfigError, match=r"release 'demo': field 'sources': unknown source\(s\) no_such_source"):
        release.source_names(catalog)
    with pytest.raises(ReleaseConfigError, match=r"field 'benchmark_dirs.vqa_rad': no such folder"):
        release.benchmark_paths()
    (tmp_path / "benchmarks" / "vqa_rad").mkdir(parents=True)
    assert release.benchmark_paths() == {"vqa_rad": (tmp_path / "benchmarks" / "vqa_rad").resolve()}
    extra = release.with_benchmarks({"slake": str(tmp_path)})
    assert set(extra.benchmark_dirs) == {"vqa_rad", "slake"}


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ReleaseConfigError, match="releases file not found"):
        load_releases(tmp_path / "nope.yaml")
    bad = tmp_path / "releases.yaml"
    bad.write_text("releases: [\n")
    with pytest.raises(ReleaseConfigError, match="not valid YAML"):
        load_releases(bad)


def test_split_named_validation_and_older_val_key_still_read():
    from medtrinity_assets.export.config import SPLITS

    assert SPLITS == ("train", "validation", "test")
    old = parse_releases({"releases": [{"name": "old_keys", "splits": {"train": 0.7, "val": 0.2, "test": 0.1}}]})["old_keys"]
    assert old.splits.as_dict() == {"train": 0.7, "validation": 0.2, "test": 0.1}
    with pytest.raises(ReleaseConfigError, match="must be 1"):
        parse_releases({"releases": [{"name": "bad_sum", "splits": {"train": 0.7, "validation": 0.2, "test": 0.2}}]})
