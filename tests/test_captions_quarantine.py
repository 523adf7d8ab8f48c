"""A model's wrong captions are quarantined with every reason, never dropped: real bundled images
through the production stage functions, a real local chat-completions server writing the answers,
MLLMResource with the openai backend, caption_shard and assemble_triplets."""

from __future__ import annotations

import polars as pl
import pytest

from chat_servers import ChatServer
from demo_records import shard_frames
from medtrinity_assets.schema import RETRIEVED_KNOWLEDGE_SCHEMA, conform
from medtrinity_assets.generation import GenerationSettings
from medtrinity_assets.stages.captions import caption_shard
from medtrinity_assets.stages.triplets import assemble_triplets, quarantine_counts
from medtrinity_resources.mllm import MLLMResource

WRONG_ANSWER = """Modality: Ultrasound
Organs and tissues: peripheral nerve, blood vessels
Region of interest: The structure is delineated in green inside the green square and measures about 24 mm across.
Colour and texture: The structure is darker than the tissue around it.
Relationships: The nerve lies nearby.
Description: This ultrasound image shows a peripheral nerve and blood vessels. The structure is delineated in green inside the green square and measures about 24 mm across. On this T2-weighted MRI, the structure appears dark. The structure is darker than the tissue around it. The structure is darker than the tissue around it. As a medical AI model, I would recommend a review by a specialist."""

EXPECTED = {"ai_self_reference", "forbidden_phrase", "wrong_modality", "unsupported_size", "repetition"}


@pytest.fixture
def server():
    s = ChatServer(WRONG_ANSWER)
    yield s
    s.close()


def test_wrong_model_captions_are_quarantined_with_every_reason(tmp_path, server):
    images, rois, coarse, storage, licences = shard_frames("usgra_nerve_ultrasound", str(tmp_path))
    assert rois.height > 0
    mllm = MLLMResource(backend="openai", endpoint_url=server.url, model_name="wrong-writer", max_concurrency=2)
    retrieved = conform([], RETRIEVED_KNOWLEDGE_SCHEMA)
    captions = caption_shard(images, rois, coarse, retrieved, storage, mllm, settings=GenerationSettings(max_retries=0)).captions
    assert len(server.prompts) == rois.height
    triplets = assemble_triplets(images, rois, coarse, captions, licences)

    # never dropped: one triplet per ROI record, caption text kept as written
    assert triplets.height == rois.height
    assert set(triplets["roi_id"]) == set(rois["roi_id"])
    assert all("T2-weighted MRI" in c for c in triplets["caption"])
    # quarantined with every reason
    assert triplets["quarantined"].all()
    for reasons in triplets["quarantine_reasons"].to_list():
        assert EXPECTED <= set(reasons), reasons
    counts = quarantine_counts(triplets)
    assert all(counts[code] == triplets.height for code in EXPECTED)


def test_quarantine_counts_per_code():
    df = pl.DataFrame(
        {
            "quarantined": [True, True, False],
            "quarantine_reasons": [["refusal", "too_short"], ["refusal"], []],
        }
    )
    assert quarantine_counts(df) == {"refusal": 2, "too_short": 1}
    assert quarantine_counts(df.head(0)) == {}


def test_images_quarantined_for_burned_in_phi_are_never_sent_to_a_model(tmp_path, server):
    images, rois, coarse, storage, licences = shard_frames("usgra_nerve_ultrasound", str(tmp_path))
    held = images["image_id"][0]
    images = images.with_columns(pl.when(pl.col("image_id") == held).then(pl.lit("quarantined")).otherwise(pl.col("phi_action")).alias("phi_action"))
    n_held = rois.filter(pl.col("image_id") == held).height
    assert 0 < n_held < rois.height
    mllm = MLLMResource(backend="openai", endpoint_url=server.url, model_name="wrong-writer", max_concurrency=2)
    retrieved = conform([], RETRIEVED_KNOWLEDGE_SCHEMA)
    captions = caption_shard(images, rois, coarse, retrieved, storage, mllm, settings=GenerationSettings(max_retries=0)).captions
    assert len(server.prompts) == rois.height - n_held  # the held image's pixels never left
    withheld = captions.filter(pl.col("image_id") == held)
    assert withheld.height == n_held and withheld["problems"].to_list() == [["phi_withheld"]] * n_held
    assert (withheld["caption"] == "").all() and (withheld["model_calls"] == 0).all()
    triplets = assemble_triplets(images, rois, coarse, captions, licences)
    assert triplets.height == rois.height  # kept, quarantined
    assert triplets.filter(pl.col("image_id") == held)["quarantined"].all()
