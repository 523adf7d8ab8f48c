"""The source catalog: validation errors name source and field; adapters list items; shards are stable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from medtrinity_assets.catalog import CatalogError, item_from_json, item_to_json, list_items, load_catalog, shard_of

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "data" / "catalog.yaml"


def _write(tmp_path: Path, raw: dict) -> Path:
    p = tmp_path / "catalog.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _raw() -> dict:
    return yaml.safe_load(CATALOG.read_text())


def test_bundled_catalog_lists_every_demo_source():
    cat = load_catalog(CATALOG)
    assert set(cat.names) >= {"sam_med2d_demo", "totalsegmentator_example", "torchxrayvision_cxr", "stardist_dsb2018", "pydicom_dicom"}
    counts = {s.name: len(list_items(cat, s)) for s in cat.sources}
    assert counts["sam_med2d_demo"] == 5
    assert counts["pydicom_dicom"] == 9
    assert counts["totalsegmentator_example"] == 2
    sam = {i.item_id: i for i in list_items(cat, cat.source("sam_med2d_demo"))}
    assert len(sam["images/s0114_111.png"].masks) == 15
    assert sam["images/amos_0507_31.png"].masks == () and sam["images/amos_0507_31.png"].modality == "MRI"
    labels = {m.label for m in sam["images/s0619_32.png"].masks}
    assert "hip left" in labels and "gluteus maximus right" in labels
    # every demo source keeps its README with origin and licence
    for s in cat.sources:
        assert (Path(cat.source_root(s)) / "README.txt").is_file(), s.name


def test_missing_field_names_source_and_field(tmp_path):
    raw = _raw()
    del raw["sources"][1]["licence"]
    with pytest.raises(CatalogError, match=r"source 'totalsegmentator_example': field 'licence'"):
        load_catalog(_write(tmp_path, raw))


def test_wrong_field_names_source_and_field(tmp_path):
    raw = _raw()
    raw["sources"][0]["ingest"] = {"intensity": {"mode": "bogus"}}
    with pytest.raises(CatalogError, match=r"source 'sam_med2d_demo': field 'ingest.intensity.mode'"):
        load_catalog(_write(tmp_path, raw))
    raw = _raw()
    raw["sources"][2]["layout"]["masks"][0]["convention"] = "polygonal"
    with pytest.raises(CatalogError, match=r"source 'torchxrayvision_cxr': field 'layout.files.masks.0.convention'"):
        load_catalog(_write(tmp_path, raw))
    raw = _raw()
    raw["sources"][1]["rois"]["components"] = "pieces"
    with pytest.raises(CatalogError, match=r"source 'totalsegmentator_example': field 'rois.components'"):
        load_catalog(_write(tmp_path, raw))
    raw = _raw()
    raw["sources"][3]["unknown_key"] = 1
    with pytest.raises(CatalogError, match=r"source 'stardist_dsb2018': field 'unknown_key'"):
        load_catalog(_write(tmp_path, raw))


def test_duplicate_names_and_missing_root(tmp_path):
    raw = _raw()
    raw["sources"].append(dict(raw["sources"][0]))
    with pytest.raises(CatalogError, match="duplicate source name 'sam_med2d_demo'"):
        load_catalog(_write(tmp_path, raw))
    raw = _raw()
    raw["sources"] = [raw["sources"][0] | {"root": str(tmp_path / "nowhere")}]
    cat = load_catalog(_write(tmp_path, raw))
    with pytest.raises(CatalogError, match=r"source 'sam_med2d_demo': field 'root'"):
        list_items(cat, cat.sources[0])


def test_adding_a_source_of_a_supported_layout_needs_no_code(tmp_path):
    src = tmp_path / "my_cxr"
    (src / "images").mkdir(parents=True)
    for f in (REPO / "data/sources/torchxrayvision_cxr/images").iterdir():
        shutil.copy(f, src / "images" / f.name)
    raw = {
        "shard_count": 8,
        "sources": [
            {
                "name": "my_cxr",
                "title": "my chest X-rays",
                "modality": "X-ray",
                "organs": ["chest"],
                "root": str(src),
                "layout": {"adapter": "files", "images": "images/*.png"},
                "licence": "CC BY 4.0",
                "redistributable": True,
            }
        ],
    }
    cat = load_catalog(_write(tmp_path, raw))
    items = list_items(cat, cat.sources[0])
    assert len(items) == 5 and all(i.modality == "X-ray" for i in items)
    assert all(i.shard in cat.shard_keys for i in items)
    assert item_from_json(item_to_json(items[0])) == items[0]


def test_shards_are_stable_under_additions():
    before = {f"img{i}": shard_of("src", f"img{i}", 16) for i in range(200)}
    after = {f"img{i}": shard_of("src", f"img{i}", 16) for i in range(400)}
    assert all(after[k] == v for k, v in before.items())
    assert len(set(after.values())) == 16  # the hash spreads items over all buckets


def test_templates_with_glob_characters_and_recursive_patterns(tmp_path):
    from PIL import Image

    root = tmp_path / "src"
    for rel in ("a/scan [1].png", "a/b/c/deep*.png", "masks/scan [1]_liver.png", "masks/deep*_spleen.png", "masks/scan 1_kidney.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), 255).save(root / rel, format="PNG")
    raw = {
        "sources": [
            {
                "name": "odd",
                "title": "odd names",
                "modality": "mr",
                "root": str(root),
                "layout": {
                    "adapter": "files",
                    "images": "a/**/*.png",
                    "masks": [{"pattern": "masks/{stem}_*.png", "convention": "binary", "label_regex": "^{stem}_(?P<label>.+)$"}],
                },
                "licence": "CC0",
                "redistributable": True,
            }
        ]
    }
    cat = load_catalog(_write(tmp_path, raw), check_files=True)
    items = {i.item_id: i for i in list_items(cat, cat.sources[0])}
    assert set(items) == {"a/scan [1].png", "a/b/c/deep*.png"}
    assert [m.label for m in items["a/scan [1].png"].masks] == ["liver"]  # '[1]' is literal, not a class
    assert [m.label for m in items["a/b/c/deep*.png"].masks] == ["spleen"]
    assert {i.modality for i in items.values()} == {"MRI"}  # a spelling of the vocabulary -> its canonical name
