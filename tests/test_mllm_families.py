"""Real VLM families through the caption loop and the transformers backend at batch 4, each a tiny
random model built here from the family's own config, model and processor classes (CPU, offline)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tiny_vlms import FAMILIES

from medtrinity_assets.captions.examples import ct_liver, xray_lungs
from medtrinity_assets.generation import CallCache, CaptionRequest, GenerationSettings, describe
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.storage import MedtrinityStorage


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """Each family's tiny model, built once for the module."""
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = str(FAMILIES[family].build(tmp_path_factory.mktemp(family)))
        return built[family]

    return get


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_at_batch_four(family, model_dir, tmp_path):
    path = model_dir(family)
    architecture = FAMILIES[family].architecture
    reqs = [CaptionRequest(f"roi-{i}", (ct_liver if i % 2 else xray_lungs)(), png(i)) for i in range(5)]
    reqs.append(CaptionRequest("text-only", xray_lungs(), None))
    mllm = MLLMResource(backend="transformers", model_path=path, batch_size=4, max_new_tokens=4)
    cache = CallCache(MedtrinityStorage(root=str(tmp_path / "store")))
    gens = describe(mllm, reqs, cache, GenerationSettings(max_retries=0))
    assert [g.request_id for g in gens] == [r.request_id for r in reqs]
    client = mllm._client()
    assert client.settings["architecture"] == architecture and client.batch_size == 4
    for g in gens:
        # random weights: cut at 4 tokens, asked once more with 8, then flagged; every record kept
        assert g.attempts == 2 and g.model_calls == 2 and "truncated" in g.problems
        assert g.tokens_in > 0 and 4 < g.tokens_out <= 12 and g.settings["dtype"] == "float32"
    # the image's tokens are in the model input (same prompt, no image: fewer input tokens)
    assert gens[0].tokens_in > gens[-1].tokens_in
    # a rerun answers every call from the cache with the same text
    again = describe(mllm, reqs, cache, GenerationSettings(max_retries=0))
    assert all(g.cache_hit for g in again) and [g.text for g in again] == [g.text for g in gens]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_batched_answers_equal_one_at_a_time(family, model_dir):
    """Left padding and the attention mask keep a padded batch's greedy answers those of single prompts."""
    path = model_dir(family)
    prompts = ["Describe the image.", "Modality, organs, region of interest, texture and relations, then a description. " * 3,
               "What organ is shown?", "Describe the region of interest in the upper left part of the image."]
    images = [png(i) for i in range(len(prompts))]
    batched = MLLMResource(backend="transformers", model_path=path, batch_size=4, max_new_tokens=6)
    single = MLLMResource(backend="transformers", model_path=path, batch_size=1, max_new_tokens=6)
    together, alone = batched.generate(prompts, images), single.generate(prompts, images)
    assert [(o.text, o.tokens_in, o.tokens_out) for o in together] == [(o.text, o.tokens_in, o.tokens_out) for o in alone]
    assert len({o.tokens_in for o in together}) > 1  # prompts of different lengths: the batch was padded
