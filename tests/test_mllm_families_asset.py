"""Every VLM family through the production caption_batches asset: a tiny random model of each family
is configured as a user would (MEDTRINITY_MLLM_BACKEND/MODEL/BATCH_SIZE/DTYPE read into the resource as
`EnvVar`s by the code location's resource set), and the project's dataset_shard_job materialises
caption_batches for one partition on a real Dagster instance. The upstream assets of the partition
are materialised once for the module, so each family pays only for its captions."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from helpers import QUIET_CONSOLE
from tiny_vlms import FAMILIES

# imported here, before any test sets variables: its module-level `defs` (used by other tests) is built
# from the session's environment, never from the variables the tests below set for their own definitions
from medtrinity_assets.definitions import build_definitions

SOURCE = "torchxrayvision_cxr"
UPSTREAM = ["source_manifest", "images", "roi_masks", "coarse_captions", "retrieved_knowledge"]


def shard_job(env: dict[str, str], monkeypatch):
    """The code location's dataset_shard_job with the resource set built from `env`, as `dagster dev` would."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_definitions().resolve_job_def("dataset_shard_job")


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.partitions import dataset_shard_key

    root = tmp_path_factory.mktemp("families_asset")
    (root / "dagster_home").mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(root / "dagster_home"))
    key = dataset_shard_key(SOURCE, CATALOG.shard_keys[0])
    env = {"MEDTRINITY_STORAGE": str(root / "storage"), "MEDTRINITY_MLLM_BACKEND": "grounded_composer"}
    with pytest.MonkeyPatch.context() as mp:
        job = shard_job(env, mp)
        result = job.execute_in_process(
            instance=instance, partition_key=key, run_config=QUIET_CONSOLE, asset_selection=[AssetKey(a) for a in UPSTREAM]
        )
    assert result.success
    coarse = result.output_for_node("coarse_captions")
    yield instance, key, env, coarse, root
    instance.dispose()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_captions_a_partition_through_the_asset(family, shard, monkeypatch):
    from medtrinity_resources.mllm_backends.hf import load_model

    instance, key, env, coarse, root = shard
    spec = FAMILIES[family]
    model_dir = spec.build(root / "models" / family)
    job = shard_job(
        {**env, "MEDTRINITY_MLLM_BACKEND": "transformers", "MEDTRINITY_MLLM_MODEL": str(model_dir),
         "MEDTRINITY_MLLM_BATCH_SIZE": "4", "MEDTRINITY_MLLM_MAX_NEW_TOKENS": "8", "MEDTRINITY_MLLM_DTYPE": "bfloat16"},
        monkeypatch,
    )
    start = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, partition_key=key, run_config=QUIET_CONSOLE, asset_selection=[AssetKey("caption_batches")]
    )
    print(f"{family}: caption_batches in {time.perf_counter() - start:.1f}s")
    assert result.success  # the shard completes
    captions: pl.DataFrame = result.output_for_node("caption_batches")

    # every record of the partition got an answer from this model, with its identity as provenance
    assert captions.height == coarse.height >= 4
    assert sorted(captions["roi_id"].to_list()) == sorted(coarse["roi_id"].to_list())
    assert (captions["backend"] == "transformers").all() and (captions["model"] == model_dir.name).all()
    assert captions["model_version"].n_unique() == 1 and captions["model_version"][0]
    assert (captions["model_calls"] >= 1).all() and (captions["tokens_out"] > 0).all() and (captions["tokens_in"] > 0).all()
    assert not captions["problems"].list.eval(pl.element().str.starts_with("backend_error")).list.any().any()
    settings = json.loads(captions["generation_settings"][0])
    assert settings["revision"] == captions["model_version"][0] and settings["dtype"] == "bfloat16"

    # batch size and dtype from the environment reached the model: generate ran on 4 prompts at once, in bfloat16
    loaded = load_model(str(model_dir), "cpu", "bfloat16")
    assert type(loaded.model).__name__ == spec.architecture and str(loaded.model.dtype) == "torch.bfloat16"
    assert max(loaded.batch_sizes) == 4

    # a random model's text: every record kept and flagged with reasons; the asset check reports them
    assert (captions["problems"].list.len() > 0).all()
    reasons = set(captions["problems"].explode().to_list())
    print(f"{family}: {captions.height} records, generate batches {loaded.batch_sizes}, reasons {sorted(reasons)}")
    assert reasons - {"truncated"}  # the checks judged the text itself, not only its length
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "captions_pass_checks")
    assert not check.passed and check.metadata["flagged"].value == captions.height
    assert sum(check.metadata["problems"].value.values()) >= captions.height
