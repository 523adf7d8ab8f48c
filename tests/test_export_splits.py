"""Splits: grouped by patient, else pattern group, else source file; deterministic, salted, disjoint."""

from __future__ import annotations

import polars as pl

from medtrinity_assets.export.splits import add_splits, assign_split, groups_in_several_splits, split_group_key, split_summary

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
SAM_PATTERN = r"^images/(?P<group>.+)_\d+\.png$"


def _records() -> pl.DataFrame:
    rows = []
    # 300 volumes sliced into 4 records each (same source file), no patient id
    for v in range(300):
        for s in range(4):
            rows.append({"dataset": "vol", "source_file": f"ct_{v:03d}.nii.gz", "patient_hash": "", "image_id": f"vol/ct_{v:03d}@axial{s:04d}"})
    # 2D slices of 50 volumes exported one file per slice
    for v in range(50):
        for s in (10, 11, 12):
            rows.append({"dataset": "sam", "source_file": f"images/amos_{v:04d}_{s}.png", "patient_hash": "", "image_id": f"sam/images/amos_{v:04d}_{s}"})
    # 40 patients with 3 DICOM files each, spread over two sources
    for p in range(40):
        for f in range(3):
            rows.append({"dataset": "dcm" if f < 2 else "dcm2", "source_file": f"p{p}_{f}.dcm", "patient_hash": f"hash{p:03d}", "image_id": f"dcm/p{p}_{f}"})
    return pl.DataFrame(rows)


def test_group_key_prefers_patient_then_pattern_then_file():
    assert split_group_key("sam", "images/amos_0507_31.png", "abc", SAM_PATTERN) == "patient:abc"
    assert split_group_key("sam", "images/amos_0507_31.png", "", SAM_PATTERN) == "sam:group:amos_0507"
    assert split_group_key("sam", "other/file.png", "", SAM_PATTERN) == "sam:file:other/file.png"
    assert split_group_key("vol", "ct.nii.gz", None) == "vol:file:ct.nii.gz"


def test_no_group_spans_two_splits_and_assignment_is_deterministic():
    df = add_splits(_records(), FRACTIONS, "salt-a", {"sam": SAM_PATTERN})
    assert groups_in_several_splits(df) == []
    # independently of split_group: every patient, volume file and slice-volume sits in one split
    assert df.filter(pl.col("patient_hash") != "").group_by("patient_hash").agg(pl.col("split").n_unique())["split"].max() == 1
    assert df.group_by("source_file").agg(pl.col("split").n_unique())["split"].max() == 1
    sam = df.filter(pl.col("dataset") == "sam").with_columns(pl.col("source_file").str.extract(r"amos_(\d+)_").alias("vol"))
    assert sam.group_by("vol").agg(pl.col("split").n_unique())["split"].max() == 1
    again = add_splits(_records().reverse(), FRACTIONS, "salt-a", {"sam": SAM_PATTERN}).reverse()
    assert again["split"].to_list() == df["split"].to_list()
    # a different salt reshuffles groups
    other = add_splits(_records(), FRACTIONS, "salt-b", {"sam": SAM_PATTERN})
    assert other["split"].to_list() != df["split"].to_list()


def test_fractions_are_respected_over_many_groups_and_zero_fraction_is_empty():
    keys = [f"g{i}" for i in range(5000)]
    got = [assign_split(k, FRACTIONS, "s") for k in keys]
    share = {s: got.count(s) / len(keys) for s in FRACTIONS}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["validation"] - 0.1) < 0.02 and abs(share["test"] - 0.1) < 0.02
    no_test = [assign_split(k, {"train": 0.9, "validation": 0.1, "test": 0.0}, "s") for k in keys]
    assert "test" not in no_test
    assert set(assign_split(k, {"train": 0.0, "validation": 0.0, "test": 1.0}, "s") for k in keys[:100]) == {"test"}


def test_adding_records_never_moves_existing_groups():
    df = add_splits(_records(), FRACTIONS, "salt-a", {"sam": SAM_PATTERN})
    more = pl.concat([_records(), pl.DataFrame([{"dataset": "vol", "source_file": "new.nii.gz", "patient_hash": "", "image_id": "vol/new"}])])
    df2 = add_splits(more, FRACTIONS, "salt-a", {"sam": SAM_PATTERN})
    assert df2.head(df.height)["split"].to_list() == df["split"].to_list()


def test_summary_counts_groups_and_a_mixed_group_is_reported():
    df = add_splits(_records(), FRACTIONS, "salt-a", {"sam": SAM_PATTERN})
    summary = split_summary(df)
    assert sum(v["records"] for v in summary.values()) == df.height
    assert sum(v["groups"] for v in summary.values()) == df["split_group"].n_unique() == 300 + 50 + 40
    broken = df.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("test" if df["split"][0] != "test" else "train")).otherwise(pl.col("split")).alias("split"))
    assert groups_in_several_splits(broken) == [df["split_group"][0]]
