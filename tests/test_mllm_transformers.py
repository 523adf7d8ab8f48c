"""MLLMResource with the transformers backend, on a tiny random LLaVA built here (offline, CPU)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tiny_llava import build_tiny_llava

from medtrinity_assets.captions import build_prompt, prompt_hash
from medtrinity_assets.captions.examples import ct_liver, microscopy_nucleus, xray_lungs
from medtrinity_assets.captions.sections import parse_output
from medtrinity_assets.generation import CaptionRequest, GenerationSettings, describe
from medtrinity_assets.generation.loop import batch_order
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.mllm_backends.base import MLLMBackendError
from medtrinity_resources.mllm_backends.hf import (
    chat_text,
    decode_image,
    load_model,
    model_version_of,
    plan_batches,
)

MAX_NEW = 6


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    return str(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))


def overlay_png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def requests():
    return [
        CaptionRequest("roi-a", ct_liver(), overlay_png(1)),
        CaptionRequest("roi-b", xray_lungs(), overlay_png(2)),
        CaptionRequest("roi-c", microscopy_nucleus(), None),  # text only
    ]


def test_describe_runs_retries_and_flags(tiny_llava):
    mllm = MLLMResource(backend="transformers", model_path=tiny_llava, max_new_tokens=MAX_NEW, batch_size=2)
    reqs = requests()
    gens = describe(mllm, reqs, settings=GenerationSettings(max_retries=1))
    assert [g.request_id for g in gens] == ["roi-a", "roi-b", "roi-c"]  # nothing dropped, order kept
    for g, r in zip(gens, reqs, strict=True):
        assert g.backend == "transformers"
        assert g.model_version == model_version_of(tiny_llava) and len(g.model_version) == 12
        assert g.prompt_version == "mt-prompt-v9"
        assert g.prompt_hash == prompt_hash(build_prompt(r.facts))
        assert g.settings["decoding"] == "greedy" and g.settings["temperature"] == 0.0
        assert g.settings["max_new_tokens"] in (MAX_NEW, 2 * MAX_NEW) and g.settings["dtype"] == "float32"
        # random weights write garbage cut at the limit: asked once more with twice the limit, then flagged
        assert g.attempts == 2 and g.model_calls == 2 and not g.cache_hit
        assert "truncated" in g.problems and any(p.startswith("missing_section") for p in g.problems)
        assert g.tokens_in > 0 and MAX_NEW < g.tokens_out <= 3 * MAX_NEW
    # greedy decoding: the same requests give the same answers
    again = describe(mllm, requests(), settings=GenerationSettings(max_retries=1))
    assert [g.text for g in again] == [g.text for g in gens]


def test_describe_matches_bare_generate(tiny_llava):
    """The answer is what model.generate gives for the chat-templated prompt plus the overlay."""
    import torch

    req = requests()[0]
    mllm = MLLMResource(backend="transformers", model_path=tiny_llava, max_new_tokens=MAX_NEW, truncation_max_new_tokens=MAX_NEW)
    gen = describe(mllm, [req], settings=GenerationSettings(max_retries=0))[0]
    loaded = load_model(tiny_llava, "cpu", "float32")
    text = chat_text(loaded.processor, build_prompt(req.facts), with_image=True)
    inputs = loaded.processor(text=[text], images=[decode_image(req.image_png)], return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=loaded.pad_id)
    raw = loaded.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
    assert gen.text == parse_output(raw.strip())[0]
    assert gen.tokens_in == int(inputs["attention_mask"].sum())
    assert "answer_prompt_hash" not in gen.settings


def test_model_is_loaded_once(tiny_llava):
    assert load_model(tiny_llava, "cpu", "float32") is load_model(tiny_llava, "cpu", "float32")


def test_describe_text(tiny_llava):
    mllm = MLLMResource(backend="transformers", model_path=tiny_llava, max_new_tokens=4)
    answers = mllm.describe_text(["What organ is shown?", "Name the modality."])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_a_shard_is_sent_in_full_batches_longest_prompt_first(tiny_llava):
    """Chunks are cut after ordering: a text-only request first in the shard does not split two batches."""
    facts = [microscopy_nucleus(), ct_liver(), xray_lungs(), ct_liver(), xray_lungs()]
    images = [None, overlay_png(3), overlay_png(4), overlay_png(5), overlay_png(6)]
    reqs = [CaptionRequest(f"roi-{i}", f, img) for i, (f, img) in enumerate(zip(facts, images, strict=True))]
    mllm = MLLMResource(
        backend="transformers", model_path=tiny_llava, max_new_tokens=MAX_NEW, truncation_max_new_tokens=MAX_NEW, batch_size=2
    )
    loaded = mllm._client().loaded
    before = len(loaded.batch_sizes)
    gens = describe(mllm, reqs, settings=GenerationSettings(max_retries=0))
    assert loaded.batch_sizes[before:] == [2, 2, 1]  # request order would give [1, 1, 2, 1]
    assert [g.request_id for g in gens] == [r.request_id for r in reqs]
    assert [g.prompt_hash for g in gens] == [prompt_hash(build_prompt(f)) for f in facts]


def test_batch_order_puts_images_first_then_longest_prompts():
    assert batch_order(["a", "bbb", "cc", "dd", "e"], [b"x", None, b"y", b"z", b"w"]) == [2, 3, 0, 4, 1]


def test_plan_batches_separates_image_and_text_requests():
    batches = plan_batches(["a", "bbb", "cc", "d"], [b"x", None, b"y", b"z"], batch_size=2)
    assert batches == [[2, 0], [3], [1]]


def test_configuration_errors(tmp_path):
    with pytest.raises(MLLMBackendError, match="model_path"):
        describe(MLLMResource(backend="transformers"), requests()[:1])
    with pytest.raises(MLLMBackendError, match="not a directory"):
        describe(MLLMResource(backend="transformers", model_path=str(tmp_path / "nope")), requests()[:1])
    with pytest.raises(MLLMBackendError, match="needs a model"):
        MLLMResource().describe_text(["hello"])


@pytest.mark.parametrize(
    "architecture, model_type", [("LlavaLlamaForCausalLM", "llava"), ("LlavaMistralForCausalLM", "llava_mistral")]  # LLaVA-Med v1.5
)
def test_original_format_llava_gets_a_conversion_hint(tmp_path, architecture, model_type):
    import json

    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": [architecture], "model_type": model_type, "mm_vision_tower": "openai/clip-vit-large-patch14-336"})
    )
    (tmp_path / "pytorch_model-00001-of-00002.bin").write_bytes(b"")  # the original repository's weight shards
    with pytest.raises(MLLMBackendError, match="convert_llava_weights_to_hf.py"):
        describe(MLLMResource(backend="transformers", model_path=str(tmp_path)), requests()[:1])


def test_unknown_backend_names_the_registered_ones():
    with pytest.raises(MLLMBackendError, match="registered: openai, transformers"):
        MLLMResource(backend="vllm_offline").generate(["hi"], [None])
