"""Stratified seed sampling (stages/seed.py): every (source, modality, label) stratum is covered,
the floors and the size hold, and the subset is a function of the records and the settings only."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from medtrinity_assets.stages.seed import SeedSampling, allocate, build_seed_subset, candidate_records, seed_label, stratified_sample

# (dataset, modality, label) -> records: one large stratum, mid-sized ones and singletons
STRATA = {
    ("src_a", "CT", "liver"): 120,
    ("src_a", "CT", "spleen"): 30,
    ("src_a", "MRI", "liver"): 9,
    ("src_b", "X-ray", "none"): 40,
    ("src_b", "X-ray", "pneumonia"): 3,
    ("src_b", "X-ray", "lungs"): 1,
    ("src_c", "Ultrasound", "nerve"): 2,
}


def candidates(strata: dict = STRATA) -> pl.DataFrame:
    rows = []
    for (dataset, modality, label), n in strata.items():
        for i in range(n):
            image = f"{dataset}/{modality}/{label}/{i:04d}.png"
            rows.append({"roi_id": f"{image}#000", "image_id": image, "dataset": dataset, "shard": f"{i % 3:02d}", "modality": modality, "seed_label": label})
    return pl.DataFrame(rows)


def per_stratum(subset: pl.DataFrame) -> dict[tuple[str, str, str], int]:
    return {tuple(k): n for *k, n in subset.group_by("dataset", "modality", "seed_label").len().iter_rows()}


def test_every_stratum_is_covered_with_its_floor_and_the_size_holds():
    sampling = SeedSampling(size=40, min_per_stratum=4, seed=3)
    sample = stratified_sample(candidates(), sampling)
    got = per_stratum(sample.subset)
    assert set(got) == set(STRATA)
    for key, n in STRATA.items():
        assert min(4, n) <= got[key] <= n, key
    assert sample.subset.height == 40 and sample.available == sum(STRATA.values()) and not sample.size_raised
    # the budget beyond the floors goes to the strata with records left, in proportion
    assert got[("src_a", "CT", "liver")] > got[("src_b", "X-ray", "none")] > got[("src_a", "CT", "spleen")] > got[("src_a", "MRI", "liver")]
    assert sample.subset["roi_id"].n_unique() == 40
    assert sample.strata.filter(pl.col("selected") == 0).is_empty()
    assert json.loads(sample.subset["sampling"][0]) == {"size": 40, "min_per_stratum": 4, "seed": 3}
    sizes = dict(zip(sample.subset["roi_id"].to_list(), sample.subset["stratum_size"].to_list()))
    assert all(sizes[r["roi_id"]] == STRATA[(r["dataset"], r["modality"], r["seed_label"])] for r in sample.subset.iter_rows(named=True))


def test_the_subset_is_deterministic_whatever_the_order_records_arrive_in():
    sampling = SeedSampling(size=25, min_per_stratum=2, seed=11)
    base = stratified_sample(candidates(), sampling).subset
    rows = candidates().to_dicts()
    random.Random(5).shuffle(rows)
    shuffled = stratified_sample(pl.DataFrame(rows), sampling).subset
    assert shuffled.equals(base) and stratified_sample(candidates(), sampling).subset.equals(base)
    # another seed draws other records with the same allocation
    other = stratified_sample(candidates(), SeedSampling(size=25, min_per_stratum=2, seed=12)).subset
    assert per_stratum(other) == per_stratum(base) and set(other["roi_id"]) != set(base["roi_id"])
    # new records in one stratum never reshuffle the others: each pick is a prefix of one fixed order
    more = dict(STRATA)
    more[("src_a", "CT", "liver")] += 30
    grown = stratified_sample(candidates(more), sampling).subset
    assert per_stratum(grown) != per_stratum(base)  # the allocation moved
    for key in [k for k in STRATA if k != ("src_a", "CT", "liver")]:
        pick = lambda df: set(df.filter((pl.col("dataset") == key[0]) & (pl.col("modality") == key[1]) & (pl.col("seed_label") == key[2]))["roi_id"])  # noqa: E731
        small, large = sorted((pick(grown), pick(base)), key=len)
        assert small <= large, key


def test_coverage_wins_over_size_and_small_populations_are_taken_whole():
    sample = stratified_sample(candidates(), SeedSampling(size=5, min_per_stratum=3, seed=0))
    assert sample.size_raised and set(per_stratum(sample.subset)) == set(STRATA)
    assert sample.subset.height == sum(min(3, n) for n in STRATA.values())
    whole = stratified_sample(candidates(), SeedSampling(size=10_000, min_per_stratum=1))
    assert whole.subset.height == sum(STRATA.values())
    assert allocate({("a",): 10, ("b",): 10, ("c",): 1}, size=7, min_per_stratum=1) == {("a",): 3, ("b",): 3, ("c",): 1}
    with pytest.raises(ValueError, match="size >= 1"):
        SeedSampling(size=0)


def test_stratum_label_of_a_record():
    assert seed_label("liver", ["cirrhosis"]) == "liver"
    assert seed_label(None, ["pneumonia", "effusion", ""]) == "effusion,pneumonia"
    assert seed_label("", []) == "none"


def test_candidates_read_from_storage_leave_out_phi_quarantined_images(tmp_path):
    from medtrinity_resources.storage import MedtrinityStorage

    storage = MedtrinityStorage(root=str(tmp_path))
    for dataset, shard, n in (("src_a", "00", 4), ("src_a", "01", 3), ("src_b", "00", 2)):
        ids = [f"{dataset}/{shard}/{i}.png" for i in range(n)]
        storage.write_parquet(
            f"manifests/coarse_captions/{dataset}/{shard}.parquet",
            pl.DataFrame(
                {
                    "roi_id": [f"{i}#000" for i in ids],
                    "image_id": ids,
                    "dataset": [dataset] * n,
                    "shard": [shard] * n,
                    "modality": ["CT"] * n,
                    "roi_label": ["liver"] * (n - 1) + [None],
                    "image_labels": [[]] * (n - 1) + [["cyst"]],
                }
            ),
        )
        storage.write_parquet(
            f"manifests/images/{dataset}/{shard}.parquet",
            pl.DataFrame({"image_id": ids, "phi_action": ["quarantined"] + ["no_text"] * (n - 1)}),
        )
    found = candidate_records(storage)
    assert found.height == 9 - 3  # the first image of each partition has burned-in PHI
    assert set(found["seed_label"]) == {"liver", "cyst"}
    assert candidate_records(storage, datasets=["src_b"]).height == 1
    sample = build_seed_subset(storage, SeedSampling(size=4, min_per_stratum=1))
    assert set(per_stratum(sample.subset)) == {("src_a", "CT", "liver"), ("src_a", "CT", "cyst"), ("src_b", "CT", "cyst")}
    assert sample.subset.height == 4
