"""Stage 1 of two-stage captioning through real Dagster runs: two demo sources are built with the
default (offline) captioner, then seed_finetune_job samples a stratified seed subset, has it
described by a strong served model (a real local OpenAI-compatible HTTP server behind the
`seed_mllm` resource) and exports the LLaVA conversation fine-tuning set.

The served seed model answers each prompt with the text written for the record whose
caption_batches prompt hash the prompt has (and refuses the `lungs` records), so an answer exists
only when the seed prompt is exactly the captioner's prompt."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import DagsterInstance

from chat_servers import ChatServer
from helpers import run_job

SOURCES = ("usgra_nerve_ultrasound", "torchxrayvision_cxr")
SEED_MODEL = "strong-seed-vlm"
REFUSED_LABEL = "lungs"
REFUSAL = "I'm sorry, I cannot help with describing this medical image."
RETRY_MARK = "\n\nYour previous answer could not be used because"
SAMPLING = {"size": 10, "min_per_stratum": 2, "seed": 7}


def manifests(storage, asset: str) -> pl.DataFrame:
    keys = [k for k in storage.list_keys(f"manifests/{asset}/") if k.split("/")[2] in SOURCES]
    return pl.concat([storage.read_parquet(k) for k in sorted(keys)], how="vertical_relaxed")


class SeedModel:
    """Answers of the served seed model: the sectioned text for the record whose prompt it is."""

    def __init__(self, captions: pl.DataFrame) -> None:
        from medtrinity_assets.captions import format_sections
        from medtrinity_assets.captions.sections import SECTION_KEYS

        self.by_hash: dict[str, str] = {}
        self.refused: set[str] = set()
        for r in captions.iter_rows(named=True):
            text = format_sections({k: r[f"section_{k}"] for k in SECTION_KEYS}, r["caption"])
            self.by_hash[r["prompt_hash"]] = text
        self.unknown: list[str] = []

    def refuse(self, prompt_hashes: set[str]) -> None:
        self.refused |= prompt_hashes

    def __call__(self, prompt: str) -> str:
        from medtrinity_assets.captions import prompt_hash

        original = prompt_hash(prompt.split(RETRY_MARK)[0])
        if original in self.refused:
            return REFUSAL
        if original not in self.by_hash:
            self.unknown.append(prompt)
            return "no record has this prompt"
        return self.by_hash[original]


@pytest.mark.slow
def test_seed_subset_captioned_by_the_served_seed_model_and_exported_for_finetuning(tmp_path):
    from medtrinity_assets.captions import PROMPT_VERSION, prompt_hash
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.defs.resources import model_resources
    from medtrinity_assets.definitions import build_definitions
    from medtrinity_assets.export.finetune import FINETUNE_PREFIX, human_prompt, read_finetune_set
    from medtrinity_assets.partitions import dataset_shard_key
    from medtrinity_assets.stages.seed import seed_label
    from medtrinity_resources.mllm import MLLMResource
    from medtrinity_resources.storage import MedtrinityStorage

    storage = MedtrinityStorage(root=str(tmp_path / "storage"))
    resources = model_resources(storage, default_device="cpu")
    for home in ("dagster_home", "dagster_home_2"):
        (tmp_path / home).mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home"))
    try:
        defs = build_definitions(resources)
        for source in SOURCES:
            for shard in CATALOG.shard_keys:
                assert run_job(defs, "dataset_shard_job", instance, dataset_shard_key(source, shard)).success
        captioner = manifests(storage, "caption_batches")  # the default captioner (offline composer)
        coarse = manifests(storage, "coarse_captions")
        seed_model = SeedModel(captioner)
        lung_rois = set(coarse.filter(pl.col("roi_label") == REFUSED_LABEL)["roi_id"].to_list())
        assert len(lung_rois) >= 1
        seed_model.refuse(set(captioner.filter(pl.col("roi_id").is_in(list(lung_rois)))["prompt_hash"].to_list()))
        server = ChatServer(seed_model)
        try:
            resources["seed_mllm"] = MLLMResource(backend="openai", endpoint_url=server.url, model_name=SEED_MODEL, max_concurrency=4, transport_retries=0)
            defs = build_definitions(resources)
            run_config = {"ops": {"seed_subset": {"config": SAMPLING}}}
            first = run_job(defs, "seed_finetune_job", instance, run_config=run_config)
            calls_first = len(server.prompts)
            subset_first = storage.read_parquet("manifests/seed_subset/all.parquet")
            export_first = read_finetune_set(storage)
            # a rerun from a fresh Dagster instance with nothing changed: same subset, 0 model calls
            fresh = DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home_2"))
            try:
                second = run_job(defs, "seed_finetune_job", fresh, run_config=run_config)
            finally:
                fresh.dispose()
            calls_second = len(server.prompts) - calls_first
        finally:
            server.close()
    finally:
        instance.dispose()

    assert first.success and second.success
    checks = {ev.check_name: ev for ev in first.result.get_asset_check_evaluations()}

    # stratification: every (source, modality, label) stratum is in the seed, at least min(2, its size)
    strata = coarse.with_columns(
        pl.struct("roi_label", "image_labels").map_elements(lambda s: seed_label(s["roi_label"], s["image_labels"]), return_dtype=pl.Utf8).alias("seed_label")
    ).group_by("dataset", "modality", "seed_label").len()
    subset = storage.read_parquet("manifests/seed_subset/all.parquet")
    chosen = subset.group_by("dataset", "modality", "seed_label").len().rename({"len": "chosen"})
    joined = strata.join(chosen, on=["dataset", "modality", "seed_label"], how="left").with_columns(
        pl.min_horizontal("len", pl.lit(SAMPLING["min_per_stratum"])).alias("floor")
    )
    assert joined.height >= 4 and joined.filter(pl.col("chosen").is_null()).is_empty()
    assert (joined["chosen"] >= joined["floor"]).all()
    assert subset.height == max(SAMPLING["size"], int(joined["floor"].sum()))
    assert checks["seed_covers_every_stratum"].passed
    assert subset.equals(subset_first)  # deterministic: the rerun chose the same records

    # seed captions come from the served seed model, with the captioner's prompt
    seed = storage.read_parquet("manifests/seed_captions/all.parquet")
    assert sorted(seed["roi_id"].to_list()) == sorted(subset["roi_id"].to_list())
    assert (seed["backend"] == "openai").all() and (seed["model"] == SEED_MODEL).all()
    assert not seed_model.unknown, "the seed model was sent a prompt caption_batches never built"
    by_roi = dict(zip(captioner["roi_id"].to_list(), captioner["prompt_hash"].to_list()))
    assert all(by_roi[r] == h for r, h in zip(seed["roi_id"].to_list(), seed["prompt_hash"].to_list()))
    assert calls_first >= seed.height

    # failures quarantined with reasons, excluded from the export and counted
    refused = seed.filter(pl.col("roi_id").is_in(list(lung_rois)))
    assert refused.height >= 1 and refused["quarantined"].all()
    assert all(any(r.startswith("refusal") for r in reasons) for reasons in refused["quarantine_reasons"].to_list())
    kept = seed.filter(~pl.col("quarantined"))
    assert kept.height >= 4
    assert not checks["seed_captions_pass_checks"].passed
    export_ids = [e["id"] for e in export_first]
    assert sorted(export_ids) == sorted(kept["roi_id"].to_list())
    assert not set(export_ids) & set(refused["roi_id"].to_list())
    materialization = next(
        e.event_specific_data.materialization for e in first.result.get_asset_materialization_events() if e.asset_key.to_user_string() == "seed_finetune_set"
    )
    assert materialization.metadata["quarantined_excluded"].value == seed.height - kept.height
    assert materialization.metadata["conversations"].value == kept.height
    info = json.loads(storage.read_bytes(f"{FINETUNE_PREFIX}/export_info.json"))
    assert info["quarantined_excluded"] == seed.height - kept.height and info["prompt_version"] == PROMPT_VERSION
    assert sum(n for reason, n in info["excluded_per_reason"].items() if reason.startswith("refusal")) >= refused.height

    # the export: LLaVA conversations with the captioner's prompt, the seed model's answer, the overlay, provenance
    kept_rows = {r["roi_id"]: r for r in kept.iter_rows(named=True)}
    for entry in export_first:
        row = kept_rows[entry["id"]]
        human, gpt = entry["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<image>\n")
        assert gpt["from"] == "gpt"
        assert prompt_hash(human_prompt(entry)) == by_roi[entry["id"]]  # the captioner's prompt for that record
        assert human_prompt(entry) == row["prompt"]
        assert gpt["value"] == seed_model(human_prompt(entry))  # what the served seed model answered
        image = storage.read_bytes(f"{FINETUNE_PREFIX}/{entry['image']}")
        assert image == storage.read_uri(row["overlay_uri"])
        prov = entry["provenance"]
        assert prov["model"] == SEED_MODEL and prov["backend"] == "openai" and prov["prompt_version"] == PROMPT_VERSION
        assert prov["dataset"] in SOURCES and prov["roi_id"] == entry["id"]
        assert prov["licence"] == CATALOG.source(prov["dataset"]).licence
    assert checks["finetune_prompts_are_the_captioners"].passed

    # the rerun paid for nothing and wrote the same export
    assert calls_second == 0
    again = storage.read_parquet("manifests/seed_captions/all.parquet")
    assert again["cache_hit"].all() and (again["model_calls"] == 0).all()
    assert read_finetune_set(storage) == export_first


def test_the_seed_model_must_be_configured_and_the_default_captioner_is_untouched():
    from medtrinity_assets.defs.resources import build_resources
    from medtrinity_assets.stages.seed import SeedSampling, stratified_sample
    from medtrinity_assets.stages.seed_captions import SeedModelError, caption_seed
    from medtrinity_resources.mllm import MLLMResource

    seed = stratified_sample(
        pl.DataFrame({"roi_id": ["a#000"], "image_id": ["a"], "dataset": ["d"], "shard": ["00"], "modality": ["CT"], "seed_label": ["liver"]}),
        SeedSampling(size=1, min_per_stratum=1),
    ).subset
    resources = build_resources()
    assert resources["mllm"].backend == "grounded_composer" and resources["seed_mllm"].backend == "openai"
    with pytest.raises(SeedModelError, match="MEDTRINITY_SEED_MLLM_ENDPOINT"):
        caption_seed(seed, None, resources["seed_mllm"])
    with pytest.raises(SeedModelError, match="needs a model"):
        caption_seed(seed, None, MLLMResource())


def test_seed_code_versions_follow_the_seed_model_and_the_prompt(monkeypatch):
    from medtrinity_assets.defs import versions
    from medtrinity_assets.definitions import ASSETS, build_resources, versioned

    resources = build_resources()

    def by_asset() -> dict[str, str]:
        versions.module_closure.cache_clear()
        return {spec.key.to_user_string(): spec.code_version for a in versioned(ASSETS, resources) for spec in getattr(a, "specs", [])}

    before = by_asset()
    monkeypatch.setenv("MEDTRINITY_SEED_MLLM_MODEL", "another-strong-vlm")
    assert {n for n, v in by_asset().items() if v != before[n]} == {"seed_captions"}  # the default captioner keeps its version
    monkeypatch.delenv("MEDTRINITY_SEED_MLLM_MODEL")
    real = versions.file_digest
    monkeypatch.setattr(versions, "file_digest", lambda name: "edited" if name == "medtrinity_assets.captions.prompt" else real(name))
    moved = {n for n, v in by_asset().items() if v != before[n]}
    assert {"caption_batches", "seed_captions", "seed_finetune_set"} <= moved and "seed_subset" not in moved


def seed_caption_row(roi_id: str, overlay_uri: str, problems: list[str]) -> dict:
    from medtrinity_assets.schema import SECTION_COLUMNS

    return {
        "roi_id": roi_id, "image_id": roi_id.split("#")[0], "dataset": "src", "shard": "00",
        "caption": f"Description of {roi_id}.", **{c: f"{c} of {roi_id}" for c in SECTION_COLUMNS},
        "backend": "openai", "model": SEED_MODEL, "model_version": "", "prompt_version": "mt-prompt-v4", "prompt_hash": "0" * 16,
        "generation_settings": "{}", "attempts": 1, "problems": problems, "tokens_in": 1, "tokens_out": 1, "seconds": 0.0,
        "model_calls": 1, "cache_hit": False, "passage_ids": [], "concept_ids": [],
        "modality": "CT", "seed_label": "liver", "overlay_uri": overlay_uri, "prompt": f"Prompt for {roi_id}",
        "quarantined": bool(problems), "quarantine_reasons": problems,
    }


def test_export_counts_quarantined_records_and_replaces_an_earlier_export(tmp_path):
    from medtrinity_assets.export.finetune import FINETUNE_PREFIX, build_finetune_set, human_prompt, read_finetune_set
    from medtrinity_assets.schema import SEED_CAPTIONS_SCHEMA, conform
    from medtrinity_resources.storage import MedtrinityStorage

    storage = MedtrinityStorage(root=str(tmp_path))
    for name, data in (("a", b"png-a"), ("b", b"png-b"), ("c", b"png-a")):
        storage.write_bytes(f"overlays/{name}.png", data)
    rows = [
        seed_caption_row("a#000", "overlays/a.png", []),
        seed_caption_row("b#000", "overlays/b.png", []),
        seed_caption_row("c#000", "overlays/c.png", ["refusal", "too_short"]),
    ]
    first = build_finetune_set(storage, conform(rows, SEED_CAPTIONS_SCHEMA), {"src": ("CC-BY-4.0", True)})
    assert [e["id"] for e in first.entries] == ["a#000", "b#000"] and first.n_excluded == 1
    assert first.excluded == {"refusal": 1, "too_short": 1}
    entry = read_finetune_set(storage)[0]
    assert human_prompt(entry) == "Prompt for a#000" and entry["conversations"][0]["value"] == "<image>\nPrompt for a#000"
    assert entry["conversations"][1]["value"].splitlines()[-1] == "Description: Description of a#000."
    assert entry["provenance"]["licence"] == "CC-BY-4.0" and entry["provenance"]["redistributable"] is True
    images = sorted(storage.list_keys(f"{FINETUNE_PREFIX}/images/"))
    assert len(images) == 2 and storage.read_bytes(f"{FINETUNE_PREFIX}/{entry['image']}") == b"png-a"
    # a later export without record b leaves none of b's files behind
    second = build_finetune_set(storage, conform([rows[0], rows[2]], SEED_CAPTIONS_SCHEMA))
    assert [e["id"] for e in second.entries] == ["a#000"]
    assert storage.list_keys(f"{FINETUNE_PREFIX}/images/") == [f"{FINETUNE_PREFIX}/{entry['image']}"]
    assert json.loads(storage.read_bytes(f"{FINETUNE_PREFIX}/export_info.json"))["exported"] == 1
