"""The caption loop with no model (grounded composer), also with the resource in a Dagster asset."""

from __future__ import annotations

import dagster as dg

from medtrinity_assets.captions import COMPOSER_VERSION, build_prompt, check_caption, compose_caption, prompt_hash
from medtrinity_assets.captions.examples import EXAMPLES
from medtrinity_assets.generation import CaptionRequest, Generation, GenerationSettings, describe
from medtrinity_resources.mllm import MLLMResource


def example_requests() -> list[CaptionRequest]:
    return [CaptionRequest(f"roi-{name}", make(), None) for name, make in sorted(EXAMPLES.items())]


def test_composer_backend_describes_every_request():
    reqs = example_requests()
    gens = describe(MLLMResource(), reqs)
    assert [g.request_id for g in gens] == [r.request_id for r in reqs]
    for g, r in zip(gens, reqs, strict=True):
        assert g.backend == "grounded_composer" and g.model_version == COMPOSER_VERSION
        assert g.prompt_version == "mt-prompt-v9" and g.prompt_hash == prompt_hash(build_prompt(r.facts))
        assert g.problems == [] and g.attempts == 1
        assert (g.text, g.sections) == compose_caption(r.facts, seed=r.request_id)
        assert g.settings["seed"] == r.request_id
        assert check_caption(g.text, g.sections, r.facts) == []
    assert describe(MLLMResource(), []) == []


def test_composer_backend_bounds_come_from_config():
    gens = describe(MLLMResource(), example_requests(), settings=GenerationSettings(max_words=20))
    assert all("too_long" in g.problems for g in gens)


def test_resource_in_a_dagster_asset():
    @dg.asset
    def captions(mllm: MLLMResource) -> list[Generation]:
        return describe(mllm, example_requests())

    result = dg.materialize([captions], resources={"mllm": MLLMResource(backend="grounded_composer")})
    assert result.success
    gens = result.output_for_node("captions")
    assert len(gens) == len(EXAMPLES) and all(not g.problems for g in gens)
