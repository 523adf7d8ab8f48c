"""The UI's view of caption problems: a real Dagster run of one demo source's dataset job with the
judge pointed at a real local HTTP judge that disagrees with every caption. Every triplet is kept,
quarantined with judge_disagrees, carries the judge's score, and the triplets asset check
`caption_problems` reports the count per problem code."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import DagsterInstance

from chat_servers import ChatServer
from helpers import run_job

SOURCE = "usgra_nerve_ultrasound"


@pytest.mark.slow
def test_caption_problems_check_counts_per_code(tmp_path):
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.defs.resources import build_resources, storage_from_settings
    from medtrinity_assets.definitions import build_definitions
    from medtrinity_assets.partitions import dataset_shard_key
    from medtrinity_resources.judge import CaptionJudgeResource

    judge = ChatServer(json.dumps({"score": 0.2, "reason": "the test judge disagrees with every caption"}))
    resources = build_resources()
    resources["caption_judge"] = CaptionJudgeResource(endpoint_url=judge.url, model_name="test-judge", sample_percent=100)
    defs = build_definitions(resources)
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(home))
    try:
        from medtrinity_assets.stages.sources import build_source_manifest

        shard = sorted(set(build_source_manifest(CATALOG, CATALOG.source(SOURCE))["shard"].to_list()))[0]
        outcome = run_job(defs, "dataset_shard_job", instance, dataset_shard_key(SOURCE, shard))
    finally:
        judge.close()
        instance.dispose()
    assert outcome.success
    checks = {ev.check_name: ev for ev in outcome.result.get_asset_check_evaluations()}
    check = checks["caption_problems"]
    assert check.passed  # nothing dropped, every quarantined record has its reasons
    storage = storage_from_settings()
    keys = [k for k in storage.list_keys("manifests/triplets/") if SOURCE in k]
    triplets = pl.concat([storage.read_parquet(k) for k in keys], how="vertical_relaxed")
    assert triplets.height > 0 and len(judge.prompts) >= triplets.height
    assert triplets["quarantined"].all()
    assert all("judge_disagrees" in r for r in triplets["quarantine_reasons"].to_list())
    assert (triplets["caption_confidence"] == 0.2).all()
    assert check.metadata["problem:judge_disagrees"].value == triplets.height
    assert "judge_disagrees" in check.metadata["per_problem_code"].value
    quality = checks["caption_quality"].metadata  # the issue 11 figures in the UI, size-matched distinct-2 included
    assert 0.0 < quality["distinct_2"].value <= quality["distinct_2_at_50"].value <= 1.0
    assert quality["captions"].value == str(triplets.height)
