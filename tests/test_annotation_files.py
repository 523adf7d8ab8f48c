"""Box lists (CSV/JSON) and COCO polygons declared in the catalog become ground-truth ROIs whose
boxes equal the annotated ones, through the same ingestion (orientation, resize) as masks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from medtrinity_assets.catalog import list_items, load_catalog
from medtrinity_assets.ingest import load_item
from medtrinity_assets.rois import rois_from_masks


def _source(tmp_path: Path, masks: list[dict], max_side: int = 1024):
    root = tmp_path / "src"
    (root / "images").mkdir(parents=True)
    for name, (w, h) in {"a.png": (200, 100), "b.png": (120, 120), "c.png": (64, 64)}.items():
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w), dtype=np.uint8)).save(root / "images" / name)
    entry = {
        "name": "annotated",
        "title": "annotated",
        "modality": "X-ray",
        "organs": ["chest"],
        "root": str(root),
        "layout": {"adapter": "files", "images": "images/*.png", "masks": masks},
        "licence": "CC0",
        "redistributable": True,
        "ingest": {"output": {"max_side": max_side}},
    }
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump({"sources": [entry]}))
    cat = load_catalog(tmp_path / "catalog.yaml")
    return root, cat, {i.item_id: i for i in list_items(cat, cat.sources[0])}


def _boxes(item, cat):
    sl = load_item(item, cat.sources[0].ingest)
    assert len(sl) == 1
    return sorted((r.label, r.bbox) for r in rois_from_masks(sl[0], min_area_px=1))


def test_csv_box_list(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    with open(root / "boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "label", "x0", "y0", "x1", "y1"])
        w.writerow(["a.png", "nodule", 10, 20, 40, 50])
        w.writerow(["a.png", "effusion", 100, 10, 190, 90])
        w.writerow(["b.png", "nodule", 0, 0, 30, 30])
    _, cat, items = _source(tmp_path, [{"pattern": "boxes.csv", "convention": "boxes", "box_format": "xyxy"}])
    assert _boxes(items["images/a.png"], cat) == [("effusion", (100, 10, 189, 89)), ("nodule", (10, 20, 39, 49))]
    assert _boxes(items["images/b.png"], cat) == [("nodule", (0, 0, 29, 29))]
    assert load_item(items["images/c.png"], cat.sources[0].ingest)[0].masks == []  # no rows: no ROI, image kept


def test_coco_polygons_follow_resize(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    coco = {
        "images": [{"id": 1, "file_name": "images/a.png", "width": 200, "height": 100}],
        "categories": [{"id": 7, "name": "lesion"}],
        "annotations": [{"image_id": 1, "category_id": 7, "segmentation": [[20, 20, 60, 20, 60, 60, 20, 60]]}],
    }
    (root / "coco.json").write_text(json.dumps(coco))
    _, cat, items = _source(tmp_path, [{"pattern": "coco.json", "convention": "polygons"}], max_side=100)
    sl = load_item(items["images/a.png"], cat.sources[0].ingest)[0]
    assert sl.pixels.shape[:2] == (50, 100)  # downscaled by 2
    [(label, box)] = sorted((r.label, r.bbox) for r in rois_from_masks(sl, min_area_px=1))
    assert label == "lesion" and box == (10, 10, 29, 29)


def test_bad_box_list_is_a_reject(tmp_path):
    from medtrinity_assets.records import RejectError

    root = tmp_path / "src"
    root.mkdir()
    (root / "boxes.json").write_text(json.dumps([{"label": "x", "bbox": [0, 0, 5, 5]}]))  # no image field
    _, cat, items = _source(tmp_path, [{"pattern": "boxes.json", "convention": "boxes", "box_format": "xywh"}])
    with pytest.raises(RejectError) as exc:
        load_item(items["images/a.png"], cat.sources[0].ingest)
    assert exc.value.reason == "unsupported_mask"
