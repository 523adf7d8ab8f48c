"""Grouped instances (catalog `rois.instances: group`): one record for the 125 nuclei of the
bundled stardist image, its typed count and size distribution checked against an independent
computation from the instance map, and its caption checked for stating them truthfully."""

from __future__ import annotations

import math
import tempfile

import numpy as np
import tifffile

from demo_records import REPO, shard_frames
from medtrinity_assets.captions import check_caption, compose_caption
from medtrinity_assets.records import ROI
from medtrinity_assets.rois.groups import group_instances
from medtrinity_assets.stages.captions import facts_for

SOURCES = REPO / "data" / "sources"


def _instances():
    instance_map = tifffile.imread(SOURCES / "stardist_dsb2018" / "mask2d.tif")
    ids = [int(i) for i in np.unique(instance_map) if i != 0]
    return instance_map, {i: instance_map == i for i in ids}


def test_group_policy_unites_instances_exactly():
    instance_map, masks = _instances()
    h, w = instance_map.shape
    rois = []
    for i, m in masks.items():
        ys, xs = np.nonzero(m)
        rois.append(ROI("nucleus", "ground_truth", (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())), m, None, i))
    rois.append(ROI("cell", "ground_truth", (0, 0, 1, 1), np.pad(np.ones((2, 2), bool), ((0, h - 2), (0, w - 2))), None, 1))
    out, groups = group_instances(rois, w, h, None, group_above=20)
    assert [r.label for r in out] == ["nucleus", "cell"] and list(groups) == [0]  # the lone cell stays itself
    group, g = out[0], groups[0]
    assert g.count == len(masks) and group.instance is None
    assert np.array_equal(group.mask, instance_map > 0)  # exact union, nothing added or lost
    diameters = sorted(math.sqrt(4 * int(m.sum()) / math.pi) for m in masks.values())
    assert g.diameters_px[0] == diameters[0] and g.diameters_px[-1] == diameters[-1]
    largest = max(masks.values(), key=lambda m: int(m.sum()))
    ys, xs = np.nonzero(largest)
    cy, cx = (ys.min() + ys.max() + 1) / 2 / h, (xs.min() + xs.max() + 1) / 2 / w
    assert g.largest_cell == (min(int(cy * 5), 4), min(int(cx * 5), 4))
    # below the threshold nothing is grouped
    same, none = group_instances(rois, w, h, None, group_above=len(rois))
    assert len(same) == len(rois) and none == {}


def test_stardist_catalog_groups_nuclei_into_one_record_with_true_caption():
    with tempfile.TemporaryDirectory() as tmp:
        images, rois, coarse, _, _ = shard_frames("stardist_dsb2018", tmp)
    nuclei = rois.filter(rois["label"] == "nucleus")
    assert nuclei.height == 1  # 125 instances -> one record
    row = nuclei.row(0, named=True)
    _, masks = _instances()
    kept = [m for m in masks.values() if int(m.sum()) >= 16]  # the source's min_area_px
    diameters = sorted(math.sqrt(4 * int(m.sum()) / math.pi) for m in kept)
    assert row["m_instance_count"] == row["m_label_count"] == len(kept)
    assert row["area_px"] == sum(int(m.sum()) for m in kept)
    assert abs(row["m_instance_diameter_median_px"] - float(np.median(diameters))) < 0.01
    assert abs(row["m_instance_diameter_min_px"] - diameters[0]) < 0.01 and abs(row["m_instance_diameter_max_px"] - diameters[-1]) < 0.01
    image = next(r for r in images.iter_rows(named=True) if r["image_id"] == row["image_id"])
    cap = next(r for r in coarse.iter_rows(named=True) if r["roi_id"] == row["roi_id"])
    facts = facts_for(image, row, cap, None, ["nucleus"])
    for seed in range(12):
        text, sections = compose_caption(facts, seed=seed)
        assert check_caption(text, sections, facts) == [], text
        assert f"{len(kept)} nuclei" in text and "one of" not in text
        assert f"{diameters[-1]:.0f}" in text and "pixels" in text and "separate parts" not in text
    text, sections = compose_caption(facts, seed=0)
    assert "count_contradiction" in check_caption(text.replace(f"{len(kept)} nuclei", "40 nuclei"), sections, facts)
    wrong = text.replace(f"{diameters[-1]:.0f} ", f"{3 * diameters[-1]:.0f} ", 1)
    assert wrong != text and "size_contradiction" in check_caption(wrong, sections, facts)


def test_prompt_describes_a_group_as_a_group():
    from medtrinity_assets.captions.facts_text import measurement_lines, position_text

    with tempfile.TemporaryDirectory() as tmp:
        images, rois, coarse, _, _ = shard_frames("stardist_dsb2018", tmp)
    row = rois.filter(rois["label"] == "nucleus").row(0, named=True)
    image = next(r for r in images.iter_rows(named=True) if r["image_id"] == row["image_id"])
    cap = next(r for r in coarse.iter_rows(named=True) if r["roi_id"] == row["roi_id"])
    facts = facts_for(image, row, cap, None, ["nucleus"])
    text = position_text(facts)
    assert f"groups all {row['m_instance_count']} instances" in text and "one of" not in text
    assert f"{row['m_instance_diameter_max_px']:.1f} pixels" in text
    assert not any("separate parts" in line for line in measurement_lines(facts.measurements))
